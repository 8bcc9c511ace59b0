"""Rotation rules: due dates and status, candidate resolution, preview checks, monitor decisions.

Everything here is pure: callers pass in ``now``, the periods from ``RotationConfig`` and what
they read from GSM and the database, and get values back.

Status boundaries (``due_at`` from :func:`due_at`, ``warning`` = ``OMNI_ROTATION_WARNING_DAYS``)::

    ok          now <  due_at - warning
    due_soon    due_at - warning <= now < due_at
    overdue     due_at <= now

Both boundaries belong to the later status: the 12-month window is used up *at* ``due_at``, and
the warning window opens *at* its start. With ``warning_days=0`` there is no ``due_soon``.

A rotation is preview then commit. The preview holds the group's lock for
:data:`PREVIEW_LOCK_DURATION` and reports four checks, in this order (contract section 5):
``candidates_enabled``, ``candidates_newer``, ``candidates_differ`` (payload digests),
``checksums_valid``, ``apex_self_test``
(:func:`assess_preview`). The monitor's per-run decision (statuses, alerts, the exit code of
``rotation check``) is :func:`monitor_decision`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from omni_secrets.domain.catalog import Catalog, RotationGroup, SecretType
from omni_secrets.domain.errors import CandidateVersionInvalid
from omni_secrets.domain.secret_store import LATEST, VersionInfo, VersionState, newest_enabled

PREVIEW_LOCK_DURATION = timedelta(minutes=15)
"""How long a preview holds its group's rotation lock."""

_VERSION_NUMBER = re.compile(r"[1-9][0-9]{0,18}")


# --- due dates and status --------------------------------------------------------------------


class RotationStatus(StrEnum):
    """Where a secret (or group) stands against its rotation window, mildest first."""

    OK = "ok"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"

    @property
    def rank(self) -> int:
        """0 for ok, 1 for due_soon, 2 for overdue: orders statuses by urgency."""
        return _RANK[self]


_RANK = {RotationStatus.OK: 0, RotationStatus.DUE_SOON: 1, RotationStatus.OVERDUE: 2}


def due_at(last_rotated_at: datetime, period_days: int) -> datetime:
    """When a rotation falls due: ``last_rotated_at + period_days``.

    Raises:
        ValueError: ``period_days`` < 1 or ``last_rotated_at`` is naive (misuse).
    """
    _require_aware(last_rotated_at)
    if period_days < 1:
        raise ValueError(f"period_days must be >= 1, got {period_days}")
    return last_rotated_at + timedelta(days=period_days)


def rotation_status(due_at: datetime, now: datetime, warning_days: int) -> RotationStatus:
    """The status at ``now`` (boundaries in the module docstring: each belongs to the later status).

    Args:
        due_at: when the rotation falls due.
        now: the current time.
        warning_days: the ``due_soon`` window before ``due_at``; 0 disables it.

    Raises:
        ValueError: ``warning_days`` is negative (misuse).
    """
    if warning_days < 0:
        raise ValueError(f"warning_days must be >= 0, got {warning_days}")
    if now >= due_at:
        return RotationStatus.OVERDUE
    if now >= due_at - timedelta(days=warning_days):
        return RotationStatus.DUE_SOON
    return RotationStatus.OK


def days_until_due(due_at: datetime, now: datetime) -> int:
    """Whole days from ``now`` to ``due_at``, rounded down.

    Negative once ``due_at`` has passed (one second late is -1); 0 from 24 hours before
    ``due_at`` up to and including ``due_at`` itself.
    """
    return (due_at - now) // timedelta(days=1)


def worst_status(statuses: Iterable[RotationStatus]) -> RotationStatus:
    """The most urgent status of a group's members; ``ok`` when there are none."""
    return max(statuses, key=lambda status: status.rank, default=RotationStatus.OK)


def preview_expires_at(now: datetime) -> datetime:
    """When a preview opened at ``now`` releases its lock."""
    return now + PREVIEW_LOCK_DURATION


def next_due_if_committed(now: datetime, period_days: int) -> datetime:
    """The group's ``dueAt`` if the preview were committed at ``now``.

    Raises:
        ValueError: as :func:`due_at`.
    """
    return due_at(now, period_days)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("naive datetime")


