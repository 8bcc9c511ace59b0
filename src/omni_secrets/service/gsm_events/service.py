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
- Everything else: acked, logged and counted, nothing changes. Duplicates (Pub/Sub delivers at
  least once) are recognised by message id and change nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

import structlog

from omni_secrets.domain.catalog import Catalog, SecretType
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
from omni_secrets.domain.models import SYSTEM_ACTOR, NewAccessEvent
from omni_secrets.domain.secret_store import SecretStore, VersionState
from omni_secrets.observability import alert_catalog
from omni_secrets.observability.alert_catalog import ROTATE_ALERT
from omni_secrets.observability.alerts import AlertDispatcher
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.gsm_events.signals import SecretSignals, describe_revocation
from omni_secrets.service.refresh.service import ClusterRefreshService
from omni_secrets.service.secrets import OmniSecretService
from omni_secrets.service.views import EventsView

log = structlog.get_logger("omni_secrets.gsm_events")

SEEN_MESSAGE_IDS = 10_000

EventResult = Literal["applied", "ignored", "rejected", "duplicate", "unconfirmed", "failed"]


@dataclass(frozen=True, slots=True)
class Handled:
    """What came of one message; ``ack`` False asks Pub/Sub to redeliver it."""

    event_type: str | None
    result: EventResult
    ack: bool = True


class GsmEventService:
    """Acts on GSM events (see the module docstring).

    Args:
        subscription: the Pub/Sub subscription (shown in status).
        projects: project ids and numbers whose secrets we serve (others are foreign).
        catalog: the secret types.
        store: GSM, to confirm events.
        secrets: the secret service (cache, pins).
        signals: revocations and candidates, stored and applied on every replica.
        refresh: cluster-wide refreshes (``SECRET_VERSION_ENABLE``).
        alerts: the alert dispatcher.
        auditor: writes the ``rotation_alert`` row.
        clock: time source.
        on_event: called with (event type, result) of every message (the counter).
        environment: for alert details.
    """

    def __init__(
        self,
        *,
        subscription: str,
        projects: frozenset[str],
        catalog: Catalog,
        store: SecretStore,
        secrets: OmniSecretService,
        signals: SecretSignals,
        refresh: ClusterRefreshService,
        alerts: AlertDispatcher,
        auditor: Auditor,
        clock: Clock,
        on_event: Callable[[str | None, str], None] = lambda _t, _r: None,
        environment: str = "",
    ) -> None:
        self.subscription = subscription
        self._projects = projects
        self._catalog = catalog
        self._by_secret_id = {entry.gsm_secret_id: entry.secret_type for entry in catalog}
        self._store = store
        self._secrets = secrets
        self._signals = signals
        self._refresh = refresh
        self._alerts = alerts
        self._auditor = auditor
        self._clock = clock
        self._on_event = on_event
        self._environment = environment
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.connected = False
        self.last_event_at: datetime | None = None

    def view(self) -> EventsView:
        return EventsView(self.subscription, self.connected, self.last_event_at)

    async def handle(self, message: RawGsmMessage) -> Handled:
        """Act on one message; never raises (a failure to act answers ``ack=False``)."""
        self.last_event_at = self._clock.now()
        parsed = parse_gsm_message(
            message, projects=self._projects, secret_types=self._by_secret_id
        )
        if isinstance(parsed, Dismissed):
            log.info(
                "gsm_event.dismissed",
                message_id=message.message_id,
                event_type=parsed.event_type,
                result=parsed.result,
                reason=parsed.reason,
            )
            return self._count(Handled(parsed.event_type, parsed.result))
        if parsed.message_id in self._seen:
            log.info("gsm_event.duplicate", message_id=parsed.message_id)
            return self._count(Handled(parsed.event_type.value, "duplicate"))
        try:
            result = await self._act(parsed)
        except Exception as exc:  # redelivered by Pub/Sub: acting must not be lost
            log.warning(
                "gsm_event.failed",
                message_id=parsed.message_id,
                event_type=parsed.event_type.value,
                secret_type=parsed.secret_type.value,
                error_type=type(exc).__name__,
            )
            return self._count(Handled(parsed.event_type.value, "failed", ack=False))
        self._remember(parsed.message_id)
        log.info(
            "gsm_event.handled",
            message_id=parsed.message_id,
            event_type=parsed.event_type.value,
            secret_type=parsed.secret_type.value,
            version=parsed.version,
            result=result,
        )
        return self._count(Handled(parsed.event_type.value, result))

    # -- acting ----------------------------------------------------------------------------------

    async def _act(self, event: GsmEvent) -> EventResult:
        if event.event_type in REVOKING or event.event_type is GsmEventType.SECRET_DELETE:
            return await self._revoke(event)
        if event.event_type is GsmEventType.SECRET_VERSION_ENABLE:
            return await self._enabled(event)
        if event.event_type is GsmEventType.SECRET_VERSION_ADD:
            return await self._added(event)
        return self._rotate_requested(event)

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
            if deleted:
                await self._store.list_versions(event.secret_id)
                return "unconfirmed"  # the secret is still there
            info = await self._store.get_version(event.secret_id, event.version or "")
            if info.state is VersionState.ENABLED:
                return "unconfirmed"  # GSM says it is served legitimately
            message = f"{event.secret_id} version {event.version} is {info.state.value} in GSM"
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
            # Applied here already; alert whether or not the other replicas could be told.
            self._alerts.trigger(
                alert_catalog.version_revoked(
                    self._environment,
                    secret_type=event.secret_type.value,
                    message=message,
                    event_type=event.event_type.value,
                    version=event.version,
                    confirmed=confirmed,
                )
            )
        return "applied"

    async def _enabled(self, event: GsmEvent) -> EventResult:
        if event.version != self._secrets.active_version(event.secret_type):
            return "ignored"
        # A cluster-wide refresh: each replica's fetch re-checks GSM and clears the revocation.
        await self._refresh.request(
            secret_types=[event.secret_type.value], actor=SYSTEM_ACTOR, correlation_id=None
        )
        return "applied"

    async def _added(self, event: GsmEvent) -> EventResult:
        current = self._signals.get(event.secret_type)
        version = event.version or ""
        active = self._secrets.active_version(event.secret_type)
        known = current.candidate_version
        if active is not None and active.isdigit() and int(version) <= int(active):
            return "ignored"
        if known is not None and known.isdigit() and int(version) <= int(known):
            return "ignored"
        await self._signals.put(
            replace(current, candidate_version=version, candidate_at=self._clock.now()),
            self._secrets.cache,
        )
        return "applied"

    def _rotate_requested(self, event: GsmEvent) -> EventResult:
        secret_type: SecretType = event.secret_type
        self._alerts.trigger(alert_catalog.rotation_requested(self._environment, secret_type.value))
        self._auditor.record_later(
            NewAccessEvent(
                occurred_at=self._clock.now(),
                secret_type=secret_type.value,
                action="rotation_alert",
                actor=SYSTEM_ACTOR,
                result="success",
                duration_ms=None,
                correlation_id=None,
                details={
                    "alert": ROTATE_ALERT,
                    "source": "gsm_event",
                    "eventType": event.event_type.value,
                    "messageId": event.message_id,
                },
            )
        )
        return "applied"

    # -- bookkeeping -----------------------------------------------------------------------------

    def _remember(self, message_id: str) -> None:
        self._seen[message_id] = None
        while len(self._seen) > SEEN_MESSAGE_IDS:
            self._seen.popitem(last=False)

    def _count(self, handled: Handled) -> Handled:
        self._on_event(handled.event_type, handled.result)
        return handled
