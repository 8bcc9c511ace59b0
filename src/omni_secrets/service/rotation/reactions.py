"""What follows each rotation event: the feature's reaction table (see :mod:`.events`).

Service events (logger ``omni_secrets.rotation``):

- ``CandidateRead`` → ``omni_secret_reads_total{source="gsm"}``; the value, if any, to the log
  redactor (before any later log line could name it).
- ``RotationFailed`` → ``omni_secret_failures_total{operation="rotation"}`` once per member of the
  group; a background audit row of the failed action (``conflict`` for a lost lock race).
- ``PreviewStored`` → ``rotation.previewed``; this replica re-reads the metadata, so status shows
  ``previewOpen`` at once (``rotation.metadata_reload_failed`` if it cannot).
- ``LockReleaseFailed`` → ``rotation.lock_release_failed``.
- ``PreviewUntrusted`` → an integrity violation (``omni_rotation_previews``): logged, counted
  and paged once per preview and problem.
- ``RotationCommitted`` → ``rotation.committed``; the new pins (and any other pin that changed)
  served on this replica at once (``rotation.refresh_after_commit_failed`` if not: the commit
  stands, the periodic reconcile retries); the group's ``rotation_due_soon`` and
  ``rotation_overdue`` alerts resolved; the rotation monitor woken
  (``rotation.on_commit_failed``); the other replicas told (``publish("rotation")``,
  ``rotation.notify_failed``); GSM's own reminder moved to the new ``dueAt`` minus the warning
  window on each member that has topics (``rotation.gsm_reminder_set``, or
  ``rotation.gsm_reminder_failed`` per secret GSM refused).
- ``RotationRolledBack`` → ``rotation.rolled_back``, then as a commit (pins served, monitor
  woken, replicas told, GSM's reminder moved to the restored ``dueAt``).
- ``RotationCancelled`` → ``rotation.cancelled``; the metadata re-read, as after a preview.
- ``RotationRecovered`` → ``rotation.recovered`` (warning: a replica died mid-commit); the pins
  served at once, the monitor woken and the other replicas told, as after a commit.
- ``RecoveryDeferred`` → ``rotation.recovery_deferred`` (the entry is retried next round).
- ``RotationAdopted`` → ``rotation.adopted`` (warning: GSM was changed outside this service);
  as after a commit, plus ``omni_secret_alias_drift`` 0 and ``alias_drift`` resolved.
- ``AliasDrift`` → ``rotation.drift`` / ``rotation.drift_cleared`` /
  ``rotation.follow_failed``; ``omni_secret_alias_drift`` per member; after 10 minutes alert
  ``alias_drift`` (warning), resolved when the group is in step or adopted.

Monitor events (logger ``omni_secrets.rotation_monitor``):

- ``RotationReportComputed`` → ``omni_secret_rotation_overdue`` and
  ``omni_secret_rotation_due_timestamp_seconds`` for every seeded type;
  ``rotation_monitor.not_seeded`` when types have no metadata row.
- ``RotationAlertsAsserted`` → per group: overdue triggers ``rotation_overdue`` and resolves
  ``rotation_due_soon``, due soon the reverse, ok resolves both.
- ``RotationStatusChanged`` → a background ``rotation_alert`` audit row (actor ``system``).
- ``MonitorRoundFailed`` / ``MonitorLeadershipUnknown`` → ``rotation_monitor.round_failed`` /
  ``rotation_monitor.leadership_unknown``.

Every reaction catches what it expects to fail and logs it under today's event name; anything
else is contained by the dispatcher (``reaction.failed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import structlog

from omni_secrets.domain import rotation
from omni_secrets.domain.audit_trail import BackgroundAudit
from omni_secrets.domain.cache import RefreshOutcome
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.changes import KIND_ROTATION, Publish
from omni_secrets.domain.clock import to_rfc3339
from omni_secrets.domain.models import SYSTEM_ACTOR
from omni_secrets.domain.observations import (
    FailedOperation,
    OperationFailed,
    SecretRead,
    ServiceObserver,
    ValueSeen,
)
from omni_secrets.observability import alert_catalog
from omni_secrets.observability.alert_catalog import (
    ALIAS_DRIFT_ALERT,
    DUE_SOON_ALERT,
    OVERDUE_ALERT,
)
from omni_secrets.observability.alerts import Alert, AlertDispatcher
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.service.auditor import access_event
from omni_secrets.service.integrity import PREVIEWS_TABLE, IntegrityViolation, IntegrityViolations
from omni_secrets.service.messagebus import Reactions
from omni_secrets.service.rotation.events import (
    AliasDrift,
    CandidateRead,
    LockReleaseFailed,
    MonitorLeadershipUnknown,
    MonitorRoundFailed,
    PreviewStored,
    PreviewUntrusted,
    RecoveryDeferred,
    RotationAdopted,
    RotationAlertsAsserted,
    RotationCancelled,
    RotationCommitted,
    RotationFailed,
    RotationRecovered,
    RotationReportComputed,
    RotationRolledBack,
    RotationStatusChanged,
)
from omni_secrets.service.rotation.monitor import RotationMonitor
from omni_secrets.service.rotation.reminder import GsmRotationReminder, ReminderOutcome
from omni_secrets.service.rotation.report import GroupRotation
from omni_secrets.service.serving.secrets import OmniSecretService

log = structlog.get_logger("omni_secrets.rotation")
monitor_log = structlog.get_logger("omni_secrets.rotation_monitor")

OPERATION: Final[FailedOperation] = "rotation"
ROTATION_ALERT_NAMES: Final = (DUE_SOON_ALERT, OVERDUE_ALERT)
"""The per-group alerts the monitor raises and a commit resolves."""


class RotationReactions:
    """Reactions to the rotation service's events.

    Args:
        catalog: the secret types (a catch-up compares every type's pin).
        secrets: the serving side, whose metadata and cache a catch-up refreshes.
        alerts: a commit resolves the group's rotation alerts.
        observer: counts reads and failures and teaches the redactor each value seen.
        auditor: queues the audit rows of failures.
        monitor: woken after a commit so the gauges and alerts follow at once.
        publish: tells the other replicas (``KIND_ROTATION``); must not raise.
        reminder: moves GSM's own rotation reminder after a commit or rollback (None: off).
        integrity: told about each preview refused for its integrity (contract section 17).
        metrics: ``omni_secret_alias_drift`` follows the drift.
        environment: named in the ``alias_drift`` alert.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        secrets: OmniSecretService,
        alerts: AlertDispatcher,
        observer: ServiceObserver,
        auditor: BackgroundAudit,
        monitor: RotationMonitor,
        publish: Publish,
        metrics: OmniMetrics,
        environment: str,
        reminder: GsmRotationReminder | None = None,
        integrity: IntegrityViolations | None = None,
    ) -> None:
        self._metrics = metrics
        self._environment = environment
        self._reminder = reminder
        self._integrity = integrity or IntegrityViolations()
        self._catalog = catalog
        self._secrets = secrets
        self._alerts = alerts
        self._observer = observer
        self._auditor = auditor
        self._monitor = monitor
        self._publish = publish

    def table(self) -> Reactions:
        return {
            CandidateRead: [self.count_read, self.register_value],
            RotationFailed: [self.count_failures, self.audit_failure],
            PreviewStored: [self.log_previewed, self.show_previews],
            LockReleaseFailed: [self.log_lock_release_failed],
            PreviewUntrusted: [self.report_untrusted],
            RotationCommitted: [
                self.log_committed,
                self.serve_new_pins,
                self.resolve_alerts,
                self.wake_monitor,
                self.announce,
                self.move_gsm_reminder,
            ],
            RotationRolledBack: [
                self.log_rolled_back,
                self.serve_new_pins,
                self.wake_monitor,
                self.announce,
                self.move_gsm_reminder,
            ],
            RotationCancelled: [self.log_cancelled, self.show_previews],
            RotationRecovered: [
                self.log_recovered,
                self.serve_new_pins,
                self.wake_monitor,
                self.announce,
            ],
            RecoveryDeferred: [self.log_deferred],
            RotationAdopted: [
                self.log_adopted,
                self.serve_new_pins,
                self.resolve_alerts,
                self.resolve_drift,
                self.wake_monitor,
                self.announce,
                self.move_gsm_reminder,
            ],
            AliasDrift: [self.follow_drift],
        }

    # -- preview -----------------------------------------------------------------------------

    def report_untrusted(self, event: PreviewUntrusted) -> None:
        self._integrity.report(
            IntegrityViolation(
                table=PREVIEWS_TABLE,
                row=event.preview_id,
                problem=event.problem,
                secret_type=event.group,
            )
        )

    def count_read(self, event: CandidateRead) -> None:
        self._observer.on_event(SecretRead(event.secret_type, "gsm", ok=event.ok))

    def register_value(self, event: CandidateRead) -> None:
        if event.value is not None:
            self._observer.on_event(ValueSeen(event.value))

    def log_previewed(self, event: PreviewStored) -> None:
        log.info(
            "rotation.previewed",
            group=event.group,
            preview_id=event.preview_id,
            ready=event.ready,
            failed_checks=list(event.failed_checks),
        )

    def log_lock_release_failed(self, event: LockReleaseFailed) -> None:
        log.warning(
            "rotation.lock_release_failed",
            group=event.group,
            preview_id=event.preview_id,
            error_type=event.error_type,
        )

    async def show_previews(self, _event: PreviewStored | RotationCancelled) -> None:
        """Re-read the metadata: status shows ``previewOpen`` from this replica's copy."""
        try:
            await self._catch_up(())
        except Exception as exc:
            log.warning("rotation.metadata_reload_failed", error_type=type(exc).__name__)

    # -- failures ----------------------------------------------------------------------------

    def count_failures(self, event: RotationFailed) -> None:
        for secret_type in event.secret_types:
            self._observer.on_event(OperationFailed(secret_type, OPERATION, event.code))

    def audit_failure(self, event: RotationFailed) -> None:
        self._auditor.record_later(
            access_event(
                action=event.action,
                at=event.at,
                actor=event.actor,
                result="conflict" if event.conflict else "failure",
                secret_type=None,
                correlation_id=event.correlation_id,
                details={**event.context, "error": {"code": event.code, **event.error_details}},
            )
        )

    # -- commit and cancel -------------------------------------------------------------------

    def log_committed(self, event: RotationCommitted) -> None:
        log.info(
            "rotation.committed",
            group=event.group,
            preview_id=event.preview_id,
            versions=dict(event.versions),
        )

    def log_rolled_back(self, event: RotationRolledBack) -> None:
        log.info("rotation.rolled_back", group=event.group, versions=dict(event.versions))

    async def serve_new_pins(
        self, event: RotationCommitted | RotationRolledBack | RotationRecovered | RotationAdopted
    ) -> None:
        try:
            outcomes = await self._catch_up([SecretType(t) for t in event.secret_types])
        except Exception as exc:  # the commit stands; reconcile picks the pins up later
            log.warning(
                "rotation.refresh_after_commit_failed",
                group=event.group,
                error_type=type(exc).__name__,
            )
            return
        failed = [t.value for t, outcome in outcomes.items() if not outcome.ok]
        if failed:
            log.warning(
                "rotation.refresh_after_commit_failed", group=event.group, secret_types=failed
            )

    def resolve_alerts(self, event: RotationCommitted | RotationAdopted) -> None:
        for name in ROTATION_ALERT_NAMES:
            self._alerts.resolve(name, event.group)

    def wake_monitor(
        self, _event: RotationCommitted | RotationRolledBack | RotationRecovered | RotationAdopted
    ) -> None:
        try:
            self._monitor.wake()
        except Exception as exc:
            log.warning("rotation.on_commit_failed", error_type=type(exc).__name__)

    async def announce(
        self, _event: RotationCommitted | RotationRolledBack | RotationRecovered | RotationAdopted
    ) -> None:
        try:
            # The other replicas refresh the new pins at once instead of at their next reconcile.
            await self._publish(KIND_ROTATION)
        except Exception as exc:
            log.warning("rotation.notify_failed", error_type=type(exc).__name__)

    def log_recovered(self, event: RotationRecovered) -> None:
        log.warning(
            "rotation.recovered",
            group=event.group,
            journal_id=event.journal_id,
            kind=event.kind,
            outcome=event.outcome,
            owner_replica_id=event.owner_replica_id,
            versions=dict(event.versions),
        )

    def log_adopted(self, event: RotationAdopted) -> None:
        log.warning("rotation.adopted", group=event.group, versions=dict(event.versions))

    def resolve_drift(self, event: RotationAdopted) -> None:
        for secret_type in event.secret_types:
            self._metrics.show_alias_drift(secret_type, False)
        if event.had_drift:
            self._alerts.resolve(ALIAS_DRIFT_ALERT, event.group)

    def follow_drift(self, event: AliasDrift) -> None:
        """Log each change, keep the gauge, page once the drift has lasted 10 minutes."""
        if event.error_type is not None:
            log.warning("rotation.follow_failed", group=event.group, error_type=event.error_type)
            return
        for secret_type in event.secret_types:
            self._metrics.show_alias_drift(secret_type, event.reason is not None)
        if event.reason is None or event.since is None:
            log.info("rotation.drift_cleared", group=event.group)
            self._alerts.resolve(ALIAS_DRIFT_ALERT, event.group)
            return
        if event.overdue:
            self._alerts.trigger(
                alert_catalog.alias_drift(
                    self._environment,
                    group=event.group,
                    reason=event.reason,
                    since=event.since,
                    secret_types=event.secret_types,
                )
            )
            return
        log.warning(
            "rotation.drift",
            group=event.group,
            reason=event.reason,
            since=to_rfc3339(event.since),
        )

    def log_deferred(self, event: RecoveryDeferred) -> None:
        log.warning(
            "rotation.recovery_deferred",
            group=event.group,
            journal_id=event.journal_id,
            reason=event.reason,
            error_type=event.error_type,
        )

    async def move_gsm_reminder(
        self, event: RotationCommitted | RotationRolledBack | RotationAdopted
    ) -> None:
        """GSM publishes ``SECRET_ROTATE`` at the new ``dueAt`` minus the warning window."""
        if self._reminder is None or event.due_at is None:
            return
        try:
            results = await self._reminder.schedule(event.secret_types, event.due_at)
        except Exception as exc:
            log.warning(
                "rotation.gsm_reminder_failed", group=event.group, error_type=type(exc).__name__
            )
            return
        for item in results:
            if item.outcome is ReminderOutcome.FAILED:
                log.warning(
                    "rotation.gsm_reminder_failed",
                    group=event.group,
                    secret_type=item.secret_type,
                    reason=item.reason,
                )
        # A secret without topics has no reminder to keep (dev, or events not set up): silence.
        done = [r for r in results if r.outcome in (ReminderOutcome.SET, ReminderOutcome.UNCHANGED)]
        if done:
            log.info(
                "rotation.gsm_reminder_set",
                group=event.group,
                outcomes={r.secret_type: r.outcome.value for r in done},
                next_rotation_time=to_rfc3339(self._reminder.reminder_time(event.due_at)),
            )

    def log_cancelled(self, event: RotationCancelled) -> None:
        log.info("rotation.cancelled", group=event.group, preview_id=event.preview_id)

    # -- helpers -----------------------------------------------------------------------------

    async def _catch_up(self, types: Sequence[SecretType]) -> dict[SecretType, RefreshOutcome]:
        """Reload the serving side's metadata and refresh ``types`` plus every changed pin.

        Reloading alone would hide a pin that another replica changed from the periodic
        reconcile (it compares the pins before and after its own reload), so whatever pin this
        reload changes is refreshed here too, at once.
        """
        before = {t: self._pin(t) for t in self._catalog.types}
        await self._secrets.reload_metadata()
        changed = [t for t in self._catalog.types if self._pin(t) not in (None, before[t])]
        refresh = list(dict.fromkeys([*types, *changed]))
        if not refresh:
            return {}
        return await self._secrets.cache.refresh(refresh, force_new=True)

    def _pin(self, secret_type: SecretType) -> str | None:
        meta = self._secrets.metadata(secret_type)
        return meta.active_version if meta is not None else None


