"""Rotation rules, one module per concern: due dates and status (``status``), candidate resolution
(``candidates``), preview checks (``preview``), monitor decisions (``monitor``).

Everything here is pure: callers pass in ``now``, the rotation periods from the settings and what
they read from GSM and the database, and get values back.

Status boundaries (``due_at`` from :func:`due_at`, ``warning`` = ``OMNI_ROTATION_WARNING_DAYS``)::

    ok          now <  due_at - warning
    due_soon    due_at - warning <= now < due_at
    overdue     due_at <= now

Both boundaries belong to the later status: the 12-month window is used up *at* ``due_at``, and
the warning window opens *at* its start. With ``warning_days=0`` there is no ``due_soon``.

A rotation is preview then commit. The preview holds the group's lock for
:data:`PREVIEW_LOCK_DURATION` and reports five checks, in this order (contract sections 5, 9):
``candidates_enabled``, ``candidates_newer``, ``candidates_differ`` (payload SHA-256 digests),
``checksums_valid``, ``apex_self_test``
(:func:`assess_preview`). The monitor's per-run decision (statuses, alerts) is
:func:`monitor_decision`; ``rotation check``'s exit code is the CLI's (``cli/rotation.py``).
"""

from __future__ import annotations

from omni_secrets.domain.rotation.candidates import (
    resolve_candidate,
)
from omni_secrets.domain.rotation.monitor import (
    AlertSeverity,
    MonitorDecision,
    MonitoredSubject,
    RotationAlert,
    RotationAlertAction,
    SubjectAssessment,
    monitor_decision,
)
from omni_secrets.domain.rotation.preview import (
    Candidate,
    CheckName,
    CheckVerdict,
    MemberCandidate,
    PreviewAssessment,
    SelfTestOutcome,
    SelfTestVerdict,
    assess_preview,
    self_test_applies,
)
from omni_secrets.domain.rotation.status import (
    PREVIEW_LOCK_DURATION,
    RotationStatus,
    days_until_due,
    due_at,
    next_due_if_committed,
    preview_expires_at,
    rotation_status,
    status_unchanged_until,
    worst_status,
)

__all__ = [
    "PREVIEW_LOCK_DURATION",
    "AlertSeverity",
    "Candidate",
    "CheckName",
    "CheckVerdict",
    "MemberCandidate",
    "MonitorDecision",
    "MonitoredSubject",
    "PreviewAssessment",
    "RotationAlert",
    "RotationAlertAction",
    "RotationStatus",
    "SelfTestOutcome",
    "SelfTestVerdict",
    "SubjectAssessment",
    "assess_preview",
    "days_until_due",
    "due_at",
    "monitor_decision",
    "next_due_if_committed",
    "preview_expires_at",
    "resolve_candidate",
    "rotation_status",
    "self_test_applies",
    "status_unchanged_until",
    "worst_status",
]
