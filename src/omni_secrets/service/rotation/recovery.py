"""Recovering a commit or rollback that a dead replica left half-done (contract section 15).

An open journal entry (:mod:`omni_secrets.domain.rotation.journal`) is recovered when its owner
is gone: at start-up (before serving) for the entries this host's previous process left, and by
any live replica's :class:`~omni_secrets.jobs.journal_recovery.JournalRecoveryJob` for entries
whose owner's registry row went silent for
:data:`~omni_secrets.domain.rotation.journal.OWNER_SILENT_SECONDS`. One recovery:

1. claims the entry (a compare-and-set: one replica recovers it);
2. checks the entry still describes the group (its lock is still the entry's, every member's
   ``current`` is its old or new version; else it is closed ``stale``, nothing moved: an
   outdated or replayed row never moves a group), re-reads every member (``GetSecret``) and
   decides with :func:`~omni_secrets.domain.rotation.journal.decide`: forward when every
   ``current`` already names the new version, else back to the old one;
3. re-writes **every** member with ``UpdateSecret`` under the etag just read — the aliases of
   the decision (unchanged for a member already there) — so each etag changes and a move still
   in flight from the dead replica fails its compare-and-set; a member that changed in between
   (such a late move) makes it read and decide again, a few times at most;
4. records the outcome in one transaction: forward pins the new versions with the journaled
   dates (a commit also marks its preview committed), back leaves the pins (a commit's preview
   is cancelled); the group's lock is released, the entry closed ``recovered`` (a
   compare-and-set), and a ``rotation_recovered`` audit row (actor ``system``) appended;
5. reports :class:`RotationRecovered` (this replica serves the pins at once, the others are
   told) or, when it could not finish, :class:`RecoveryDeferred` (tried again next round).

An entry whose MAC does not verify is never acted on: it is reported as an integrity violation.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.clock import Clock, to_rfc3339
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.models import SYSTEM_ACTOR
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.rotation.journal import (
    JournalEntry,
    JournalMember,
    Resolution,
    claimable,
    decide,
    describes,
    owner_is_dead,
)
from omni_secrets.domain.secret_store import (
    CURRENT_ALIAS,
    PREVIOUS_ALIAS,
    SecretChanged,
    SecretInfo,
    SecretStore,
)
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.integrity import (
    JOURNAL_TABLE,
    IntegrityViolation,
    IntegrityViolations,
)
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.rotation.aliases import dates_of
from omni_secrets.service.rotation.events import RecoveryDeferred, RotationRecovered
from omni_secrets.service.rotation.journal import JournalWriter

MAX_ATTEMPTS = 5
"""Read-decide-write rounds per entry before it is left for the next round."""

LiveReplicas = Callable[[], Awaitable[frozenset[str]]]
"""The ids of the replicas heard from within ``OWNER_SILENT_SECONDS``.

Raises:
    DatabaseUnavailable: the registry cannot be read (nothing is recovered this round).
"""


def process_alive(pid: int) -> bool:
    """Whether a process with ``pid`` runs on this host (a signal-0 probe)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    """What one recovery round did.

    Attributes:
        recovered: the entries resolved, with their outcome.
        deferred: the entries left open (reason in the :class:`RecoveryDeferred` event).
    """

    recovered: tuple[tuple[str, Resolution], ...] = ()
    deferred: tuple[str, ...] = ()


