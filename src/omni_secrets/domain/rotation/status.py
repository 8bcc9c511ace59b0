"""Rotation due dates and status (the boundaries are drawn in the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

PREVIEW_LOCK_DURATION = timedelta(minutes=15)
"""How long a preview holds its group's rotation lock."""


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
    """Whole days from ``now`` to ``due_at``, a started day counted as a day.

    365 right after a 365-day rotation (not 364 a millisecond later), 1 during the last 24 hours
    before ``due_at``, 0 at ``due_at`` itself, and negative once it has passed (one second late
    is -1, a day and a microsecond late is -2).
    """
    if now <= due_at:
        return -((now - due_at) // timedelta(days=1))  # rounded up
    return (due_at - now) // timedelta(days=1)  # rounded down: -1 from the first instant late


_DAY = timedelta(days=1)
_RESOLUTION = timedelta(microseconds=1)


def status_unchanged_until(due_at: datetime, now: datetime, warning_days: int) -> datetime:
    """The first instant after ``now`` at which :func:`rotation_status` or :func:`days_until_due`
    of ``due_at`` differs from its value at ``now`` (``days_until_due`` changes every day, overdue
    or not, so there always is one).

    Lets a caller that shows both (status, on every call) reuse them while ``now`` is earlier
    (how long ``days_until_due`` keeps a value is in the comment below; each status boundary
    belongs to the later status, the package docstring).

    Raises:
        ValueError: ``warning_days`` is negative (misuse).
    """
    if warning_days < 0:
        raise ValueError(f"warning_days must be >= 0, got {warning_days}")
    days = days_until_due(due_at, now)
    # Ahead of due_at a value d holds from due_at - d days up to (not including) due_at - (d-1)
    # days; at and after due_at a value d holds up to and including due_at - d days.
    days_change = due_at - (days - 1) * _DAY if days > 0 else due_at - days * _DAY + _RESOLUTION
    warning_opens = due_at - warning_days * _DAY
    if now < warning_opens:
        status_change = warning_opens
    elif now < due_at:
        status_change = due_at
    else:
        return days_change
    return min(days_change, status_change)


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