class MonitorReactions:
    """Reactions to the rotation monitor's rounds.

    Args:
        metrics: the rotation gauges.
        alerts: triggers and resolves the per-group alerts.
        auditor: queues the ``rotation_alert`` rows.
    """

    def __init__(
        self, *, metrics: OmniMetrics, alerts: AlertDispatcher, auditor: BackgroundAudit
    ) -> None:
        self._metrics = metrics
        self._alerts = alerts
        self._auditor = auditor

    def table(self) -> Reactions:
        return {
            MonitorLeadershipUnknown: [self.log_leadership_unknown],
            RotationReportComputed: [self.set_gauges, self.warn_not_seeded],
            RotationAlertsAsserted: [self.follow_status],
            RotationStatusChanged: [self.audit_status_change],
            MonitorRoundFailed: [self.log_round_failed],
        }

    def set_gauges(self, event: RotationReportComputed) -> None:
        for item in event.report.types:
            name = item.secret_type.value
            overdue = item.status is rotation.RotationStatus.OVERDUE
            self._metrics.rotation_overdue.labels(name).set(1 if overdue else 0)
            self._metrics.rotation_due_timestamp.labels(name).set(item.due_at.timestamp())

    def warn_not_seeded(self, event: RotationReportComputed) -> None:
        if event.report.missing:
            monitor_log.warning(
                "rotation_monitor.not_seeded",
                missing=[t.value for t in event.report.missing],
                hint="run: omni-secrets db seed",
            )

    def follow_status(self, event: RotationAlertsAsserted) -> None:
        for group in event.groups:
            subject = group.group.value
            if group.status is rotation.RotationStatus.OVERDUE:
                self._alerts.trigger(_overdue_alert(group))
                self._alerts.resolve(DUE_SOON_ALERT, subject)
            elif group.status is rotation.RotationStatus.DUE_SOON:
                self._alerts.trigger(_due_soon_alert(group))
                self._alerts.resolve(OVERDUE_ALERT, subject)
            else:
                self._alerts.resolve(DUE_SOON_ALERT, subject)
                self._alerts.resolve(OVERDUE_ALERT, subject)

    def audit_status_change(self, event: RotationStatusChanged) -> None:
        change = event.change
        self._auditor.record_later(
            access_event(
                action="rotation_alert",
                at=event.at,
                actor=SYSTEM_ACTOR,
                details={
                    "group": change.subject,
                    "status": change.status.value,
                    "alertAction": change.action.value,
                    "severity": change.severity.value if change.severity else None,
                    "dueAt": to_rfc3339(change.due_at),
                    "daysUntilDue": change.days_until_due,
                },
            )
        )

    def log_round_failed(self, event: MonitorRoundFailed) -> None:
        monitor_log.warning("rotation_monitor.round_failed", error_type=event.error_type)

    def log_leadership_unknown(self, event: MonitorLeadershipUnknown) -> None:
        monitor_log.warning("rotation_monitor.leadership_unknown", error_type=event.error_type)


def _due_soon_alert(group: GroupRotation) -> Alert:
    return alert_catalog.rotation_due_soon(group.group.value, **_facts(group))


def _overdue_alert(group: GroupRotation) -> Alert:
    return alert_catalog.rotation_overdue(group.group.value, **_facts(group))


def _facts(group: GroupRotation) -> dict[str, Any]:
    return {
        "status": group.status.value,
        "due_at": group.due_at,
        "days_until_due": group.days_until_due,
        "secret_types": [t.value for t in group.secret_types],
    }