class _Unfinished(Exception):
    """One entry could not be resolved this round (reason as in :class:`RecoveryDeferred`)."""

    def __init__(self, reason: str, error_type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


class JournalRecovery:
    """Resolves open journal entries whose owner is gone (module docstring).

    Args:
        store: GSM: members re-read and re-written.
        uow_factory: database units of work.
        auditor: appends ``rotation_recovered`` in the resolution's unit of work.
        bus: told of each resolution and deferral.
        clock: time source.
        writer: this replica's journal writer (its identity, and what it still has in flight).
        live_replicas: the replicas heard from lately.
        integrity: told of entries whose MAC does not verify.
        pid_alive: whether a process id runs on this host (start-up recovery).
    """

    def __init__(
        self,
        *,
        store: SecretStore,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        bus: EventBus,
        clock: Clock,
        writer: JournalWriter,
        live_replicas: LiveReplicas,
        integrity: IntegrityViolations | None = None,
        pid_alive: Callable[[int], bool] = process_alive,
    ) -> None:
        self._store = store
        self._uow_factory = uow_factory
        self._auditor = auditor
        self._bus = bus
        self._clock = clock
        self._writer = writer
        self._live_replicas = live_replicas
        self._integrity = integrity or IntegrityViolations()
        self._pid_alive = pid_alive
        self._lock = asyncio.Lock()
        self._refused: set[str] = set()  # entries whose MAC failed: reported once per process

    async def recover_at_startup(self) -> RecoveryResult:
        """Resolve what this host's previous process left, and every entry of a dead owner.

        An entry is this host's previous process's when it names this host and a process that
        no longer runs (or this very pid: a restarted container often gets the same one).

        Raises:
            DatabaseUnavailable: the journal could not be read.
        """
        owner = self._writer.owner

        def left_by_me(entry: JournalEntry) -> bool:
            return (
                entry.owner_host == owner.host
                and (entry.owner_pid == owner.pid or not self._pid_alive(entry.owner_pid))
                and entry.owner_replica_id != owner.replica_id
            )

        return await self._round(left_by_me)

    async def recover_dead(self) -> RecoveryResult:
        """One periodic round: resolve entries whose owner is silent (or this replica's own
        entries it is no longer working on).

        Raises:
            DatabaseUnavailable: the journal or the registry could not be read.
        """
        return await self._round(lambda _entry: False)

    async def _round(self, also: Callable[[JournalEntry], bool]) -> RecoveryResult:
        async with self._lock:
            async with self._uow_factory() as uow:
                entries = await uow.journal.list_open()
            if not entries:
                return RecoveryResult()
            now = self._clock.now()
            live = await self._live_replicas()
            me = self._writer.owner.replica_id
            recovered: list[tuple[str, Resolution]] = []
            deferred: list[str] = []
            for entry in entries:
                if self._writer.in_flight(entry.journal_id):
                    continue
                mine = entry.owner_replica_id == me
                if not (
                    also(entry)
                    or mine
                    or owner_is_dead(entry, live_replica_ids=live - {me}, now=now)
                ):
                    continue
                outcome = await self._recover(entry)
                if outcome is None:
                    deferred.append(entry.journal_id)
                else:
                    recovered.append((entry.journal_id, outcome))
            return RecoveryResult(tuple(recovered), tuple(deferred))

    async def _recover(self, entry: JournalEntry) -> Resolution | None:
        """Resolve one entry; None when it was deferred (reported) or someone else has it."""
        started = time.perf_counter()
        if not entry.integrity.servable:
            self._integrity.report(
                IntegrityViolation(
                    table=JOURNAL_TABLE,
                    row=entry.journal_id,
                    problem=entry.integrity.value,
                    secret_type="",
                )
            )
            if entry.journal_id not in self._refused:
                self._refused.add(entry.journal_id)
                await self._bus.emit(
                    RecoveryDeferred(entry.rotation_group, entry.journal_id, "integrity")
                )
            return None
        me = self._writer.owner.replica_id
        try:
            if not claimable(entry, replica_id=me, now=self._clock.now()):
                return None
            async with self._uow_factory() as uow:
                if not await uow.journal.claim(entry.journal_id, me, self._clock.now()):
                    return None
                await uow.commit()
            resolution = (
                await self._rewrite(entry) if await self._holds_lock(entry) else Resolution.STALE
            )
            versions = await self._record(entry, resolution, started)
        except _Unfinished as exc:
            await self._bus.emit(
                RecoveryDeferred(entry.rotation_group, entry.journal_id, exc.reason, exc.error_type)
            )
            return None
        except Exception as exc:  # the database: the entry stays open, retried next round
            await self._bus.emit(
                RecoveryDeferred(
                    entry.rotation_group, entry.journal_id, "database", type(exc).__name__
                )
            )
            return None
        if versions is None:
            return None  # resolved by someone else meanwhile
        await self._bus.emit(
            RotationRecovered(
                group=entry.rotation_group,
                journal_id=entry.journal_id,
                kind=entry.kind,
                outcome=resolution.value,
                owner_replica_id=entry.owner_replica_id,
                versions=versions,
            )
        )
        return resolution

    async def _holds_lock(self, entry: JournalEntry) -> bool:
        """Whether the group's rotation lock is still the entry's (a commit in flight holds it
        until its record; a finished or replayed one does not)."""
        async with self._uow_factory() as uow:
            rows = [await uow.metadata.get(m.secret_type) for m in entry.members]
        return any(r is not None and r.preview_id == entry.lock_id for r in rows)

    async def _rewrite(self, entry: JournalEntry) -> Resolution:
        """Read, decide and re-write every member until one pass lands whole.

        Raises:
            _Unfinished: GSM failed, or kept changing for :data:`MAX_ATTEMPTS` passes.
        """
        last: SecretStoreError | None = None
        for _attempt in range(MAX_ATTEMPTS):
            try:
                reads: Sequence[SecretInfo] = await asyncio.gather(
                    *(self._store.get_secret(m.secret_id) for m in entry.members)
                )
                currents = {
                    m.secret_type: r.aliases.get(CURRENT_ALIAS)
                    for m, r in zip(entry.members, reads, strict=True)
                }
                if not describes(entry, currents):
                    return Resolution.STALE
                resolution = decide(entry, currents)
                for member, read in zip(entry.members, reads, strict=True):
                    await self._store.update_aliases(
                        member.secret_id, _target(member, read, resolution), read.etag
                    )
            except SecretChanged as exc:  # a late move landed in between: read again
                last = exc
                continue
            except SecretStoreError as exc:
                raise _Unfinished("gsm", type(exc).__name__) from exc
            return resolution
        raise _Unfinished("gsm", type(last).__name__ if last else None)

    async def _record(
        self, entry: JournalEntry, resolution: Resolution, started: float
    ) -> tuple[tuple[str, str], ...] | None:
        """Pins (forward), lock, preview, journal and audit row in one unit of work.

        Returns:
            Each member's served version now; None when the entry was closed by someone else.
        """
        forward = resolution is Resolution.FORWARD
        now = self._clock.now()
        async with self._uow_factory() as uow:
            if not await uow.journal.close(
                entry.journal_id, "recovered", now, outcome=resolution.value
            ):
                return None
            rows = {
                SecretType(m.secret_type): await uow.metadata.get(m.secret_type)
                for m in entry.members
            }
            before = {t: r for t, r in rows.items() if r is not None}
            if forward:
                for member in entry.members:
                    await uow.metadata.pin_active_version(
                        member.secret_type,
                        member.new_version,
                        only_if_unpinned=False,
                        rotation_dates=entry.dates.get(member.secret_type),
                    )
            await uow.metadata.release_group(entry.rotation_group, entry.lock_id)
            if entry.kind == "commit":
                preview = await uow.previews.get(entry.lock_id)
                if preview is not None and preview.status == "open":
                    await uow.previews.set_status(
                        entry.lock_id, "committed" if forward else "cancelled"
                    )
            await self._auditor.append_in(
                uow,
                access_event(
                    action="rotation_recovered",
                    at=now,
                    actor=SYSTEM_ACTOR,
                    correlation_id=None,
                    started=started,
                    details=_details(
                        entry,
                        resolution,
                        dates_of(before),
                        {t.value: r.active_version for t, r in before.items()},
                    ),
                ),
            )
            await uow.commit()
        served = {
            t.value: (row.active_version if row is not None else None) for t, row in rows.items()
        }
        return tuple(
            (
                m.secret_type,
                m.new_version if forward else (served.get(m.secret_type) or m.old_version or ""),
            )
            for m in entry.members
        )


def _target(member: JournalMember, read: SecretInfo, resolution: Resolution) -> dict[str, str]:
    """The member's whole alias map after the decision (other aliases kept as read)."""
    aliases = dict(read.aliases)
    current: str | None
    if resolution is Resolution.FORWARD:
        current, previous = member.new_version, member.new_previous
    else:
        current, previous = member.old_version, member.old_previous
    for name, value in ((CURRENT_ALIAS, current), (PREVIOUS_ALIAS, previous)):
        if value is None:
            aliases.pop(name, None)
        else:
            aliases[name] = value
    return aliases


def _details(
    entry: JournalEntry,
    resolution: Resolution,
    dates_before: Mapping[str, object],
    pinned: Mapping[str, str | None],
) -> dict[str, object]:
    """The ``rotation_recovered`` row's details (never a value).

    A forward resolution carries what a commit's row carries (``activeVersions``,
    ``previousVersions``, ``datesBefore``), so a later rollback finds the dates to restore; a
    member that had no ``current`` alias counts its pinned version as the previous one.
    """
    details: dict[str, object] = {
        "group": entry.rotation_group,
        "journalId": entry.journal_id,
        "kind": entry.kind,
        "outcome": resolution.value,
        "lockId": entry.lock_id,
        "ownerReplicaId": entry.owner_replica_id,
        "startedAt": to_rfc3339(entry.started_at),
        "requestedBy": entry.actor,
    }
    if resolution is Resolution.STALE:
        details["untouched"] = True  # GSM was not written: the entry no longer described it
    elif resolution is Resolution.FORWARD:
        details["activeVersions"] = {m.secret_type: m.new_version for m in entry.members}
        details["previousVersions"] = {
            m.secret_type: m.old_version or pinned.get(m.secret_type) for m in entry.members
        }
        details["datesBefore"] = dict(dates_before)
        details["dates"] = {
            t: {"lastRotatedAt": to_rfc3339(d[0]), "dueAt": to_rfc3339(d[1])}
            for t, d in entry.dates.items()
        }
    else:
        details["restoredVersions"] = {
            m.secret_type: m.old_version or pinned.get(m.secret_type) for m in entry.members
        }
        details["abandonedVersions"] = {m.secret_type: m.new_version for m in entry.members}
    return details
