"""``BreakGlassService``: activating, revoking, expiring and reloading break-glass overrides.

An operator seals a credential to the service's public key and posts it (contract section 5).
This service checks the request (TTL, type, then the sealed payload), stores the override — the
ciphertext only, never the value — together with its ``break_glass_activate`` audit row in one
transaction, and only after that commit installs the decrypted value in the cache, where it wins
over GSM until it expires or is revoked. If the audit row cannot be written nothing is stored or
served (fail closed, ``AUDIT_UNAVAILABLE``).

What surrounds an override:

- every rejection (each 4xx) writes a ``break_glass_rejected`` row in its own transaction (best
  effort: the caller gets the rejection either way) and counts
  ``omni_secret_failures_total{operation="break_glass", reason=<code>}``;
- each decryption counts ``omni_secret_reads_total{source="break_glass"}``;
- activation triggers the critical ``break_glass_active`` alert (subject: the secret type); the
  end of the type's last override resolves it;
- :meth:`BreakGlassService.expire_due` (run by ``jobs/breakglass_expiry.py``) marks overrides past
  their expiry as ended in the database and audits ``break_glass_expire``. The cache stops
  serving an expired override on its own hot path; the job makes the database and audit agree;
- :meth:`BreakGlassService.reload` (at startup and from the periodic reconcile) installs the
  overrides the database holds that this process does not serve yet (after a restart, or
  activated on another replica) and drops those ended elsewhere (revoked on another replica).

Several overrides of one type may be active at once: the newest activation is served, and when it
ends the next newest still active takes over.

Values stay in memory: they are decrypted into :class:`~omni_secrets.domain.values.SecretValue`
and handed to the cache; audit rows, logs, alerts and errors carry ids, codes and times only.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from omni_secrets.domain import breakglass
from omni_secrets.domain.breakglass import BreakGlassKeyPair, OpenedOverride
from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import SecretType, parse_secret_type
from omni_secrets.domain.changes import KIND_BREAK_GLASS, Publish, publish_nothing
from omni_secrets.domain.clock import Clock, to_rfc3339
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
    OverrideEndReason,
)
from omni_secrets.domain.observations import (
    OperationFailed,
    SecretRead,
    ServiceObserver,
    ValueRetired,
    ValueSeen,
)
from omni_secrets.domain.repositories import UnitOfWork, UnitOfWorkFactory
from omni_secrets.domain.values import SecretValue
from omni_secrets.observability import alert_catalog
from omni_secrets.observability.alert_catalog import BREAK_GLASS_ALERT
from omni_secrets.observability.alerts import AlertDispatcher
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.integrity import (
    OVERRIDES_TABLE,
    IntegrityViolation,
    IntegrityViolations,
)
from omni_secrets.service.served_overrides import ServedOverrides
from omni_secrets.service.views import NO_BREAK_GLASS, BreakGlassView

log = structlog.get_logger("omni_secrets.breakglass")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CATALOG_NAMES = frozenset(t.value for t in SecretType)
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
        auditor: writes the audit rows (``append_in`` inside the activation's transaction).
        cache: where overrides are served from.
        alerts: raises and resolves ``break_glass_active``.
        clock: wall time for windows and ``issuedAt`` checks.
        observer: told of each decryption (a read from ``break_glass``), each rejection or failed
            reload (a ``break_glass`` failure) each value once its override is committed or reloaded
            (``ValueSeen``) and each value no longer served (``ValueRetired``).
        new_id: makes override ids.
        on_change: awaited with ``"break_glass"`` after an activation, revoke or expiry was
            committed here, so the other replicas reconcile at once (it must not raise).
        integrity: told about each stored override refused on reload (MAC missing or wrong,
            window longer than the 30-minute cap).
    """

    def __init__(
        self,
        *,
        key_pair: BreakGlassKeyPair | None,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        cache: OmniSecretCache,
        alerts: AlertDispatcher,
        clock: Clock,
        observer: ServiceObserver,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        on_change: Publish = publish_nothing,
        integrity: IntegrityViolations | None = None,
    ) -> None:
        self._key_pair = key_pair
        self._integrity = integrity or IntegrityViolations()
        self._uow_factory = uow_factory
        self._auditor = auditor
        self._cache = cache
        self._alerts = alerts
        self._clock = clock
        self._observer = observer
        self._new_id = new_id
        self._on_change = on_change
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
        return PublicKeyInfo(pair.key_id, pair.public_key_b64, breakglass.ALGORITHM)

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
        after that commit is the value installed in the cache, the read counted and the alert
        raised.

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
                is not acceptable (see :func:`~omni_secrets.domain.breakglass.open_override`).
            ReplayDetected: the payload's nonce was used before.
            AuditUnavailable: the audit row (or the transaction holding it) could not be
                written; nothing was stored or activated.
        """
        pair = self._require_key_pair()
        started = time.perf_counter()
        # For the rejection's audit row and metric label, whatever check fails first.
        label = SecretType(secret_type) if secret_type in _CATALOG_NAMES else None
        now = self._clock.now()
        try:
            breakglass.validate_ttl(ttl_seconds)
            if not reason.strip():
                raise InvalidInput("a break-glass reason is required")
            if not _storable(reason) or (ticket is not None and not _storable(ticket)):
                raise InvalidInput("reason and ticket must be UTF-8 text without NUL characters")
            checked = parse_secret_type(secret_type)
            opened = self._open(pair, checked, key_id, ciphertext, now)
        except InvalidInput as exc:
            await self._reject(exc, label, ttl_seconds, ticket, actor, correlation_id)
            raise

        record = BreakGlassOverrideRecord(
            override_id=self._new_id(),
            secret_type=checked,
            key_id=pair.key_id,
            ciphertext=ciphertext,
            nonce=opened.nonce,
            actor=actor,
            reason=reason,
            ticket=ticket,
            activated_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        event = access_event(
            action="break_glass_activate",
            at=now,
            actor=actor,
            secret_type=checked.value,
            correlation_id=correlation_id,
            started=started,
            details={
                "overrideId": record.override_id,
                "keyId": record.key_id,
                "ttlSeconds": ttl_seconds,
                "activatedAt": to_rfc3339(record.activated_at),
                "expiresAt": to_rfc3339(record.expires_at),
                "issuedAt": to_rfc3339(opened.issued_at),
                "reason": reason,
                "ticket": ticket,
            },
        )
        try:
            await self._store_activation(record, event)
        except ReplayDetected as exc:
            await self._reject(exc, checked, ttl_seconds, ticket, actor, correlation_id)
            raise
        except (AuditUnavailable, DatabaseUnavailable):
            self._observer.on_event(
                OperationFailed(checked.value, "break_glass", AuditUnavailable.code)
            )
            log.error(
                "break_glass.activation_not_audited",
                secret_type=checked.value,
                actor=actor,
                outcome="nothing activated",
            )
            raise AuditUnavailable(
                "the break-glass activation could not be audited; nothing was activated"
            ) from None

        self._observer.on_event(ValueSeen(opened.value))
        self._served.add(record, opened.value)
        self._observer.on_event(SecretRead(checked.value, "break_glass", ok=True))
        self._raise_alert(record)
        log.warning(
            "break_glass.activated",
            secret_type=checked.value,
            override_id=record.override_id,
            actor=actor,
            ticket=ticket,
            expires_at=to_rfc3339(record.expires_at),
        )
        await self._announce()
        return ActivatedOverride(
            override_id=record.override_id,
            secret_type=checked.value,
            activated_at=record.activated_at,
            expires_at=record.expires_at,
        )

    def _open(
        self,
        pair: BreakGlassKeyPair,
        secret_type: SecretType,
        key_id: str,
        ciphertext: str,
        now: datetime,
    ) -> OpenedOverride:
        try:
            opened = breakglass.open_override(
                pair,
                key_id=key_id,
                ciphertext_b64=ciphertext,
                expected_secret_type=secret_type,
                now=now,
            )
        except InvalidInput as exc:
            # An unknown key id is refused before any decryption is attempted.
            if not isinstance(exc, UnknownKeyId):
                self._observer.on_event(SecretRead(secret_type.value, "break_glass", ok=False))
            raise
        # Not registered with the log redactor yet: a refused payload (replay, audit down) must
        # not let its sender choose words to mask out of every later log line.
        return opened

    async def _store_activation(
        self, record: BreakGlassOverrideRecord, event: NewAccessEvent
    ) -> None:
        async with self._uow_factory() as uow:
            await uow.overrides.add(record)
            await uow.metadata.set_break_glass(
                record.secret_type.value, record.activated_at, record.expires_at
            )
            # Appended last: the append serialises every audit writer until the commit.
            await self._auditor.append_in(uow, event)
            await uow.commit()

    async def _reject(
        self,
        exc: OmniSecretsError,
        secret_type: SecretType | None,
        ttl_seconds: int,
        ticket: str | None,
        actor: str,
        correlation_id: str | None,
    ) -> None:
        """Count and audit a refused activation (best effort: the caller is refused anyway)."""
        if secret_type is not None:
            self._observer.on_event(OperationFailed(secret_type.value, "break_glass", exc.code))
        log.warning(
            "break_glass.rejected",
            secret_type=secret_type.value if secret_type else None,
            code=exc.code,
            actor=actor,
        )
        event = access_event(
            action="break_glass_rejected",
            at=self._clock.now(),
            actor=actor,
            result="conflict" if isinstance(exc, ReplayDetected) else "denied",
            secret_type=secret_type.value if secret_type else None,
            correlation_id=correlation_id,
            details={
                "code": exc.code,
                "ttlSeconds": ttl_seconds,
                "ticket": ticket if ticket is not None and _storable(ticket) else None,
            },
        )
        # Counted and alerted by the auditor when it fails; the rejection stands regardless.
        with contextlib.suppress(AuditUnavailable):
            await self._auditor.record(event)

    # -- revoke --------------------------------------------------------------------------------

    async def revoke(self, override_id: str, *, actor: str, correlation_id: str | None) -> None:
        """End an active override early (``DELETE .../break-glass/{overrideId}``).

        The override is ended in the database with its ``break_glass_revoke`` audit row in one
        transaction, then removed from the cache (the type reverts to GSM, or to an older
        override of the type still active) and the alert is resolved when none is left. Other
        replicas drop it when notified (``on_change``), else at their next reconcile.

        A revoke reduces exposure, so it does not fail closed on the audit: when the audit row
        cannot be written the override is still ended, and the row is queued for the background
        writer (whose failures are counted and alerted).

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
        self._forget([record])
        log.warning(
            "break_glass.revoked",
            secret_type=record.secret_type.value,
            override_id=override_id,
            actor=actor,
            remaining_seconds=int((record.expires_at - now).total_seconds()),
        )
        await self._announce()

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
        async with self._uow_factory() as uow:
            # Not ended and expiring after the epoch: every override not ended yet.
            pending = await uow.overrides.list_active(_EPOCH)
        ended: list[BreakGlassOverrideRecord] = []
        ended_here = False
        for record in pending:
            if record.expires_at > now:
                continue
            try:
                mine = await self._end_expired(record.override_id, now)
            except (AuditUnavailable, DatabaseUnavailable) as exc:
                log.error(
                    "break_glass.expire_failed",
                    override_id=record.override_id,
                    error_type=type(exc).__name__,
                )
                continue
            ended_here = ended_here or mine is not None
            ended.append(record)
            log.info(
                "break_glass.expired",
                secret_type=record.secret_type.value,
                override_id=record.override_id,
            )
        # Known overrides past their expiry that some other replica already ended.
        pending_ids = {r.override_id for r in pending}
        ended += [
            record
            for oid, record in self._served.records().items()
            if record.expires_at <= now and oid not in pending_ids
        ]
        self._forget(ended)
        if ended_here:
            await self._announce()
        upcoming = [(r.expires_at - now).total_seconds() for r in pending if r.expires_at > now]
        return min(upcoming, default=float("inf"))

    # -- reload (startup, reconcile) -----------------------------------------------------------

    async def reload(self) -> None:
        """Bring the served overrides in line with the database.

        Installs every active stored override not served yet (decrypting its stored
        ciphertext, re-checking its key id, integrity and inner type — but not ``issuedAt``
        against the current time: it was checked at activation), and drops the ones the
        database says ended before their expiry (revoked on another replica). An override that
        cannot be opened (another key, tampered row) is logged and counted once and not served.

        Raises:
            DatabaseUnavailable: the database could not be read (nothing changed).
        """
        now = self._clock.now()
        # Only what was known before the read can be judged by it: an override activated here
        # while the read was in flight is missing from it without having ended.
        known_before = self._served.records()
        async with self._uow_factory() as uow:
            active = await uow.overrides.list_active(now)
        active_ids = {record.override_id for record in active}
        gone = [
            record
            for oid, record in known_before.items()
            if oid not in active_ids and record.expires_at > now
        ]
        for record in gone:
            log.info(
                "break_glass.ended_elsewhere",
                secret_type=record.secret_type.value,
                override_id=record.override_id,
            )
        self._forget(gone)
        added: list[BreakGlassOverrideRecord] = []
        for record in active:
            oid = record.override_id
            if oid in self._served or oid in self._unreadable:
                continue
            if not self._trustworthy(record):
                self._unreadable.add(oid)
                continue
            value = self._reopen(record)
            if value is None:
                self._unreadable.add(oid)
                continue
            self._served.add(record, value)
            added.append(record)
        for record in added:
            self._raise_alert(record)
            log.warning(
                "break_glass.reloaded",
                secret_type=record.secret_type.value,
                override_id=record.override_id,
                expires_at=to_rfc3339(record.expires_at),
            )

    async def reload_at_startup(self) -> None:
        """:meth:`reload`, but a database failure is logged, not raised (reconcile retries)."""
        try:
            await self.reload()
        except Exception as exc:
            log.error("break_glass.reload_failed", error_type=type(exc).__name__)

    def _trustworthy(self, record: BreakGlassOverrideRecord) -> bool:
        """False (and reported) for a row the service did not write as it is now."""
        window = (record.expires_at - record.activated_at).total_seconds()
        if not record.integrity.servable:
            problem = record.integrity.value
        elif not 0 < window <= breakglass.MAX_TTL_SECONDS:
            # The database CHECK refuses this; re-checked in case the constraint was dropped.
            problem = "window_too_long"
        else:
            return True
        self._integrity.report(
            IntegrityViolation(
                table=OVERRIDES_TABLE,
                row=record.override_id,
                problem=problem,
                secret_type=record.secret_type.value,
            )
        )
        return False

    def _reopen(self, record: BreakGlassOverrideRecord) -> SecretValue | None:
        secret_type = record.secret_type.value
        pair = self._key_pair
        if pair is None:
            log.error(
                "break_glass.not_served",
                secret_type=secret_type,
                override_id=record.override_id,
                reason="break-glass is disabled: no key pair configured",
            )
            return None
        try:
            # Checked against its activation time: the payload was fresh then, and only
            # freshness relative to now must not be re-checked after a restart.
            opened = breakglass.open_override(
                pair,
                key_id=record.key_id,
                ciphertext_b64=record.ciphertext,
                expected_secret_type=record.secret_type,
                now=record.activated_at,
            )
            if opened.nonce != record.nonce:
                raise CiphertextInvalid("the stored ciphertext does not match its override record")
        except InvalidInput as exc:
            self._observer.on_event(SecretRead(secret_type, "break_glass", ok=False))
            self._observer.on_event(OperationFailed(secret_type, "break_glass", exc.code))
            log.error(
                "break_glass.not_served",
                secret_type=secret_type,
                override_id=record.override_id,
                reason=exc.code,
            )
            return None
        self._observer.on_event(SecretRead(secret_type, "break_glass", ok=True))
        self._observer.on_event(ValueSeen(opened.value))
        return opened.value

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

    async def _announce(self) -> None:
        """Tell the other replicas (after the commit); a failure only delays their catch-up."""
        try:
            await self._on_change(KIND_BREAK_GLASS)
        except Exception as exc:
            log.warning("break_glass.notify_failed", error_type=type(exc).__name__)

    def _require_key_pair(self) -> BreakGlassKeyPair:
        if self._key_pair is None:
            raise BreakGlassDisabled()
        return self._key_pair

    async def _end_revoked(
        self, override_id: str, actor: str, correlation_id: str | None, now: datetime
    ) -> BreakGlassOverrideRecord | None:
        """End a still-active override as ``revoked``; the record, or None if not ours.

        None when the override is unknown, already ended (by someone else) or past its expiry.
        An operator's revoke must stop the override even while audit writes fail: then the row
        is ended without its audit event, which is written in the background.
        """
        try:
            return await self._end_once(
                override_id, "revoked", actor, correlation_id, now, True, audit=True
            )
        except AuditUnavailable:
            pass
        record = await self._end_once(
            override_id, "revoked", actor, correlation_id, now, True, audit=False
        )
        if record is not None:
            log.error("break_glass.end_audit_deferred", override_id=override_id)
            self._auditor.record_later(
                self._end_event(record, "revoked", actor, correlation_id, now)
            )
        return record

    async def _end_expired(
        self, override_id: str, now: datetime
    ) -> BreakGlassOverrideRecord | None:
        """End an override past its expiry as ``expired`` (actor ``system``), audited or not at
        all: the cache already stopped serving it, so a failed audit write leaves it for the
        next pass. Returns the record, or None when it was unknown or ended by someone else.

        Raises:
            AuditUnavailable: the audit row could not be written (nothing changed).
        """
        return await self._end_once(
            override_id, "expired", SYSTEM_ACTOR, None, now, False, audit=True
        )

    async def _end_once(
        self,
        override_id: str,
        end_reason: OverrideEndReason,
        actor: str,
        correlation_id: str | None,
        now: datetime,
        only_if_active: bool,
        *,
        audit: bool,
    ) -> BreakGlassOverrideRecord | None:
        """One transaction: end the override (``only_if_active``: unless already expired), keep
        the metadata window in step, and append its audit row when ``audit``."""
        async with self._uow_factory() as uow:
            record = await uow.overrides.get(override_id)
            if record is None or record.ended_at is not None:
                return None
            if only_if_active and not record.is_active(now):
                return None
            if not await uow.overrides.end(override_id, now, end_reason):
                return None  # ended concurrently by another replica
            await self._sync_metadata(uow, record.secret_type, now)
            if audit:
                await self._auditor.append_in(
                    uow, self._end_event(record, end_reason, actor, correlation_id, now)
                )
            await uow.commit()
        return record

    @staticmethod
    async def _sync_metadata(uow: UnitOfWork, secret_type: SecretType, now: datetime) -> None:
        """Point the type's metadata window at its newest override still active, or clear it."""
        remaining = [
            r for r in await uow.overrides.list_active(now) if r.secret_type == secret_type
        ]
        if remaining:
            newest = max(remaining, key=lambda r: (r.activated_at, r.override_id))
            await uow.metadata.set_break_glass(
                secret_type.value, newest.activated_at, newest.expires_at
            )
        else:
            await uow.metadata.set_break_glass(secret_type.value, None, None)

    @staticmethod
    def _end_event(
        record: BreakGlassOverrideRecord,
        end_reason: OverrideEndReason,
        actor: str,
        correlation_id: str | None,
        now: datetime,
    ) -> NewAccessEvent:
        details: dict[str, object] = {
            "overrideId": record.override_id,
            "activatedAt": to_rfc3339(record.activated_at),
            "expiresAt": to_rfc3339(record.expires_at),
            "activatedBy": record.actor,
            "ticket": record.ticket,
        }
        if end_reason == "revoked":
            details["remainingSeconds"] = max(0, int((record.expires_at - now).total_seconds()))
        return access_event(
            action="break_glass_revoke" if end_reason == "revoked" else "break_glass_expire",
            at=now,
            actor=actor,
            secret_type=record.secret_type.value,
            correlation_id=correlation_id,
            details=details,
        )

    def _forget(self, records: Iterable[BreakGlassOverrideRecord]) -> None:
        """Stop serving ended ``records``; resolve the alert of types left without override."""
        records = list(records)
        ended_values = [
            known.value
            for known in (self._served.get(record.override_id) for record in records)
            if known is not None
        ]
        idle = self._served.forget(records)
        for value in ended_values:
            self._observer.on_event(ValueRetired(value))
        for secret_type in idle:
            self._alerts.resolve(BREAK_GLASS_ALERT, secret_type.value)

    def _raise_alert(self, record: BreakGlassOverrideRecord) -> None:
        self._alerts.trigger(alert_catalog.break_glass_active(record))


def _storable(text: str) -> bool:
    """Whether every database can store ``text`` (PostgreSQL refuses NUL; no lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
