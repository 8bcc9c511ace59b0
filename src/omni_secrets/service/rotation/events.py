"""What the rotation service and the rotation monitor report: one frozen event per thing decided.

Their reactions (log lines, counters, the redactor, alerts, best-effort audit rows, the catch-up
of this replica's cache, waking the monitor, the peer announcement) are in
:mod:`omni_secrets.service.rotation.reactions`. The audit rows a preview, commit or cancel must
commit with their state are written in the service's unit of work, not from these events.

Service (preview, commit, cancel), in the order a call emits them:

- :class:`CandidateRead` — one payload read from GSM (a candidate, or the active version whose
  digest ``candidates_differ`` compares);
- :class:`PreviewStored` — a preview and its checks were stored (ready or not);
- :class:`LockReleaseFailed` — a preview failed and its group's lock could not be released;
- :class:`RotationCommitted` / :class:`RotationCancelled` — the state change was committed;
- :class:`RotationFailed` — an expected failure, raised to the caller after this.

Recovery of the commit journal (:mod:`.recovery`):

- :class:`RotationRecovered` — a dead replica's journaled commit or rollback was resolved;
- :class:`RecoveryDeferred` — an open entry could not be resolved this round (retried).

Following GSM (:mod:`.adoption`):

- :class:`RotationAdopted` — a group GSM moved whole was adopted (committed with its audit row);
- :class:`AliasDrift` — a group's drift started, changed, cleared or is overdue (10 minutes).

Monitor, in the order a round emits them:

- :class:`MonitorLeadershipUnknown` — leadership could not be checked (this round follows);
- :class:`RotationReportComputed` — every round, on every replica;
- :class:`RotationAlertsAsserted` — the leader's round, every group;
- :class:`RotationStatusChanged` — the leader's round, each group whose status changed;
- :class:`MonitorRoundFailed` — a round failed (from ``tick``, which does not raise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from omni_secrets.domain import rotation
from omni_secrets.domain.models import AuditAction
from omni_secrets.domain.values import SecretValue
from omni_secrets.service.rotation.report import GroupRotation, RotationReport

# --- the service -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CandidateRead:
    """A payload of ``secret_type`` was read from GSM for a preview.

    Attributes:
        secret_type: the catalog type read.
        value: the plaintext, now in this process; None when the read failed or the value can
            never be sent to ApeX (not header-safe), which counts as a failed read.
    """

    secret_type: str
    value: SecretValue | None

    @property
    def ok(self) -> bool:
        return self.value is not None


@dataclass(frozen=True, slots=True)
class PreviewStored:
    """A preview was stored with its checks and holds its group's lock."""

    group: str
    preview_id: str
    ready: bool
    failed_checks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LockReleaseFailed:
    """A failed preview's lock could not be released (it lapses by itself after 15 minutes)."""

    group: str
    preview_id: str
    error_type: str


@dataclass(frozen=True, slots=True)
class PreviewUntrusted:
    """A stored preview fails its integrity check (``problem``: an ``IntegrityStatus`` value)
    and is not committed (contract section 17)."""

    group: str
    preview_id: str
    problem: str


@dataclass(frozen=True, slots=True)
class RotationCommitted:
    """A preview's candidates are the group's active versions (committed with the audit row).

    Attributes:
        group: the rotation group.
        preview_id: the preview committed.
        versions: each member's new active version, in the group's order.
        due_at: the group's new ``dueAt`` (GSM's reminder follows it); None when not known.
    """

    group: str
    preview_id: str
    versions: tuple[tuple[str, str], ...]
    due_at: datetime | None = field(default=None, compare=False)

    @property
    def secret_types(self) -> tuple[str, ...]:
        return tuple(secret_type for secret_type, _ in self.versions)


@dataclass(frozen=True, slots=True)
class RotationRolledBack:
    """A group is back on its ``previous`` versions (committed with the audit row).

    Attributes:
        group: the rotation group.
        versions: each member's active version now, in the group's order.
        due_at: the group's ``dueAt`` restored (GSM's reminder follows it); None when not known.
    """

    group: str
    versions: tuple[tuple[str, str], ...]
    due_at: datetime | None = field(default=None, compare=False)

    @property
    def secret_types(self) -> tuple[str, ...]:
        return tuple(secret_type for secret_type, _ in self.versions)


