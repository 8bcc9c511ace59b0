"""``GsmRotationReminder``: GSM's own rotation reminder, kept in step with ``dueAt``.

Contract section 15 ("GSM's own reminder"): where a catalog secret has notification topics, a
commit, a rollback and an adoption set its ``rotation.next_rotation_time`` to ``dueAt`` minus
the warning window, with a ``rotation_period`` of one day. GSM itself then publishes
``SECRET_ROTATE`` when the group falls due soon, and every day after until the next rotation
moves the time on, even while no replica of this service runs (the monitor's alerts need a live
replica; GSM's reminder does not).

Real GSM refuses a ``next_rotation_time`` less than 5 minutes ahead, so a time already past
(a rollback to a generation that is due soon or overdue) is set one hour ahead: the reminder
fires soon, which is what such a group needs. A secret without topics is left alone (GSM
refuses a schedule without one). Each write is a compare-and-set on the etag just read; a
secret that changes in between is read again (at most :data:`ATTEMPTS` times).

This is called from the rotation reactions (:class:`RotationCommitted`, :class:`RotationRolledBack`)
and is the one entry point for any other decision that moves ``dueAt`` (adoption of a group
GSM moved, contract section 15): ``await reminder.schedule(secret_types, due_at)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.secret_store import SecretChanged, SecretStore

REMINDER_PERIOD: Final = timedelta(days=1)
"""How often GSM repeats ``SECRET_ROTATE`` once the reminder has fired."""
MIN_LEAD: Final = timedelta(hours=1)
"""How far ahead a reminder whose time has passed is set (GSM refuses under 5 minutes)."""
ATTEMPTS: Final = 3
"""Reads and compare-and-set writes per secret before giving up (the secret keeps changing)."""


class ReminderOutcome(StrEnum):
    """What :meth:`GsmRotationReminder.schedule` did to one secret."""

    SET = "set"
    UNCHANGED = "unchanged"
    NO_TOPICS = "no_topics"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ReminderResult:
    """One secret's outcome.

    Attributes:
        secret_type: the catalog type.
        gsm_secret_id: its GSM secret id.
        outcome: what was done.
        next_rotation_time: the reminder's time (set or already there), else None.
        reason: the GSM error code when ``outcome`` is FAILED, else None.
    """

    secret_type: str
    gsm_secret_id: str
    outcome: ReminderOutcome
    next_rotation_time: datetime | None = None
    reason: str | None = None


class GsmRotationReminder:
    """Sets ``rotation.next_rotation_time`` / ``rotation_period`` on a group's GSM secrets.

    Args:
        catalog: maps secret types to GSM secret ids.
        store: GSM (GetSecret, then UpdateSecret of ``rotation`` under the etag read).
        clock: time source (a reminder time already past is moved :data:`MIN_LEAD` ahead).
        warning_days: ``OMNI_ROTATION_WARNING_DAYS``: the reminder fires this long before
            ``dueAt``.
    """

    def __init__(
        self, *, catalog: Catalog, store: SecretStore, clock: Clock, warning_days: int
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._clock = clock
        self._warning = timedelta(days=warning_days)

    def reminder_time(self, due_at: datetime) -> datetime:
        """When GSM should first publish ``SECRET_ROTATE`` for a group due at ``due_at``."""
        return max(due_at - self._warning, self._clock.now() + MIN_LEAD)

    async def schedule(
        self, secret_types: Sequence[str], due_at: datetime
    ) -> tuple[ReminderResult, ...]:
        """Point each secret's GSM reminder at ``due_at`` minus the warning window.

        Never raises for GSM: a secret GSM refuses is reported FAILED with its reason and the
        others are still done (the reminder is a convenience; serving does not depend on it).

        Args:
            secret_types: the members of the group whose dates moved.
            due_at: the group's new ``dueAt``.

        Returns:
            One :class:`ReminderResult` per type, in the order given.
        """
        at = self.reminder_time(due_at)
        # Concurrently: a commit's answer waits for its reactions, this one included.
        return tuple(
            await asyncio.gather(*(self._schedule_one(SecretType(t), at) for t in secret_types))
        )

    async def _schedule_one(self, secret_type: SecretType, at: datetime) -> ReminderResult:
        secret_id = self._catalog.entry(secret_type).gsm_secret_id

        def result(outcome: ReminderOutcome, reason: str | None = None) -> ReminderResult:
            shown = at if outcome in (ReminderOutcome.SET, ReminderOutcome.UNCHANGED) else None
            return ReminderResult(secret_type.value, secret_id, outcome, shown, reason)

        reason = "ABORTED"
        for _ in range(ATTEMPTS):
            try:
                info = await self._store.get_secret(secret_id)
                if not info.has_topics:
                    return result(ReminderOutcome.NO_TOPICS)
                # rotation_period is input-only in GSM (GetSecret leaves it out): None matches.
                if info.next_rotation_time == at and info.rotation_period in (
                    None,
                    REMINDER_PERIOD,
                ):
                    return result(ReminderOutcome.UNCHANGED)
                await self._store.update_rotation(secret_id, at, REMINDER_PERIOD, info.etag)
                return result(ReminderOutcome.SET)
            except SecretChanged:
                continue  # someone else wrote the secret meanwhile: read it again
            except SecretStoreError as exc:
                reason = exc.reason
                break
        return result(ReminderOutcome.FAILED, reason)