# --- candidate resolution --------------------------------------------------------------------


def resolve_candidate(
    requested: str, versions: Sequence[VersionInfo], *, secret_type: str | None = None
) -> VersionInfo:
    """The version a preview proposes to make active.

    ``latest`` means the newest ENABLED version. That differs on purpose from GSM's ``latest``
    (the newest version whatever its state), which may be disabled.

    Args:
        requested: ``latest`` or a version number as a string (``"4"``; no sign, no leading 0).
        versions: every version of the secret, any order.
        secret_type: named in error messages when given.

    Returns:
        The ENABLED version to propose.

    Raises:
        CandidateVersionInvalid: ``requested`` is neither ``latest`` nor a version number; the
            version does not exist or is not ENABLED; ``latest`` finds no ENABLED version.
    """
    where = f" of {secret_type}" if secret_type else ""
    details: dict[str, str] = {"candidateVersion": requested[:40]}
    if secret_type:
        details["secretType"] = secret_type
    if requested == LATEST:
        newest = newest_enabled(versions)
        if newest is None:
            raise CandidateVersionInvalid(
                f"no ENABLED version{where} exists to rotate to", details=details
            )
        return newest
    if _VERSION_NUMBER.fullmatch(requested) is None:
        raise CandidateVersionInvalid(
            f"candidate version {requested[:40]!r} is neither 'latest' nor a version number",
            details=details,
        )
    found = next((v for v in versions if v.version == requested), None)
    if found is None:
        raise CandidateVersionInvalid(f"version {requested}{where} does not exist", details=details)
    if found.state is not VersionState.ENABLED:
        raise CandidateVersionInvalid(
            f"version {requested}{where} is {found.state.value}; only an ENABLED version can "
            "become active",
            details=details,
        )
    return found


# --- preview checks --------------------------------------------------------------------------


class CheckName(StrEnum):
    """The preview's checks, in the order the contract lists them."""

    CANDIDATES_ENABLED = "candidates_enabled"
    CANDIDATES_NEWER = "candidates_newer"
    CANDIDATES_DIFFER = "candidates_differ"
    CHECKSUMS_VALID = "checksums_valid"
    APEX_SELF_TEST = "apex_self_test"


