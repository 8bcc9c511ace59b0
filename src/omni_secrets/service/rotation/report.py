"""Where every secret type and rotation group stands, computed from the metadata rows.

Shared by the in-process rotation monitor (:mod:`omni_secrets.service.rotation.monitor`) and the
one-shot ``omni-secrets rotation check`` so both always agree. Pure: callers pass the rows and
``now``.

A type's due date is its row's ``rotation_due_at`` (the same value the status endpoint shows:
``lastRotatedAt`` + the period in force when it was seeded or last rotated). A group's due date is
its earliest member's, so its status is the most urgent of its members'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain import rotation
from omni_secrets.domain.catalog import Catalog, RotationGroup, SecretType
from omni_secrets.domain.models import OmniSecretMetadata


@dataclass(frozen=True, slots=True)
class TypeRotation:
    """One secret type's rotation standing."""

    secret_type: SecretType
    group: RotationGroup
    last_rotated_at: datetime
    due_at: datetime
    status: rotation.RotationStatus
    days_until_due: int


@dataclass(frozen=True, slots=True)
class GroupRotation:
    """One rotation group's standing: its earliest member's due date and that status."""

    group: RotationGroup
    due_at: datetime
    status: rotation.RotationStatus
    days_until_due: int
    secret_types: tuple[SecretType, ...]


@dataclass(frozen=True, slots=True)
class RotationReport:
    """Every catalog type's and group's standing at ``checked_at``.

    Attributes:
        checked_at: the ``now`` it was computed for.
        types: the types that have a metadata row, in catalog order.
        groups: the groups with at least one such type, in catalog order.
        missing: catalog types without a metadata row (``db seed`` never ran for them).
    """

    checked_at: datetime
    types: tuple[TypeRotation, ...]
    groups: tuple[GroupRotation, ...]
    missing: tuple[SecretType, ...]

    @property
    def worst(self) -> rotation.RotationStatus:
        """The most urgent status of any type (``ok`` when there are none)."""
        return rotation.worst_status(t.status for t in self.types)

    def group_subjects(
        self, previous: Mapping[str, rotation.RotationStatus]
    ) -> list[rotation.MonitoredSubject]:
        """The groups as subjects of :func:`~omni_secrets.domain.rotation.monitor_decision`."""
        return [
            rotation.MonitoredSubject(
                subject=g.group.value, due_at=g.due_at, previous_status=previous.get(g.group.value)
            )
            for g in self.groups
        ]


def build_report(
    catalog: Catalog,
    rows: Iterable[OmniSecretMetadata],
    *,
    now: datetime,
    warning_days: int,
) -> RotationReport:
    """Compute every type's and group's rotation status from the metadata rows.

    Args:
        catalog: the secret types and groups; rows of types outside it are ignored.
        rows: the ``omni_secret_metadata`` rows.
        now: the current time.
        warning_days: ``OMNI_ROTATION_WARNING_DAYS``.

    Returns:
        The report; types without a row are listed in ``missing``.

    Raises:
        ValueError: ``warning_days`` is negative (misuse).
    """
    by_type = {row.secret_type: row for row in rows}
    types: list[TypeRotation] = []
    missing: list[SecretType] = []
    for entry in catalog:
        row = by_type.get(entry.secret_type)
        if row is None:
            missing.append(entry.secret_type)
            continue
        types.append(
            TypeRotation(
                secret_type=entry.secret_type,
                group=entry.rotation_group,
                last_rotated_at=row.last_rotated_at,
                due_at=row.rotation_due_at,
                status=rotation.rotation_status(row.rotation_due_at, now, warning_days),
                days_until_due=rotation.days_until_due(row.rotation_due_at, now),
            )
        )
    groups: list[GroupRotation] = []
    for group in dict.fromkeys(entry.rotation_group for entry in catalog):
        members = [t for t in types if t.group is group]
        if not members:
            continue
        due = min(t.due_at for t in members)
        groups.append(
            GroupRotation(
                group=group,
                due_at=due,
                status=rotation.rotation_status(due, now, warning_days),
                days_until_due=rotation.days_until_due(due, now),
                secret_types=tuple(t.secret_type for t in members),
            )
        )
    return RotationReport(
        checked_at=now, types=tuple(types), groups=tuple(groups), missing=tuple(missing)
    )
