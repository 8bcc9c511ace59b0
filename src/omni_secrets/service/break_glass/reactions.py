"""What follows each break-glass event: log lines, metrics, alerts, best-effort audit rows and
the peer announcement, in the order they happen (:meth:`BreakGlassReactions.table`).

- every rejection counts ``omni_secret_failures_total{operation="break_glass", reason=<code>}``
  (when the type is in the catalog), logs ``break_glass.rejected`` and writes a
  ``break_glass_rejected`` row in its own transaction (best effort: the caller is refused
  either way; a failed write is counted and alerted by the auditor);
- each decryption counts ``omni_secret_reads_total{source="break_glass"}``;
- a value enters the log redactor once its override is committed or reopened (before anything
  could log it), and leaves it when the override is no longer served;
- an override served here (activated or reloaded) triggers the critical ``break_glass_active``
  alert about its type; the end of the type's last override resolves it;
- a change committed here is announced to the other replicas (``publish("break_glass")``); a
  failure only delays their catch-up until their next reconcile, so it is logged, not raised.

Log event names and fields are stable (dashboards and the runbook use them).
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import structlog

from omni_secrets.domain.changes import KIND_BREAK_GLASS, Publish
from omni_secrets.domain.clock import to_rfc3339
from omni_secrets.domain.errors import AuditUnavailable
from omni_secrets.domain.observations import (
    OperationFailed,
    SecretRead,
    ServiceObserver,
    ValueRetired,
    ValueSeen,
)
from omni_secrets.observability import alert_catalog
from omni_secrets.observability.alert_catalog import BREAK_GLASS_ALERT
from omni_secrets.observability.alerts import Alert
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.break_glass.audit_rows import end_row, rejection_row
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
from omni_secrets.service.integrity import OVERRIDES_TABLE, IntegrityViolation, IntegrityViolations
from omni_secrets.service.messagebus import Reactions

log = structlog.get_logger("omni_secrets.break_glass")

_DISABLED = "break-glass is disabled: no key pair configured"


class Alerts(Protocol):
    """Raises and clears alerts without waiting for delivery (the alert dispatcher)."""

    def trigger(self, alert: Alert) -> object:
        """Raise ``alert`` (or keep it raised)."""
        ...

    def resolve(self, name: str, subject: str) -> object:
        """Clear the alert ``name`` about ``subject``."""
        ...


class BreakGlassReactions:
    """The reactions that need a collaborator, and the feature's table.

    Args:
        observer: counts reads and failures, and teaches the log redactor values.
        alerts: raises and resolves ``break_glass_active``.
        auditor: writes the best-effort rows (``break_glass_rejected``, a deferred revoke's).
        publish: tells the other replicas (``KIND_BREAK_GLASS``).
        integrity: told about each stored override that fails its integrity check.
    """

    def __init__(
        self,
        *,
        observer: ServiceObserver,
        alerts: Alerts,
        auditor: Auditor,
        publish: Publish,
        integrity: IntegrityViolations,
    ) -> None:
        self._observer = observer
        self._alerts = alerts
        self._auditor = auditor
        self._publish = publish
        self._integrity = integrity

    def table(self) -> Reactions:
        """Each event's reactions, in the order they run."""
        return {
            ActivationRejected: [self.count_rejection, log_rejected, self.audit_rejection],
            DecryptionFailed: [self.count_failed_read],
            ActivationNotAudited: [self.count_unaudited, log_not_audited],
            OverrideCommitted: [self.learn_value],
            OverrideActivated: [self.count_read, self.raise_alert, log_activated],
            OverrideRevoked: [log_revoked],
            RevokeAuditDeferred: [log_audit_deferred, self.audit_revoke_later],
            OverrideExpired: [log_expired],
            ExpiryFailed: [log_expiry_failed],
            OverrideEndedElsewhere: [log_ended_elsewhere],
            OverridesDropped: [self.forget_values, self.resolve_alerts],
            OverridesChanged: [self.announce],
            OverrideUntrusted: [self.report_integrity],
            OverrideNotServed: [self.count_not_served, log_not_served],
            OverrideReopened: [self.count_read, self.learn_value],
            OverrideReloaded: [self.raise_alert, log_reloaded],
            ReloadFailed: [log_reload_failed],
        }

    # -- metrics and the redactor ------------------------------------------------------------

    def count_rejection(self, event: ActivationRejected) -> None:
        if event.secret_type is not None:
            self._observer.on_event(
                OperationFailed(event.secret_type.value, "break_glass", event.code)
            )

    def count_failed_read(self, event: DecryptionFailed) -> None:
        self._observer.on_event(SecretRead(event.secret_type.value, "break_glass", ok=False))

    def count_unaudited(self, event: ActivationNotAudited) -> None:
        self._observer.on_event(
            OperationFailed(event.secret_type.value, "break_glass", AuditUnavailable.code)
        )

    def count_read(self, event: OverrideActivated | OverrideReopened) -> None:
        self._observer.on_event(SecretRead(event.record.secret_type.value, "break_glass", ok=True))

    def count_not_served(self, event: OverrideNotServed) -> None:
        if event.code is not None:
            secret_type = event.record.secret_type.value
            self._observer.on_event(OperationFailed(secret_type, "break_glass", event.code))

    def learn_value(self, event: OverrideCommitted | OverrideReopened) -> None:
        self._observer.on_event(ValueSeen(event.value))

    def forget_values(self, event: OverridesDropped) -> None:
        for value in event.values:
            self._observer.on_event(ValueRetired(value))

    # -- alerts and integrity ----------------------------------------------------------------

    def raise_alert(self, event: OverrideActivated | OverrideReloaded) -> None:
        self._alerts.trigger(alert_catalog.break_glass_active(event.record))

    def resolve_alerts(self, event: OverridesDropped) -> None:
        for secret_type in event.idle_types:
            self._alerts.resolve(BREAK_GLASS_ALERT, secret_type.value)

    def report_integrity(self, event: OverrideUntrusted) -> None:
        self._integrity.report(
            IntegrityViolation(
                table=OVERRIDES_TABLE,
                row=event.record.override_id,
                problem=event.problem,
                secret_type=event.record.secret_type.value,
            )
        )

    # -- best-effort audit rows and the announcement -----------------------------------------

    async def audit_rejection(self, event: ActivationRejected) -> None:
        # Counted and alerted by the auditor when it fails; the rejection stands regardless.
        with contextlib.suppress(AuditUnavailable):
            await self._auditor.record(rejection_row(event))

    def audit_revoke_later(self, event: RevokeAuditDeferred) -> None:
        self._auditor.record_later(
            end_row(event.record, "revoked", event.actor, event.correlation_id, event.at)
        )

    async def announce(self, _: OverridesChanged) -> None:
        try:
            await self._publish(KIND_BREAK_GLASS)
        except Exception as exc:
            log.warning("break_glass.notify_failed", error_type=type(exc).__name__)


# -- log lines ---------------------------------------------------------------------------------


def log_rejected(event: ActivationRejected) -> None:
    log.warning(
        "break_glass.rejected",
        secret_type=event.secret_type.value if event.secret_type else None,
        code=event.code,
        actor=event.actor,
    )


def log_not_audited(event: ActivationNotAudited) -> None:
    log.error(
        "break_glass.activation_not_audited",
        secret_type=event.secret_type.value,
        actor=event.actor,
        outcome="nothing activated",
    )


def log_activated(event: OverrideActivated) -> None:
    record = event.record
    log.warning(
        "break_glass.activated",
        secret_type=record.secret_type.value,
        override_id=record.override_id,
        actor=record.actor,
        ticket=record.ticket,
        expires_at=to_rfc3339(record.expires_at),
    )


def log_revoked(event: OverrideRevoked) -> None:
    record = event.record
    log.warning(
        "break_glass.revoked",
        secret_type=record.secret_type.value,
        override_id=record.override_id,
        actor=event.actor,
        remaining_seconds=int((record.expires_at - event.at).total_seconds()),
    )


def log_audit_deferred(event: RevokeAuditDeferred) -> None:
    log.error("break_glass.end_audit_deferred", override_id=event.record.override_id)


def log_expired(event: OverrideExpired) -> None:
    log.info(
        "break_glass.expired",
        secret_type=event.record.secret_type.value,
        override_id=event.record.override_id,
    )


def log_expiry_failed(event: ExpiryFailed) -> None:
    log.error(
        "break_glass.expire_failed", override_id=event.override_id, error_type=event.error_type
    )


def log_ended_elsewhere(event: OverrideEndedElsewhere) -> None:
    log.info(
        "break_glass.ended_elsewhere",
        secret_type=event.record.secret_type.value,
        override_id=event.record.override_id,
    )


def log_not_served(event: OverrideNotServed) -> None:
    log.error(
        "break_glass.not_served",
        secret_type=event.record.secret_type.value,
        override_id=event.record.override_id,
        reason=event.code if event.code is not None else _DISABLED,
    )


def log_reloaded(event: OverrideReloaded) -> None:
    record = event.record
    log.warning(
        "break_glass.reloaded",
        secret_type=record.secret_type.value,
        override_id=record.override_id,
        expires_at=to_rfc3339(record.expires_at),
    )


def log_reload_failed(event: ReloadFailed) -> None:
    log.error("break_glass.reload_failed", error_type=event.error_type)
