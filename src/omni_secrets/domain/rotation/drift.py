"""Alias drift: GSM's ``current`` names something other than what a group serves (contract 15).

Following GSM, a replica compares each group's pins with the ``current`` aliases its refreshes
read (:func:`assess_group`). Until a new set is adopted the old generation stays served whole;
meanwhile each member of the group shows ``rotation.drift`` ``{"since", "reason"}``:

- ``group_incomplete`` — some members name a new ``current``, others still the pinned one;
- ``alias_invalid`` — a ``current`` that is not a version number;
- ``not_enabled`` — a new ``current`` names a version that is not ENABLED (or does not exist);
- ``checks_failed`` — the preview checks failed for the new set (digests equal to the served
  ones, a bad checksum, the ApeX self-test refused it).

:class:`DriftBoard` holds what each type shows; ``since`` is kept while a drift lasts, whatever
its reason becomes, so the 10-minute ``alias_drift`` alert measures the whole episode.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

DRIFT_ALERT_AFTER = timedelta(minutes=10)
"""How long a drift lasts before alert ``alias_drift`` (warning) fires."""


class DriftReason(StrEnum):
    """Why a group is not following GSM's ``current`` aliases yet."""

    GROUP_INCOMPLETE = "group_incomplete"
    ALIAS_INVALID = "alias_invalid"
    NOT_ENABLED = "not_enabled"
    CHECKS_FAILED = "checks_failed"


@dataclass(frozen=True, slots=True)
class Drift:
    """One type's drift as status shows it (replaced, never mutated)."""

    since: datetime
    reason: DriftReason


@dataclass(frozen=True, slots=True)
class GroupAliases:
    """What a refresh read of one member, and what it serves.

    Attributes:
        pinned: the version pinned (served).
        current: what ``current`` names (None: no alias).
        enabled: the ENABLED version numbers the same refresh listed.
    """

    pinned: str | None
    current: str | None
    enabled: frozenset[str]


@dataclass(frozen=True, slots=True)
class GroupAssessment:
    """:func:`assess_group`'s verdict.

    Attributes:
        moved: the members whose ``current`` names another version than the pin.
        reason: why the group cannot be adopted as it stands (None: in step, or ready to be
            checked for adoption when ``moved`` is every member).
    """

    moved: tuple[str, ...]
    reason: DriftReason | None

    @property
    def in_step(self) -> bool:
        """Every member's ``current`` names the pinned version (or there is no alias)."""
        return not self.moved

    @property
    def adoptable(self) -> bool:
        """Every member moved to a valid ENABLED version: run the preview checks."""
        return bool(self.moved) and self.reason is None


def assess_group(members: Mapping[str, GroupAliases]) -> GroupAssessment:
    """Compare one group's pins with its ``current`` aliases.

    A member without ``current`` is in step (start-up names it after the pin). Adoption is
    considered only when *every* member names a new version: a group is never served mixed.
    """
    moved = tuple(t for t, m in members.items() if m.current is not None and m.current != m.pinned)
    if not moved:
        return GroupAssessment((), None)
    if any(not (members[t].current or "").isdigit() for t in moved):
        return GroupAssessment(moved, DriftReason.ALIAS_INVALID)
    if any(members[t].current not in members[t].enabled for t in moved):
        return GroupAssessment(moved, DriftReason.NOT_ENABLED)
    if len(moved) < len(members):
        return GroupAssessment(moved, DriftReason.GROUP_INCOMPLETE)
    return GroupAssessment(moved, None)


class DriftBoard:
    """Each type's current drift, for status and the alert (one per process, in memory)."""

    def __init__(self) -> None:
        self._drifts: dict[str, Drift] = {}

    def get(self, secret_type: str) -> Drift | None:
        """The drift ``secret_type`` shows, or None."""
        return self._drifts.get(secret_type)

    def set(self, types: Iterable[str], reason: DriftReason, now: datetime) -> Drift:
        """Mark ``types`` drifting for ``reason``; ``since`` is kept from an ongoing drift."""
        types = tuple(types)
        since = min((d.since for t in types if (d := self._drifts.get(t))), default=now)
        drift = Drift(since, reason)
        for secret_type in types:
            if self._drifts.get(secret_type) != drift:
                self._drifts[secret_type] = drift
        return drift

    def clear(self, types: Iterable[str]) -> bool:
        """No drift for ``types``; True when one of them was drifting."""
        removed = [self._drifts.pop(t, None) for t in tuple(types)]
        return any(d is not None for d in removed)