@dataclass(frozen=True, slots=True)
class RotationRecovered:
    """An open journal entry was resolved to one whole generation (committed with its audit row).

    Attributes:
        group: the rotation group.
        journal_id: the entry resolved.
        kind: ``commit`` or ``rollback`` (what the dead replica was doing).
        outcome: ``forward`` (finished) or ``back`` (undone).
        owner_replica_id: the replica that died mid-way.
        versions: each member's active version now, in the group's order.
    """

    group: str
    journal_id: str
    kind: str
    outcome: str
    owner_replica_id: str
    versions: tuple[tuple[str, str], ...]

    @property
    def secret_types(self) -> tuple[str, ...]:
        return tuple(secret_type for secret_type, _ in self.versions)


@dataclass(frozen=True, slots=True)
class RotationAdopted:
    """GSM's ``current`` aliases of a whole group were adopted (pins and dates moved).

    Attributes:
        group: the rotation group.
        versions: each member's active version now, in the group's order.
        had_drift: the group showed a drift before (its alert, if any, resolves).
        due_at: the group's new ``dueAt`` (GSM's own reminder follows it).
    """

    group: str
    versions: tuple[tuple[str, str], ...]
    had_drift: bool = False
    due_at: datetime | None = None

    @property
    def secret_types(self) -> tuple[str, ...]:
        return tuple(secret_type for secret_type, _ in self.versions)


@dataclass(frozen=True, slots=True)
class AliasDrift:
    """A group's drift as the follower last judged it.

    Attributes:
        group: the rotation group.
        secret_types: its members.
        reason: why it is not followed (``group_incomplete``, ...); None: in step again.
        since: when the drift began (None when cleared).
        overdue: it has lasted at least 10 minutes (alert ``alias_drift``).
        error_type: set when the round failed for this group (GSM or the database).
    """

    group: str
    secret_types: tuple[str, ...]
    reason: str | None
    since: datetime | None
    overdue: bool
    error_type: str | None = None


@dataclass(frozen=True, slots=True)
class RecoveryDeferred:
    """An open journal entry was left for a later round.

    Attributes:
        group: the rotation group.
        journal_id: the entry.
        reason: ``integrity`` (its MAC does not verify: never acted on), ``gsm`` (GSM failed or
            kept changing), ``database`` (the resolution could not be recorded).
        error_type: the exception class, when one was the reason.
    """

    group: str
    journal_id: str
    reason: str
    error_type: str | None = None


@dataclass(frozen=True, slots=True)
class RotationCancelled:
    """An open preview was cancelled and its group's lock released (if it still held it)."""

    group: str
    preview_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationFailed:
    """A preview, commit or cancel failed as expected; the caller gets the error next.

    Attributes:
        action: the audit action of the operation that failed.
        secret_types: the members of the group concerned, as far as the operation learnt them
            (none for a preview id that names nothing).
        code: the error's code (``omni_secret_failures_total{reason}``).
        error_details: the error's own details.
        conflict: the group's lock was held by another preview (audited as ``conflict``).
        context: what the operation knew of itself when it failed (group, previewId, ...).
        actor: the caller.
        correlation_id: the request id.
        at: when it failed.
    """

    action: AuditAction
    secret_types: tuple[str, ...]
    code: str
    error_details: Mapping[str, Any]
    conflict: bool
    context: Mapping[str, Any]
    actor: str
    correlation_id: str | None
    at: datetime


# --- the monitor -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonitorLeadershipUnknown:
    """Leadership could not be checked: this replica runs the round as a follower."""

    error_type: str


@dataclass(frozen=True, slots=True)
class RotationReportComputed:
    """A round computed every type's and group's standing (every replica, every round)."""

    report: RotationReport


@dataclass(frozen=True, slots=True)
class RotationAlertsAsserted:
    """The leader's round: each group's alert follows its status (repeated every round)."""

    groups: tuple[GroupRotation, ...]


@dataclass(frozen=True, slots=True)
class RotationStatusChanged:
    """The leader saw a group's status change (or re-asserts it after becoming the leader)."""

    change: rotation.RotationAlert
    at: datetime


@dataclass(frozen=True, slots=True)
class MonitorRoundFailed:
    """A round failed; the next one retries."""

    error_type: str