class SelfTestResult(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"
    NOT_RUN = "not_run"
    """The self-test could not run (candidate unreadable, ApeX unreachable, ...)."""


@dataclass(frozen=True, slots=True)
class SelfTestOutcome:
    """What the ApeX self-test with the candidate credentials said.

    Attributes:
        result: passed, failed, not applicable or not run.
        detail: a safe sentence (ApeX's code and message, the reason it could not run, ...).
    """

    result: SelfTestResult
    detail: str = ""

    @classmethod
    def passed(cls, detail: str = "") -> SelfTestOutcome:
        return cls(SelfTestResult.PASSED, detail)

    @classmethod
    def failed(cls, detail: str) -> SelfTestOutcome:
        return cls(SelfTestResult.FAILED, detail)

    @classmethod
    def not_applicable(cls, detail: str = "") -> SelfTestOutcome:
        return cls(SelfTestResult.NOT_APPLICABLE, detail)

    @classmethod
    def not_run(cls, detail: str) -> SelfTestOutcome:
        return cls(SelfTestResult.NOT_RUN, detail)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A resolved candidate version of one member.

    Attributes:
        version: the version number.
        state: its state in GSM as last read.
        checksum_ok: True when its payload was read and its CRC32C matched, False on a mismatch,
            None when the payload could not be read (the check could not run).
        read_error: why the payload could not be read (a gRPC code name such as
            ``FAILED_PRECONDITION``), shown in the check's detail; None when it was read.
        payload_sha256: hex SHA-256 of the candidate's payload; None when it was not read.
    """

    version: str
    state: VersionState
    checksum_ok: bool | None = None
    read_error: str | None = None
    payload_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class MemberCandidate:
    """One member of the group under preview.

    Attributes:
        secret_type: the member.
        current_version: its active (pinned) version, None when none is pinned yet.
        candidate: the proposed version, None when none could be resolved.
        current_payload_sha256: hex SHA-256 of the active version's payload; None when none is
            active or it could not be read.
    """

    secret_type: SecretType
    current_version: str | None
    candidate: Candidate | None
    current_payload_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class PreviewCheck:
    """One entry of the preview's ``checks`` (``{name, ok, detail}``)."""

    name: CheckName
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class PreviewAssessment:
    """The preview's checks in contract order; ``ready`` only when all pass."""

    checks: tuple[PreviewCheck, ...]

    @property
    def ready(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def self_test_applies(group: RotationGroup) -> bool:
    """Whether the ApeX self-test exercises ``group``: it signs with the API credentials only."""
    return group is RotationGroup.API_CREDENTIALS


def assess_preview(
    group: RotationGroup,
    members: Sequence[MemberCandidate],
    self_test: SelfTestOutcome | None,
) -> PreviewAssessment:
    """Run the preview's rules over a whole rotation group.

    A check that cannot run for some member (no candidate, payload unreadable, self-test not
    run) says so in its ``detail`` and is not ok. For ``zk_keys`` the self-test does not apply:
    that check is ok and says so, whatever ``self_test`` holds.

    Args:
        group: the group under preview.
        members: one entry per member of the group, in catalog order.
        self_test: the ApeX self-test with the candidate credentials; None when it was not run.

    Returns:
        The checks: ``candidates_enabled``, ``candidates_newer``, ``candidates_differ``,
        ``checksums_valid``, ``apex_self_test``.

    Raises:
        ValueError: ``members`` is not exactly the group's members (misuse).
    """
    # Group membership does not depend on the GSM prefix, so the default catalog answers it.
    expected = sorted(entry.secret_type.value for entry in Catalog().group_members(group))
    if sorted(m.secret_type.value for m in members) != expected:
        raise ValueError(f"members must be exactly the {group.value} group: {expected}")
    return PreviewAssessment(
        checks=(
            _check_enabled(members),
            _check_newer(members),
            _check_differ(members),
            _check_checksums(members),
            _check_self_test(group, self_test),
        )
    )


def _no_candidate(member: MemberCandidate) -> str:
    return f"could not run for {member.secret_type.value}: no candidate version was resolved"


def _verdict(name: CheckName, problems: list[str], fine: list[str]) -> PreviewCheck:
    if problems:
        return PreviewCheck(name, False, "; ".join(problems))
    return PreviewCheck(name, True, "; ".join(fine))


def _check_enabled(members: Sequence[MemberCandidate]) -> PreviewCheck:
    problems: list[str] = []
    fine: list[str] = []
    for member in members:
        candidate = member.candidate
        if candidate is None:
            problems.append(_no_candidate(member))
        elif candidate.state is not VersionState.ENABLED:
            problems.append(
                f"{member.secret_type.value} v{candidate.version} is {candidate.state.value}"
            )
        else:
            fine.append(f"{member.secret_type.value} v{candidate.version} is ENABLED")
    return _verdict(CheckName.CANDIDATES_ENABLED, problems, fine)


def _version_number(version: str) -> int | None:
    return int(version) if version.isdigit() else None


def _check_newer(members: Sequence[MemberCandidate]) -> PreviewCheck:
    """A rotation only moves forward: a rollback to an older version would reset the clock."""
    problems: list[str] = []
    fine: list[str] = []
    for member in members:
        candidate = member.candidate
        name = member.secret_type.value
        if candidate is None:
            problems.append(_no_candidate(member))
            continue
        current = member.current_version
        new = _version_number(candidate.version)
        old = _version_number(current) if current is not None else None
        if current is None:
            fine.append(f"{name}: none active -> v{candidate.version}")
        elif new is None or old is None:
            problems.append(f"{name}: cannot compare v{candidate.version} with v{current}")
        elif new <= old:
            problems.append(
                f"{name}: candidate v{candidate.version} is not newer than the active v{current}"
            )
        else:
            fine.append(f"{name}: v{current} -> v{candidate.version}")
    return _verdict(CheckName.CANDIDATES_NEWER, problems, fine)


def _check_differ(members: Sequence[MemberCandidate]) -> PreviewCheck:
    """The candidate's payload digest must differ from the active one's (not just its number)."""
    problems: list[str] = []
    fine: list[str] = []
    for member in members:
        candidate = member.candidate
        name = member.secret_type.value
        if candidate is None:
            problems.append(_no_candidate(member))
        elif candidate.version == member.current_version:
            problems.append(f"{name}: candidate v{candidate.version} is already the active version")
        elif member.current_version is None:
            fine.append(f"{name}: none active -> v{candidate.version}")
        elif candidate.payload_sha256 is None:
            problems.append(
                f"could not run for {name}: the payload of candidate v{candidate.version} "
                "could not be read"
            )
        elif member.current_payload_sha256 is None:
            problems.append(
                f"could not run for {name}: the payload of active v{member.current_version} "
                "could not be read"
            )
        elif candidate.payload_sha256 == member.current_payload_sha256:
            problems.append(
                f"{name}: candidate v{candidate.version} has the same payload (SHA-256) as "
                f"active v{member.current_version}"
            )
        else:
            fine.append(
                f"{name}: v{member.current_version} -> v{candidate.version}, payload differs"
            )
    return _verdict(CheckName.CANDIDATES_DIFFER, problems, fine)


def _check_checksums(members: Sequence[MemberCandidate]) -> PreviewCheck:
    problems: list[str] = []
    fine: list[str] = []
    for member in members:
        candidate = member.candidate
        name = member.secret_type.value
        if candidate is None:
            problems.append(_no_candidate(member))
        elif candidate.checksum_ok is None:
            why = f" ({candidate.read_error})" if candidate.read_error else ""
            problems.append(
                f"could not run for {name} v{candidate.version}: its payload could not be read{why}"
            )
        elif not candidate.checksum_ok:
            problems.append(f"{name} v{candidate.version}: CRC32C mismatch")
        else:
            fine.append(f"{name} v{candidate.version}: CRC32C verified")
    return _verdict(CheckName.CHECKSUMS_VALID, problems, fine)


def _check_self_test(group: RotationGroup, outcome: SelfTestOutcome | None) -> PreviewCheck:
    name = CheckName.APEX_SELF_TEST
    if not self_test_applies(group):
        return PreviewCheck(
            name,
            True,
            f"does not apply to {group.value}: the ApeX self-test signs with the API "
            "credentials only",
        )
    if outcome is None:
        return PreviewCheck(name, False, "could not run: the self-test was not attempted")
    suffix = f": {outcome.detail}" if outcome.detail else ""
    if outcome.result is SelfTestResult.PASSED:
        return PreviewCheck(name, True, f"ApeX accepted the candidate credentials{suffix}")
    if outcome.result is SelfTestResult.FAILED:
        return PreviewCheck(name, False, f"ApeX refused the candidate credentials{suffix}")
    if outcome.result is SelfTestResult.NOT_RUN:
        return PreviewCheck(name, False, f"could not run{suffix}")
    return PreviewCheck(
        name, False, f"reported as not applicable, but {group.value} requires it{suffix}"
    )


# --- the monitor -----------------------------------------------------------------------------

ROTATION_CHECK_EXIT_CODES = {
    RotationStatus.OK: 0,
    RotationStatus.DUE_SOON: 1,
    RotationStatus.OVERDUE: 2,
}
"""``rotation check``'s exit code for the most urgent status found."""


class AlertSeverity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class AlertAction(StrEnum):
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
    action: AlertAction
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
        exit_code: ``rotation check``'s exit code: 0 all ok, 1 something due soon, 2 something
            overdue.
    """

    assessments: tuple[SubjectAssessment, ...]
    alerts: tuple[RotationAlert, ...]
    exit_code: int

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
    worst = worst_status(a.status for a in assessments)
    return MonitorDecision(
        assessments=tuple(assessments),
        alerts=tuple(alerts),
        exit_code=ROTATION_CHECK_EXIT_CODES[worst],
    )


def _alert_action(previous: RotationStatus | None, status: RotationStatus) -> AlertAction | None:
    if status is previous:
        return None
    if status is RotationStatus.OK:
        return None if previous is None else AlertAction.RESOLVE
    return AlertAction.TRIGGER
