"""The rotation monitor's per-run decision: statuses and the alerts to send or resolve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from omni_secrets.domain.rotation.status import (
    RotationStatus,
    days_until_due,
    rotation_status,
    worst_status,
)


class AlertSeverity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class RotationAlertAction(StrEnum):
    TRIGGER = "trigger"
    RESOLVE = "resolve"


_SEVERITY = {
    RotationStatus.DUE_SOON: AlertSeverity.WARNING,
    RotationStatus.OVERDUE: AlertSeverity.CRITICAL,
}


@dataclass(frozen=True, slots=True)
class MonitoredSubject:
    """One thing the monitor tracks (a rotation group or a secret type).

    Attributes:
        subject: its name; alerts are keyed by it (PagerDuty ``dedup_key``).
        due_at: when its rotation falls due.
        previous_status: the status the previous run recorded; None when never assessed.
    """

    subject: str
    due_at: datetime
    previous_status: RotationStatus | None = None


@dataclass(frozen=True, slots=True)
class SubjectAssessment:
    """A subject's status in this run."""

    subject: str
    due_at: datetime
    status: RotationStatus
    previous_status: RotationStatus | None
    days_until_due: int

    @property
    def changed(self) -> bool:
        return self.status is not self.previous_status


@dataclass(frozen=True, slots=True)
class RotationAlert:
    """An alert to send: trigger (with its severity) or resolve.

    Attributes:
        subject: the subject it is about.
        action: trigger or resolve.
        severity: warning (due soon) or critical (overdue) for a trigger; None for a resolve.
        status: the subject's new status.
        due_at: when the rotation falls due.
        days_until_due: see :func:`days_until_due`.
    """

    subject: str
    action: RotationAlertAction
    severity: AlertSeverity | None
    status: RotationStatus
    due_at: datetime
    days_until_due: int


@dataclass(frozen=True, slots=True)
class MonitorDecision:
    """What one monitor run concludes.

    Attributes:
        assessments: each subject's new status, in input order.
        alerts: the alerts to send, in input order.
        worst: the most urgent new status (``ok`` when there are no subjects).
    """

    assessments: tuple[SubjectAssessment, ...]
    alerts: tuple[RotationAlert, ...]
    worst: RotationStatus

    def status_of(self, subject: str) -> RotationStatus:
        """The new status of ``subject``.

        Raises:
            KeyError: ``subject`` was not assessed.
        """
        for assessment in self.assessments:
            if assessment.subject == subject:
                return assessment.status
        raise KeyError(subject)


def monitor_decision(
    subjects: Sequence[MonitoredSubject], *, now: datetime, warning_days: int
) -> MonitorDecision:
    """Decide one monitor run: new statuses, the alerts to send, and the exit code.

    Alerts follow transitions, so an unchanged status sends nothing on the next run:

    - into ``due_soon`` (from anything else, including ``overdue`` after a period change):
      trigger, severity warning;
    - into ``overdue``: trigger, severity critical (the same subject's alert is raised in place);
    - into ``ok`` from ``due_soon``/``overdue``: resolve;
    - first assessment (``previous_status`` None): trigger when not ``ok``, else nothing.

    Args:
        subjects: what to assess; subject names must be unique.
        now: the current time.
        warning_days: ``OMNI_ROTATION_WARNING_DAYS``.

    Returns:
        The decision; with no subjects, exit code 0 and no alerts.

    Raises:
        ValueError: duplicate subject names or a negative ``warning_days`` (misuse).
    """
    names = [s.subject for s in subjects]
    if len(set(names)) != len(names):
        raise ValueError("subject names must be unique")
    assessments: list[SubjectAssessment] = []
    alerts: list[RotationAlert] = []
    for subject in subjects:
        status = rotation_status(subject.due_at, now, warning_days)
        assessment = SubjectAssessment(
            subject=subject.subject,
            due_at=subject.due_at,
            status=status,
            previous_status=subject.previous_status,
            days_until_due=days_until_due(subject.due_at, now),
        )
        assessments.append(assessment)
        action = _alert_action(subject.previous_status, status)
        if action is not None:
            alerts.append(
                RotationAlert(
                    subject=subject.subject,
                    action=action,
                    severity=_SEVERITY.get(status),
                    status=status,
                    due_at=subject.due_at,
                    days_until_due=assessment.days_until_due,
                )
            )
    return MonitorDecision(
        assessments=tuple(assessments),
        alerts=tuple(alerts),
        worst=worst_status(a.status for a in assessments),
    )


def _alert_action(
    previous: RotationStatus | None, status: RotationStatus
) -> RotationAlertAction | None:
    if status is previous:
        return None
    if status is RotationStatus.OK:
        return None if previous is None else RotationAlertAction.RESOLVE
    return RotationAlertAction.TRIGGER
