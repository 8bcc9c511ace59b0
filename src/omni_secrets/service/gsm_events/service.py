"""``GsmEventService``: acts on GSM event notifications (contract section 12).

The Pub/Sub adapter hands each received message to :meth:`GsmEventService.handle` on the event
loop and acks or nacks by its answer. One subscription is shared by all replicas: the replica that
receives a message acts on it and the others follow through the signal rows and the notifier.

- ``SECRET_VERSION_DISABLE`` / ``_DESTROY`` / ``_DESTROY_SCHEDULED`` of the active version, and
  ``SECRET_DELETE`` of a catalog secret: confirmed with GSM first (``GetSecretVersion``; a deleted
  secret by listing its versions) — a message alone never takes a credential out of service, as
  anyone with publish rights on the topic could forge one. Confirmed, or GSM unreachable (the
  safer reading): the type stops being served on every replica (fail closed), alert
  ``active_version_revoked`` (critical). GSM contradicting the event: nothing changes
  (``unconfirmed``).
- ``SECRET_VERSION_ENABLE`` of the active version: a cluster-wide refresh of the type at once.
- ``SECRET_VERSION_ADD``: a newer version becomes the type's rotation candidate (status only).
- ``SECRET_ROTATE``: alert ``rotation_requested`` (warning) and an audit row ``rotation_alert``.
- ``SECRET_UPDATE`` (aliases, labels, annotations changed): this replica re-reads the secret's
  whole rotation group at once (a refresh reads the aliases) and follows GSM's ``current``
  aliases (contract section 15: adopt a group moved whole, else show its drift); the others do
  at their next reconcile. The message only says "look again": what GSM answers decides.
- Everything else: acked, logged and counted, nothing changes. Duplicates (Pub/Sub delivers at
  least once) are recognised by message id and change nothing.

Events are hints, never facts (contract section 17): every confirmation is one
``ListSecretVersions`` of the secret through :class:`FreshReads` (at most one per secret in
flight, at most one per second after; an event shares any read that started after it was
published, else the next one), a
``SECRET_VERSION_ADD`` becomes a candidate only when GSM lists that version ENABLED, the
refresh ``SECRET_VERSION_ENABLE`` asks for runs only while the type is not served or a
revocation of it is held (else there is nothing to restore) and is coalesced the same way, and
``SECRET_ROTATE``
is acted on (alert, audit row) at most once per secret per hour (this replica's memory, and the
audit rows of the others).

The service decides and acts; the alerts, the audit row, the log lines and the counter follow
from the events it emits (``events.py``, ``reactions.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from omni_secrets.domain.catalog import Catalog, RotationGroup
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.cluster import ANY_VERSION, RevocationCode
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.gsm_events import (
    REVOKING,
    Dismissed,
    GsmEvent,
    GsmEventType,
    RawGsmMessage,
    parse_gsm_message,
)
from omni_secrets.domain.models import SYSTEM_ACTOR
from omni_secrets.domain.repositories import AuditFilter, UnitOfWorkFactory
from omni_secrets.domain.secret_store import SecretStore, VersionInfo, VersionState
from omni_secrets.service.gsm_events.coalesce import DEFAULT_MIN_INTERVAL_SECONDS, FreshReads
from omni_secrets.service.gsm_events.events import (
    ActiveVersionRevoked,
    EventResult,
    GsmMessageDismissed,
    GsmMessageDuplicate,
    GsmMessageFailed,
    GsmMessageHandled,
    GsmRotationRequested,
)
from omni_secrets.service.gsm_events.feed import GsmEventFeed
from omni_secrets.service.gsm_events.signals import SecretSignals, describe_revocation
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.refresh.service import ClusterRefreshService
from omni_secrets.service.serving.secrets import OmniSecretService

SEEN_MESSAGE_IDS = 10_000
PUBLISH_SKEW = timedelta(seconds=1)
"""How far Pub/Sub's publish time and this host's clock may disagree."""
ROTATE_EVERY = timedelta(hours=1)
"""``SECRET_ROTATE`` of one secret is acted on at most once per this (an audit row each time)."""


@dataclass(frozen=True, slots=True)
class Handled:
    """What came of one message; ``ack`` False asks Pub/Sub to redeliver it."""

    event_type: str | None
    result: EventResult
    ack: bool = True


class GsmEventService:
    """Acts on GSM events (see the module docstring).

    Args:
        subscription: the Pub/Sub subscription it is fed from.
        feed: the subscription's state shown in status (this service stamps each message).
        projects: project ids and numbers whose secrets we serve (others are foreign).
        catalog: the secret types.
        store: GSM, to confirm events.
        secrets: the secret service (cache, pins).
        signals: revocations and candidates, stored and applied on every replica.
        refresh: cluster-wide refreshes (``SECRET_VERSION_ENABLE``).
        clock: time source.
        bus: reports every message's outcome and what was acted on (``events.py``).
        follow: follows GSM's ``current`` aliases after a ``SECRET_UPDATE`` re-read them.
        min_interval: the least time between two GSM confirmations (or two refreshes) of one
            secret.
        uow_factory: where another replica's ``rotation_alert`` row of the last hour is looked
            for (None: this replica's memory only).
    """

    def __init__(
        self,
        *,
        subscription: str,
        feed: GsmEventFeed,
        projects: frozenset[str],
        catalog: Catalog,
        store: SecretStore,
        secrets: OmniSecretService,
        signals: SecretSignals,
        refresh: ClusterRefreshService,
        clock: Clock,
        bus: EventBus,
        follow: Callable[[], Awaitable[object]] | None = None,
        min_interval: float = DEFAULT_MIN_INTERVAL_SECONDS,
        uow_factory: UnitOfWorkFactory | None = None,
    ) -> None:
        self._follow = follow
        self.subscription = subscription
        self._feed = feed
        self._projects = projects
        self._catalog = catalog
        self._by_secret_id = {entry.gsm_secret_id: entry.secret_type for entry in catalog}
        self._store = store
        self._secrets = secrets
        self._signals = signals
        self._refresh = refresh
        self._clock = clock
        self._bus = bus
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.confirmations: FreshReads[Sequence[VersionInfo]] = FreshReads(clock, min_interval)
        self.refreshes: FreshReads[None] = FreshReads(clock, min_interval)
        self.alias_reads: FreshReads[None] = FreshReads(clock, min_interval)
        self._rotate_acted: dict[str, datetime] = {}
        self._uow_factory = uow_factory

    @property
    def connected(self) -> bool:
        """Whether the subscriber is consuming (it sets this; status shows it)."""
        return self._feed.connected

    @connected.setter
    def connected(self, connected: bool) -> None:
        self._feed.connected = connected

    @property
    def last_event_at(self) -> datetime | None:
        return self._feed.last_event_at

    async def handle(self, message: RawGsmMessage) -> Handled:
        """Act on one message; never raises (a failure to act answers ``ack=False``)."""
        self._feed.last_event_at = self._clock.now()
        parsed = parse_gsm_message(
            message, projects=self._projects, secret_types=self._by_secret_id
        )
        if isinstance(parsed, Dismissed):
            await self._bus.emit(
                GsmMessageDismissed(
                    message.message_id, parsed.event_type, parsed.result, parsed.reason
                )
            )
            return Handled(parsed.event_type, parsed.result)
        event_type = parsed.event_type.value
        if parsed.message_id in self._seen:
            await self._bus.emit(GsmMessageDuplicate(parsed.message_id, event_type))
            return Handled(event_type, "duplicate")
        try:
            result = await self._act(parsed)
        except Exception as exc:  # redelivered by Pub/Sub: acting must not be lost
            await self._bus.emit(
                GsmMessageFailed(
                    parsed.message_id, event_type, parsed.secret_type, type(exc).__name__
                )
            )
            return Handled(event_type, "failed", ack=False)
        self._remember(parsed.message_id)
        await self._bus.emit(
            GsmMessageHandled(
                parsed.message_id, event_type, parsed.secret_type, parsed.version, result
            )
        )
        return Handled(event_type, result)

    # -- acting ----------------------------------------------------------------------------------

    async def _act(self, event: GsmEvent) -> EventResult:
        if event.event_type in REVOKING or event.event_type is GsmEventType.SECRET_DELETE:
            return await self._revoke(event)
        if event.event_type is GsmEventType.SECRET_VERSION_ENABLE:
            return await self._enabled(event)
        if event.event_type is GsmEventType.SECRET_VERSION_ADD:
            return await self._added(event)
        if event.event_type is GsmEventType.SECRET_UPDATE:
            return await self._updated(event)
        return await self._rotation_requested(event)

    async def _revoke(self, event: GsmEvent) -> EventResult:
        deleted = event.event_type is GsmEventType.SECRET_DELETE
        active = self._secrets.active_version(event.secret_type)
        if not deleted and (active is None or event.version != active):
            return "ignored"  # not the served version: nothing to take out of service
        code = RevocationCode.SECRET_DELETED if deleted else RevocationCode.VERSION_DISABLED
        revoked_version = ANY_VERSION if deleted else event.version
        message = describe_revocation(code, event.secret_id, event.version)
        confirmed = True
        try:
            versions = await self._versions(event)
            if deleted:
                return "unconfirmed"  # the secret is still there
            info = next((v for v in versions if v.version == event.version), None)
            if info is not None and info.state is VersionState.ENABLED:
                return "unconfirmed"  # GSM says it is served legitimately
            state = info.state.value if info is not None else "gone"
            message = f"{event.secret_id} version {event.version} is {state} in GSM"
        except SecretStoreError as exc:
            if exc.transient:
                confirmed = False
                message = (
                    f"{message}; not confirmed: GSM unreachable ({exc.reason}), failing closed"
                )
            elif exc.reason != "NOT_FOUND":
                confirmed = False
                message = f"{message}; not confirmed: GSM refused ({exc.reason}), failing closed"
        signal = replace(
            self._signals.get(event.secret_type),
            revoked_version=revoked_version,
            revoked_code=code.value,
            revoked_message=message,
            revoked_at=self._clock.now(),
            confirmed=confirmed,
        )
        try:
            await self._signals.put(signal, self._secrets.cache)
        finally:
            # Applied here already; reported whether or not the other replicas could be told.
            await self._bus.emit(
                ActiveVersionRevoked(
                    secret_type=event.secret_type,
                    event_type=event.event_type.value,
                    version=event.version,
                    message=message,
                    confirmed=confirmed,
                )
            )
        return "applied"

    async def _enabled(self, event: GsmEvent) -> EventResult:
        if event.version != self._secrets.active_version(event.secret_type):
            return "ignored"
        held = self._signals.get(event.secret_type).revoked_version is not None
        if not held and self._secrets.cache.get(event.secret_type) is not None:
            return "ignored"  # served and not revoked: a refresh would restore nothing
        # A cluster-wide refresh: each replica's fetch re-checks GSM and clears the revocation.
        # Coalesced per secret: a flood of ENABLE events costs a refresh a second, not one each.
        await self.refreshes.run(
            event.secret_id, self._not_before(event), lambda: self._request_refresh(event)
        )
        return "applied"

    async def _request_refresh(self, event: GsmEvent) -> None:
        await self._refresh.request(
            secret_types=[event.secret_type.value], actor=SYSTEM_ACTOR, correlation_id=None
        )

    async def _versions(self, event: GsmEvent) -> Sequence[VersionInfo]:
        """The secret's versions as a GSM read no older than ``event`` lists them."""
        secret_id = event.secret_id
        return await self.confirmations.run(
            secret_id, self._not_before(event), lambda: self._store.list_versions(secret_id)
        )

    def _not_before(self, event: GsmEvent) -> datetime:
        """A read that started at this time reflects the change ``event`` announces: its
        publish time plus a second of clock skew, and never later than its arrival."""
        now = self._clock.now()
        if event.published_at is None:
            return now
        return min(now, event.published_at + PUBLISH_SKEW)

    async def _added(self, event: GsmEvent) -> EventResult:
        current = self._signals.get(event.secret_type)
        version = event.version or ""
        active = self._secrets.active_version(event.secret_type)
        known = current.candidate_version
        if active is not None and active.isdigit() and int(version) <= int(active):
            return "ignored"
        if known is not None and known.isdigit() and int(version) <= int(known):
            return "ignored"
        # A hint only: shown as a candidate once GSM lists that version ENABLED.
        try:
            versions = await self._versions(event)
        except SecretStoreError as exc:
            if exc.transient:
                raise  # redelivered: confirmed later
            return "unconfirmed"
        if not any(v.version == version and v.state is VersionState.ENABLED for v in versions):
            return "unconfirmed"
        await self._signals.put(
            replace(current, candidate_version=version, candidate_at=self._clock.now()),
            self._secrets.cache,
        )
        return "applied"

    async def _updated(self, event: GsmEvent) -> EventResult:
        group = self._catalog.entry(event.secret_type).rotation_group
        # Coalesced per group, like the other hints: a flood of SECRET_UPDATE events costs one
        # re-read of the group a second, not one each (contract section 17).
        await self.alias_reads.run(
            group, self._not_before(event), lambda: self._reread_group(group)
        )
        return "applied"

    async def _reread_group(self, group: RotationGroup) -> None:
        types = [m.secret_type for m in self._catalog.group_members(group)]
        # The refresh re-reads each member's aliases (one GetSecret each, never on a hit).
        await self._secrets.cache.refresh(types, force_new=True)
        if self._follow is not None:
            await self._follow()

    async def _rotation_requested(self, event: GsmEvent) -> EventResult:
        # Nothing changes here: GSM's schedule says a rotation is due, people act on the alert.
        # At most once per secret per hour: each one is an audit row, and anyone who can
        # publish to the topic can send thousands.
        now = self._clock.now()
        last = self._rotate_acted.get(event.secret_id)
        if last is not None and now - last < ROTATE_EVERY:
            return "ignored"
        self._rotate_acted[event.secret_id] = now
        if await self._rotate_audited_since(event, now - ROTATE_EVERY):
            return "ignored"  # another replica (sharing the subscription) acted on one
        await self._bus.emit(
            GsmRotationRequested(
                secret_type=event.secret_type,
                event_type=event.event_type.value,
                message_id=event.message_id,
                at=self._clock.now(),
            )
        )
        return "applied"

    async def _rotate_audited_since(self, event: GsmEvent, since: datetime) -> bool:
        """Whether a ``rotation_alert`` row from a GSM event for this type exists since then."""
        if self._uow_factory is None:
            return False
        try:
            async with self._uow_factory() as uow:
                rows = await uow.audit.search(
                    AuditFilter(
                        secret_type=event.secret_type.value, action="rotation_alert", since=since
                    ),
                    50,
                )
        except Exception:  # database down: this replica's own bound still holds
            return False
        return any(row.details.get("source") == "gsm_event" for row in rows)

    # -- bookkeeping -----------------------------------------------------------------------------

    def _remember(self, message_id: str) -> None:
        self._seen[message_id] = None
        while len(self._seen) > SEEN_MESSAGE_IDS:
            self._seen.popitem(last=False)
