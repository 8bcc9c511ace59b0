"""Every alert the service raises: its stable name, severity and wording, in one place.

Reactions decide *when* an alert triggers or resolves; this module decides *what it says*. The
names are ``omni_alerts_sent_total{alert}`` label values and PagerDuty ``dedup_key`` parts, so
they never change. Details are flat facts for the responder, never a secret value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final, Literal

from omni_secrets.domain.clock import to_rfc3339
from omni_secrets.domain.models import BreakGlassOverrideRecord
from omni_secrets.observability.alerts import Alert, DetailValue

AUDIT_ALERT: Final = "audit_write_failures"
INTEGRITY_ALERT: Final = "integrity_violation"
GSM_FAILURES_ALERT: Final = "gsm_failures"
REVOKED_ALERT: Final = "active_version_revoked"
ROTATE_ALERT: Final = "rotation_requested"
DUE_SOON_ALERT: Final = "rotation_due_soon"
OVERDUE_ALERT: Final = "rotation_overdue"
BREAK_GLASS_ALERT: Final = "break_glass_active"
ALIAS_DRIFT_ALERT: Final = "alias_drift"

_REASON_IN_ALERT_CHARS: Final = 200


def audit_write_failures(environment: str) -> Alert:
    """Audit rows cannot be written (the background writer failed)."""
    return Alert(
        name=AUDIT_ALERT,
        subject="audit",
        severity="critical",
        summary="omni-secrets: audit events cannot be written",
        details={"environment": environment},
    )


def integrity_violation(
    environment: str, *, table: str, row: str, problem: str, secret_type: str | None
) -> Alert:
    """A stored row failed its integrity check and is not served."""
    return Alert(
        name=INTEGRITY_ALERT,
        subject=f"{table}/{row}",
        severity="critical",
        summary=(
            f"omni-secrets: {table} row {row} fails its integrity check ({problem}); not served"
        ),
        details={
            "environment": environment,
            "table": table,
            "row": row,
            "problem": problem,
            "secretType": secret_type,
        },
    )


def alias_drift(
    environment: str, *, group: str, reason: str, since: datetime, secret_types: Sequence[str]
) -> Alert:
    """GSM's ``current`` aliases of a group have not been followed for 10 minutes."""
    return Alert(
        name=ALIAS_DRIFT_ALERT,
        subject=group,
        severity="warning",
        summary=(
            f"omni-secrets: {group} does not follow GSM's current aliases ({reason}) "
            f"since {to_rfc3339(since)}; the previous versions are still served"
        ),
        details={
            "environment": environment,
            "group": group,
            "reason": reason,
            "since": to_rfc3339(since),
            "secretTypes": ", ".join(secret_types),
        },
    )


def gsm_failures(
    secret_type: str,
    *,
    reason: str,
    consecutive_failures: int,
    serving: bool,
    transient: bool,
    required: bool,
) -> Alert:
    """``consecutive_failures`` GSM reads of ``secret_type`` failed in a row; critical when a
    required type is no longer served."""
    severity: Literal["critical", "error"] = "critical" if required and not serving else "error"
    return Alert(
        name=GSM_FAILURES_ALERT,
        subject=secret_type,
        severity=severity,
        summary=(
            f"omni-secrets: {consecutive_failures} consecutive GSM failures "
            f"reading {secret_type} ({reason})"
        ),
        details={
            "secret_type": secret_type,
            "reason": reason,
            "consecutive_failures": consecutive_failures,
            "still_serving": serving,
            "transient": transient,
        },
    )


def version_revoked(
    environment: str,
    *,
    secret_type: str,
    message: str,
    event_type: str,
    version: str | None,
    confirmed: bool,
) -> Alert:
    """GSM took the served version of ``secret_type`` out of service (disabled or destroyed)."""
    return Alert(
        name=REVOKED_ALERT,
        subject=secret_type,
        severity="critical",
        summary=f"omni-secrets: {secret_type} taken out of service: {message}",
        details={
            "environment": environment,
            "secretType": secret_type,
            "eventType": event_type,
            "version": version,
            "confirmed": confirmed,
        },
    )


def rotation_requested(environment: str, secret_type: str) -> Alert:
    """GSM's own rotation schedule asks for a rotation of ``secret_type``."""
    return Alert(
        name=ROTATE_ALERT,
        subject=secret_type,
        severity="warning",
        summary=f"omni-secrets: GSM asks for a rotation of {secret_type}",
        details={"environment": environment, "secretType": secret_type},
    )


def break_glass_active(record: BreakGlassOverrideRecord) -> Alert:
    """A break-glass override of the record's type is being served."""
    secret_type = record.secret_type.value
    return Alert(
        name=BREAK_GLASS_ALERT,
        subject=secret_type,
        severity="critical",
        summary=(
            f"omni-secrets: break-glass override active for {secret_type} until "
            f"{to_rfc3339(record.expires_at)}"
        ),
        details={
            "secret_type": secret_type,
            "override_id": record.override_id,
            "actor": record.actor,
            "ticket": record.ticket,
            "reason": record.reason[:_REASON_IN_ALERT_CHARS],
            "expires_at": to_rfc3339(record.expires_at),
        },
    )


def rotation_due_soon(
    group: str, *, status: str, due_at: datetime, days_until_due: int, secret_types: Sequence[str]
) -> Alert:
    """The group's credentials fall due within the warning window."""
    return Alert(
        name=DUE_SOON_ALERT,
        subject=group,
        severity="warning",
        summary=(
            f"omni-secrets: {group} credentials are due for rotation in "
            f"{days_until_due} days (due {to_rfc3339(due_at)})"
        ),
        details=_rotation_details(group, status, due_at, days_until_due, secret_types),
    )


def rotation_overdue(
    group: str, *, status: str, due_at: datetime, days_until_due: int, secret_types: Sequence[str]
) -> Alert:
    """The group's credentials are past their rotation due date."""
    return Alert(
        name=OVERDUE_ALERT,
        subject=group,
        severity="critical",
        summary=(
            f"omni-secrets: {group} credentials are overdue for rotation "
            f"(due {to_rfc3339(due_at)}, {-days_until_due} days ago)"
        ),
        details=_rotation_details(group, status, due_at, days_until_due, secret_types),
    )


def _rotation_details(
    group: str, status: str, due_at: datetime, days_until_due: int, secret_types: Sequence[str]
) -> Mapping[str, DetailValue]:
    return {
        "group": group,
        "status": status,
        "dueAt": to_rfc3339(due_at),
        "daysUntilDue": days_until_due,
        "secretTypes": ",".join(secret_types),
    }
