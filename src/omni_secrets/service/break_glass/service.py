"""``BreakGlassService``: activating, revoking, expiring and reloading break-glass overrides.

An operator seals a credential to the service's public key and posts it (contract section 5).
This service checks the request (TTL, type, then the sealed payload), stores the override — the
ciphertext only, never the value — together with its ``break_glass_activate`` audit row in one
transaction, and only after that commit installs the decrypted value in the cache, where it wins
over GSM until it expires or is revoked. If the audit row cannot be written nothing is stored or
served (fail closed, ``AUDIT_UNAVAILABLE``).

The service decides; it reports what it decided as events
(:mod:`~omni_secrets.service.break_glass.events`) through its bus, and the reactions
(:mod:`~omni_secrets.service.break_glass.reactions`) log, count, alert, write the best-effort
audit rows (``break_glass_rejected``, a deferred revoke's) and tell the other replicas. The audit
rows that must commit with the override are written in its transaction (:mod:`.ledger`), never
by a reaction. Lifecycle:

- :meth:`BreakGlassService.expire_due` (run by ``jobs/break_glass_expiry.py``) marks overrides
  past their expiry as ended in the database and audits ``break_glass_expire``. The cache stops
  serving an expired override on its own hot path; the job makes the database and audit agree;
- :meth:`BreakGlassService.reload` (at startup and from the periodic reconcile) installs the
  overrides the database holds that this process does not serve yet (after a restart, or
  activated on another replica) and drops those ended elsewhere (revoked on another replica).

Several overrides of one type may be active at once: the newest activation is served, and when it
ends the next newest still active takes over (:mod:`.served_overrides`).

Values stay in memory: they are decrypted into :class:`~omni_secrets.domain.values.SecretValue`
and handed to the cache; audit rows, logs, alerts and errors carry ids, codes and times only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain import break_glass
from omni_secrets.domain.break_glass import BreakGlassKeyPair, OpenedOverride
from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import (
    AuditUnavailable,
    BreakGlassDisabled,
    CiphertextInvalid,
    DatabaseUnavailable,
    InvalidInput,
    OmniSecretsError,
    OverrideNotFound,
    ReplayDetected,
    UnknownKeyId,
)
from omni_secrets.domain.models import (
    SYSTEM_ACTOR,
    BreakGlassOverrideRecord,
    NewAccessEvent,
)
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.values import SecretValue
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.break_glass.audit_rows import activation_row
from omni_secrets.service.break_glass.events import (
    ActivationNotAudited,
    ActivationRejected,
    DecryptionFailed,
    ExpiryFailed,
    OverrideActivated,
    OverrideCommitted,
    OverrideEndedElsewhere,
    OverrideExpired,
    OverrideNotServed,
    OverrideReloaded,
    OverrideReopened,
    OverrideRevoked,
    OverridesChanged,
    OverridesDropped,
    OverrideUntrusted,
    ReloadFailed,
    RevokeAuditDeferred,
)
from omni_secrets.service.break_glass.ledger import OverrideLedger
from omni_secrets.service.break_glass.request import ActivationRequest
from omni_secrets.service.break_glass.served_overrides import ServedOverrides
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.views import NO_BREAK_GLASS, BreakGlassView

_MAX_OVERRIDE_ID_CHARS = 64


@dataclass(frozen=True, slots=True)
class PublicKeyInfo:
    """What the public-key route serves."""

    key_id: str
    public_key: str
    algorithm: str


@dataclass(frozen=True, slots=True)
class ActivatedOverride:
    """The outcome of an activation (the 201 body)."""

    override_id: str
    secret_type: str
    activated_at: datetime
    expires_at: datetime


class BreakGlassService:
    """The break-glass override's lifecycle (see the module docstring).

    Args:
        key_pair: the service's X25519 key pair; None when break-glass is disabled (activation
            and the public key then raise ``BreakGlassDisabled``; revoke and expiry still work).
        uow_factory: database units of work.
        auditor: appends the audit rows that commit with the override (``append_in``).
        cache: where overrides are served from.
        clock: wall time for windows and ``issuedAt`` checks.
        bus: told what was decided, in order (see :mod:`.events`); emitting never raises.
        new_id: makes override ids.
    """

    def __init__(
        self,
        *,
        key_pair: BreakGlassKeyPair | None,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        cache: OmniSecretCache,
        clock: Clock,
        bus: EventBus,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._key_pair = key_pair
        self._ledger = OverrideLedger(uow_factory, auditor)
        self._cache = cache
        self._clock = clock
        self._bus = bus
        self._new_id = new_id
        self._served = ServedOverrides(cache, clock)
        # Stored overrides that could not be opened on reload: reported once, not every reconcile.
        self._unreadable: set[str] = set()

    @property
    def enabled(self) -> bool:
        """Whether a key pair is configured."""
        return self._key_pair is not None

    # -- public key ----------------------------------------------------------------------------

    def public_key(self) -> PublicKeyInfo:
        """The key id, base64 public key and algorithm operators seal payloads to.

        Raises:
            BreakGlassDisabled: no key pair is configured.
        """
        pair = self._require_key_pair()
        return PublicKeyInfo(pair.key_id, pair.public_key_b64, break_glass.ALGORITHM)

    # -- activation ----------------------------------------------------------------------------

    async def activate(
        self,
        *,
        secret_type: str,
        key_id: str,
        ciphertext: str,
        ttl_seconds: int,
        reason: str,
        ticket: str | None,
        actor: str,
        correlation_id: str | None,
    ) -> ActivatedOverride:
        """Check, store, audit and serve a sealed override (``POST .../break-glass``).

        Order: the TTL, the secret type, then the sealed payload (key id, box, inner type,
        ``issuedAt``); then one transaction stores the override (ciphertext only; the nonce is
        burnt), records the window in the metadata and appends ``break_glass_activate``. Only
        after that commit is the value installed in the cache (``OverrideCommitted`` just before,
        ``OverrideActivated`` and ``OverridesChanged`` just after). Every refusal below but
        ``BreakGlassDisabled`` is reported as ``ActivationRejected``.

        Args:
            secret_type: the request's ``secretType``.
            key_id: the request's ``keyId``.
            ciphertext: the request's ``ciphertext`` (base64 sealed box).
            ttl_seconds: the override's lifetime (60..1800).
            reason: why (non-empty).
            ticket: an incident reference, if any.
            actor: the token's subject.
            correlation_id: the request id.

        Returns:
            The override's id, type and window.

        Raises:
            BreakGlassDisabled: no key pair is configured (nothing audited: nothing was tried).
            TtlTooLong: ``ttl_seconds`` > 1800.
            InvalidInput: ``ttl_seconds`` < 60, an empty reason, or an unknown type.
            UnknownKeyId, CiphertextInvalid, PayloadMismatch, PayloadExpired: the sealed payload
                is not acceptable (see :func:`~omni_secrets.domain.break_glass.open_override`).
            ReplayDetected: the payload's nonce was used before.
            AuditUnavailable: the audit row (or the transaction holding it) could not be
                written; nothing was stored or activated.
        """
        pair = self._require_key_pair()
        started = time.perf_counter()
        now = self._clock.now()
        request = ActivationRequest(
            secret_type, key_id, ciphertext, ttl_seconds, reason, ticket, actor, correlation_id
        )
        try:
            checked = request.check()
            opened = await self._open(pair, checked, request, now)
        except InvalidInput as exc:
            # Whatever check failed first: the type is only a label if the catalog has it.
            await self._reject(exc, request.catalog_type, request)
            raise

        record = request.record(self._new_id(), checked, pair.key_id, opened, now)
        row = activation_row(
            record,
            ttl_seconds=ttl_seconds,
            issued_at=opened.issued_at,
            correlation_id=correlation_id,
            started=started,
        )
        await self._commit_activation(record, row, request)
        await self._bus.emit(OverrideCommitted(record, opened.value))
        self._served.add(record, opened.value)
        await self._bus.emit(OverrideActivated(record))
        await self._bus.emit(OverridesChanged())
        return ActivatedOverride(
            override_id=record.override_id,
            secret_type=checked.value,
            activated_at=record.activated_at,
            expires_at=record.expires_at,
        )

    async def _open(
        self,
        pair: BreakGlassKeyPair,
        secret_type: SecretType,
        request: ActivationRequest,
        now: datetime,
    ) -> OpenedOverride:
        try:
            opened = break_glass.open_override(
                pair,
                key_id=request.key_id,
                ciphertext_b64=request.ciphertext,
                expected_secret_type=secret_type,
                now=now,
            )
        except InvalidInput as exc:
            # An unknown key id is refused before any decryption is attempted.
            if not isinstance(exc, UnknownKeyId):
                await self._bus.emit(DecryptionFailed(secret_type))
            raise
        # Not reported (OverrideCommitted) yet: a refused payload (replay, audit down) must not
        # let its sender choose words to mask out of every later log line.
        return opened

    async def _commit_activation(
        self, record: BreakGlassOverrideRecord, row: NewAccessEvent, request: ActivationRequest
    ) -> None:
        """Store the override with its audit row, or report why not and raise."""
        try:
            await self._ledger.store_activation(record, row)
        except ReplayDetected as exc:
            await self._reject(exc, record.secret_type, request)
            raise
        except (AuditUnavailable, DatabaseUnavailable):
            await self._bus.emit(ActivationNotAudited(record.secret_type, request.actor))
            raise AuditUnavailable(
                "the break-glass activation could not be audited; nothing was activated"
            ) from None

    async def _reject(
        self, exc: OmniSecretsError, secret_type: SecretType | None, request: ActivationRequest
    ) -> None:
        """Report a refused activation (counted and audited, best effort: refused anyway)."""
        await self._bus.emit(
            ActivationRejected(
                code=exc.code,
                secret_type=secret_type,
                ttl_seconds=request.ttl_seconds,
                ticket=request.storable_ticket,
                actor=request.actor,
                correlation_id=request.correlation_id,
                conflict=isinstance(exc, ReplayDetected),
                at=self._clock.now(),
            )
        )

    # -- revoke --------------------------------------------------------------------------------

    async def revoke(self, override_id: str, *, actor: str, correlation_id: str | None) -> None:
        """End an active override early (``DELETE .../break-glass/{overrideId}``).

        The override is ended in the database with its ``break_glass_revoke`` audit row in one
        transaction, then removed from the cache (the type reverts to GSM, or to an older
        override of the type still active) and the alert is resolved when none is left. Other
        replicas drop it when notified (``OverridesChanged``), else at their next reconcile.

        A revoke reduces exposure, so it does not fail closed on the audit: when the audit row
        cannot be written the override is still ended, and the row is queued for the background
        writer (``RevokeAuditDeferred``; the writer's failures are counted and alerted).

        Args:
            override_id: the override to end.
            actor: the token's subject.
            correlation_id: the request id.

        Raises:
            OverrideNotFound: unknown, already ended or already past its expiry.
            DatabaseUnavailable: the database cannot be reached (nothing changed).
        """
        if not 0 < len(override_id) <= _MAX_OVERRIDE_ID_CHARS or not override_id.isprintable():
            # No override has such an id; some databases would refuse the lookup itself (NUL).
            raise OverrideNotFound(override_id[:_MAX_OVERRIDE_ID_CHARS])
        now = self._clock.now()
        record = await self._end_revoked(override_id, actor, correlation_id, now)
        if record is None:
            raise OverrideNotFound(override_id)
        await self._forget([record])
        await self._bus.emit(OverrideRevoked(record, actor, now))
        await self._bus.emit(OverridesChanged())

    async def _end_revoked(
        self, override_id: str, actor: str, correlation_id: str | None, now: datetime
    ) -> BreakGlassOverrideRecord | None:
        """End a still-active override as ``revoked``; the record, or None if not ours.

        None when the override is unknown, already ended (by someone else) or past its expiry.
        An operator's revoke must stop the override even while audit writes fail: then the row
        is ended without its audit event, which is written in the background.
        """
        try:
            return await self._ledger.end(
                override_id, "revoked", actor, correlation_id, now, only_if_active=True, audit=True
            )
        except AuditUnavailable:
            pass
        record = await self._ledger.end(
            override_id, "revoked", actor, correlation_id, now, only_if_active=True, audit=False
        )
        if record is not None:
            await self._bus.emit(RevokeAuditDeferred(record, actor, correlation_id, now))
        return record

    # -- expiry --------------------------------------------------------------------------------

    async def expire_due(self) -> float:
        """End every override past its expiry that the database still holds as not ended.

        Each is ended with its ``break_glass_expire`` audit row (actor ``system``) in one
        transaction; when another replica ended it first, this one only cleans up locally. When
        the audit row cannot be written that override stays not ended and is retried next time
        (the cache has stopped serving it anyway).

        Returns:
            Seconds until the next known expiry (``inf`` when no override is pending).

        Raises:
            DatabaseUnavailable: the pending overrides could not be read.
        """
        now = self._clock.now()
        pending = await self._ledger.not_ended()
        ended: list[BreakGlassOverrideRecord] = []
        ended_here = False
        for record in pending:
            if record.expires_at > now:
                continue
            try:
                mine = await self._end_expired(record.override_id, now)
            except (AuditUnavailable, DatabaseUnavailable) as exc:
                await self._bus.emit(ExpiryFailed(record.override_id, type(exc).__name__))
                continue
            ended_here = ended_here or mine is not None
            ended.append(record)
            await self._bus.emit(OverrideExpired(record))
        # Known overrides past their expiry that some other replica already ended.
        pending_ids = {r.override_id for r in pending}
        ended += [
            record
            for oid, record in self._served.records().items()
            if record.expires_at <= now and oid not in pending_ids
        ]
        await self._forget(ended)
        if ended_here:
            await self._bus.emit(OverridesChanged())
        upcoming = [(r.expires_at - now).total_seconds() for r in pending if r.expires_at > now]
        return min(upcoming, default=float("inf"))

    async def _end_expired(
        self, override_id: str, now: datetime
    ) -> BreakGlassOverrideRecord | None:
        """End an override past its expiry as ``expired`` (actor ``system``), audited or not at
        all: the cache already stopped serving it, so a failed audit write leaves it for the
        next pass. Returns the record, or None when it was unknown or ended by someone else.

        Raises:
            AuditUnavailable: the audit row could not be written (nothing changed).
        """
        return await self._ledger.end(
            override_id, "expired", SYSTEM_ACTOR, None, now, only_if_active=False, audit=True
        )

    # -- reload (startup, reconcile) -----------------------------------------------------------

    async def reload(self) -> None:
        """Bring the served overrides in line with the database.

        Installs every active stored override not served yet (decrypting its stored
        ciphertext, re-checking its key id, integrity and inner type — but not ``issuedAt``
        against the current time: it was checked at activation), and drops the ones the
        database says ended before their expiry (revoked on another replica). An override that
        cannot be opened (another key, tampered row) is reported once and not served.

        Raises:
            DatabaseUnavailable: the database could not be read (nothing changed).
        """
        now = self._clock.now()
        # Only what was known before the read can be judged by it: an override activated here
        # while the read was in flight is missing from it without having ended.
        known_before = self._served.records()
        active = await self._ledger.active(now)
        active_ids = {record.override_id for record in active}
        gone = [
            record
            for oid, record in known_before.items()
            if oid not in active_ids and record.expires_at > now
        ]
        for record in gone:
            await self._bus.emit(OverrideEndedElsewhere(record))
        await self._forget(gone)
        added: list[BreakGlassOverrideRecord] = []
        for record in active:
            if await self._install_stored(record):
                added.append(record)
        for record in added:
            await self._bus.emit(OverrideReloaded(record))

    async def reload_at_startup(self) -> None:
        """:meth:`reload`, but a database failure is reported, not raised (reconcile retries)."""
        try:
            await self.reload()
        except Exception as exc:
            await self._bus.emit(ReloadFailed(type(exc).__name__))

    async def _install_stored(self, record: BreakGlassOverrideRecord) -> bool:
        """Serve a stored active override not served yet; whether it was installed now."""
        oid = record.override_id
        if oid in self._served or oid in self._unreadable:
            return False
        value = await self._reopen(record) if await self._trustworthy(record) else None
        if value is None:
            self._unreadable.add(oid)
            return False
        self._served.add(record, value)
        return True

    async def _trustworthy(self, record: BreakGlassOverrideRecord) -> bool:
        """False (and reported) for a row the service did not write as it is now."""
        window = (record.expires_at - record.activated_at).total_seconds()
        if not record.integrity.servable:
            problem = record.integrity.value
        elif not 0 < window <= break_glass.MAX_TTL_SECONDS:
            # The database CHECK refuses this; re-checked in case the constraint was dropped.
            problem = "window_too_long"
        else:
            return True
        await self._bus.emit(OverrideUntrusted(record, problem))
        return False

    async def _reopen(self, record: BreakGlassOverrideRecord) -> SecretValue | None:
        pair = self._key_pair
        if pair is None:
            await self._bus.emit(OverrideNotServed(record, code=None))
            return None
        try:
            # Checked against its activation time: the payload was fresh then, and only
            # freshness relative to now must not be re-checked after a restart.
            opened = break_glass.open_override(
                pair,
                key_id=record.key_id,
                ciphertext_b64=record.ciphertext,
                expected_secret_type=record.secret_type,
                now=record.activated_at,
            )
            if opened.nonce != record.nonce:
                raise CiphertextInvalid("the stored ciphertext does not match its override record")
        except InvalidInput as exc:
            code = exc.code
        else:
            await self._bus.emit(OverrideReopened(record, opened.value))
            return opened.value
        await self._bus.emit(DecryptionFailed(record.secret_type))
        await self._bus.emit(OverrideNotServed(record, code=code))
        return None

    # -- status --------------------------------------------------------------------------------

    def view(self, secret_type: SecretType) -> BreakGlassView:
        """The override served for ``secret_type`` now, for status (never the value)."""
        info = self._cache.override_info(secret_type)
        if info is None:
            return NO_BREAK_GLASS
        known = self._served.get(info.override_id)
        return BreakGlassView(
            active=True,
            override_id=info.override_id,
            actor=known.record.actor if known else None,
            activated_at=info.activated_at,
            expires_at=info.expires_at,
            reason=known.record.reason if known else None,
        )

    # -- internals -----------------------------------------------------------------------------

    def _require_key_pair(self) -> BreakGlassKeyPair:
        if self._key_pair is None:
            raise BreakGlassDisabled()
        return self._key_pair

    async def _forget(self, records: Iterable[BreakGlassOverrideRecord]) -> None:
        """Stop serving ended ``records`` (``OverridesDropped``: their values, the idle types)."""
        records = list(records)
        if not records:
            return
        ended_values = tuple(
            known.value
            for known in (self._served.get(record.override_id) for record in records)
            if known is not None
        )
        idle = self._served.forget(records)
        await self._bus.emit(OverridesDropped(ended_values, tuple(idle)))
