"""Rolling a rotation group back to its ``previous`` versions (contract section 15).

Takes the group's rotation lock (as a preview does), re-reads every member in GSM, checks the
``previous`` versions as a preview checks candidates (ENABLED, checksums, header-safe, the ApeX
self-test with the previous key, secret and passphrase for API credentials), then swaps each
member's ``current``/``previous`` aliases under the etag of that read (moved back on a mismatch,
:mod:`.aliases`), and pins the versions with the dates the undone commit replaced (kept in its
audit row, ``datesBefore``) together with the ``rotation_rollback`` audit row. Any refusal
answers 409 ``ROLLBACK_NOT_POSSIBLE`` and changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from omni_secrets.domain import rotation
from omni_secrets.domain.catalog import Catalog, CatalogEntry, SecretType, parse_secret_type
from omni_secrets.domain.clock import Clock, to_rfc3339
from omni_secrets.domain.errors import (
    CatalogNotSeeded,
    GsmChanged,
    RollbackNotPossible,
    RotationInProgress,
    SecretStoreError,
)
from omni_secrets.domain.models import OmniSecretAccessEvent, OmniSecretMetadata
from omni_secrets.domain.repositories import AuditFilter, UnitOfWork, UnitOfWorkFactory
from omni_secrets.domain.rotation.journal import JournalEntry
from omni_secrets.domain.secret_store import SecretInfo, SecretStore, VersionState
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.rotation.aliases import (
    AliasMove,
    dates_of,
    move_back,
    move_group,
    swapped_aliases,
)
from omni_secrets.service.rotation.events import RotationRolledBack
from omni_secrets.service.rotation.failures import reported_failures
from omni_secrets.service.rotation.journal import JournalWriter
from omni_secrets.service.rotation.preview import PreviewOpener
from omni_secrets.service.rotation.views import CommittedMemberView, RotationCommitView

_AUDIT_LOOKBACK = 200  # commit/rollback rows searched for the dates to restore


@dataclass(slots=True)
class _Progress:
    """Whether a failed rollback may release its lock: nothing moved, or its entry settled."""

    settled: bool = True


class GroupRollback:
    """Rolls groups back (:meth:`RotationService.rollback` documents the behaviour)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: SecretStore,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        opener: PreviewOpener,
        bus: EventBus,
        clock: Clock,
        new_id: Callable[[], str],
        journal: JournalWriter,
    ) -> None:
        self._journal = journal
        self._catalog = catalog
        self._store = store
        self._uow_factory = uow_factory
        self._auditor = auditor
        self._opener = opener
        self._bus = bus
        self._clock = clock
        self._new_id = new_id

    async def rollback(
        self, secret_type: str, *, actor: str, correlation_id: str | None
    ) -> RotationCommitView:
        entry = self._catalog.entry(parse_secret_type(secret_type))
        group = entry.rotation_group
        members = self._catalog.group_members(group)
        started = time.perf_counter()
        lock_id = f"rollback-{self._new_id()}"[:64]
        async with reported_failures(
            self._bus,
            self._clock,
            "rotation_rollback",
            [m.secret_type for m in members],
            actor=actor,
            correlation_id=correlation_id,
            details={"group": group.value},
        ):
            rows = await self._lock(entry, members, lock_id)
            # Until the journal entry is open nothing has moved; once it is, the lock stays
            # with an entry left open (a crash, a cancellation, GSM failing mid-way): recovery
            # needs it to know the entry is current (.recovery).
            progress = _Progress()
            try:
                moves = await self._check(entry, members, rows)
                dates = await self._dates_to_restore(group.value, rows, moves)
                progress.settled = False
                journaled = await self._journal.open(
                    kind="rollback",
                    group=group.value,
                    lock_id=lock_id,
                    actor=actor,
                    moves=moves,
                    dates=dates,
                )
                try:
                    await self._move_and_record(
                        progress,
                        journaled,
                        entry,
                        moves,
                        rows,
                        dates,
                        lock_id,
                        actor,
                        correlation_id,
                        started,
                    )
                finally:
                    self._journal.done(journaled)
            except BaseException:
                if progress.settled:
                    await self._release(group.value, lock_id)
                raise
        versions = tuple((m.secret_type, m.target["current"]) for m in moves)
        due_at = min(d[1] for d in dates.values())
        await self._bus.emit(RotationRolledBack(group.value, versions, due_at=due_at))
        return RotationCommitView(
            group=group.value,
            members=tuple(CommittedMemberView(t, v) for t, v in versions),
            last_rotated_at=min(d[0] for d in dates.values()),
            due_at=due_at,
        )

    async def _move_and_record(
        self,
        progress: _Progress,
        journaled: JournalEntry,
        entry: CatalogEntry,
        moves: Sequence[AliasMove],
        rows: dict[SecretType, OmniSecretMetadata],
        dates: dict[str, tuple[datetime, datetime]],
        lock_id: str,
        actor: str,
        correlation_id: str | None,
        started: float,
    ) -> None:
        """Swap the aliases, then record the rollback and close the journal entry together.

        ``progress.settled`` says whether the entry ended closed or aborted (else it is left to
        recovery, and so is the group's lock).
        """
        try:
            afters = await move_group(self._store, moves)
        except GsmChanged as exc:
            if "notMovedBack" not in exc.details:
                progress.settled = await self._journal.abort_quietly(journaled)
            raise
        try:
            await self._record(
                journaled, entry, moves, rows, dates, lock_id, actor, correlation_id, started
            )
        except BaseException:
            if not await move_back(self._store, moves, afters):
                progress.settled = await self._journal.abort_quietly(journaled)
            raise
        progress.settled = True

    async def _lock(
        self, entry: CatalogEntry, members: Sequence[CatalogEntry], lock_id: str
    ) -> dict[SecretType, OmniSecretMetadata]:
        now = self._clock.now()
        expires = rotation.preview_expires_at(now)
        async with self._uow_factory() as uow:
            lock = await uow.metadata.try_lock_group(
                entry.rotation_group.value, lock_id, expires, now
            )
            rows = {m.secret_type: await uow.metadata.get(m.secret_type.value) for m in members}
            if lock.won:
                await uow.commit()
        if not lock.won:
            if lock.preview_id is None or lock.expires_at is None:
                raise CatalogNotSeeded([m.secret_type.value for m in members])
            raise RotationInProgress(entry.rotation_group.value, lock.preview_id, lock.expires_at)
        seeded = {t: r for t, r in rows.items() if r is not None}
        if len(seeded) != len(rows):
            await self._release(entry.rotation_group.value, lock_id)
            raise CatalogNotSeeded([t.value for t, r in rows.items() if r is None])
        return seeded

    async def _check(
        self,
        entry: CatalogEntry,
        members: Sequence[CatalogEntry],
        rows: dict[SecretType, OmniSecretMetadata],
    ) -> list[AliasMove]:
        """The moves back to ``previous``, after the checks; RollbackNotPossible otherwise."""
        reads: list[SecretInfo] = list(
            await asyncio.gather(*(self._store.get_secret(m.gsm_secret_id) for m in members))
        )
        moves: list[AliasMove] = []
        for member, read in zip(members, reads, strict=True):
            name = member.secret_type.value
            pinned = rows[member.secret_type].active_version
            if read.previous is None:
                raise _refused(name, "it has no 'previous' version alias")
            if read.current is None or read.current != pinned:
                raise _refused(
                    name,
                    f"its 'current' alias ({read.current}) is not the version served ({pinned})",
                )
            await self._require_enabled(member, read.previous)
            target = swapped_aliases(read, read.previous, read.current)
            moves.append(AliasMove(name, member.gsm_secret_id, read, target))
        payloads = await asyncio.gather(
            *(
                self._opener.read_payload(m, mv.target["current"])
                for m, mv in zip(members, moves, strict=True)
            )
        )
        by_type = {m.secret_type: p for m, p in zip(members, payloads, strict=True)}
        for member_type, payload in by_type.items():
            if payload.value is None:
                raise _refused(
                    member_type.value, f"its previous version could not be read ({payload.error})"
                )
        outcome = await self._opener.self_test_with(entry.rotation_group, by_type)
        if outcome.result not in (
            rotation.SelfTestVerdict.PASSED,
            rotation.SelfTestVerdict.NOT_APPLICABLE,
        ):
            raise RollbackNotPossible(
                f"the ApeX self-test with the previous credentials did not pass: {outcome.detail}",
                details={"check": "apex_self_test"},
            )
        return moves

    async def _require_enabled(self, member: CatalogEntry, version: str) -> None:
        try:
            info = await self._store.get_version(member.gsm_secret_id, version)
        except SecretStoreError as exc:
            if exc.transient:
                raise
            raise _refused(member.secret_type.value, f"version {version}: {exc.reason}") from exc
        if info.state is not VersionState.ENABLED:
            raise _refused(member.secret_type.value, f"version {version} is {info.state.value}")

    async def _dates_to_restore(
        self, group: str, rows: dict[SecretType, OmniSecretMetadata], moves: Sequence[AliasMove]
    ) -> dict[str, tuple[datetime, datetime]]:
        """Each member's dates the commit being undone replaced, from its audit row."""
        served = {t.value: r.active_version for t, r in rows.items()}
        back_to = {m.secret_type: m.target["current"] for m in moves}
        async with self._uow_factory() as uow:
            found = await _undone_row(uow, group, served, back_to)
        if found is None:
            raise RollbackNotPossible(
                "no commit from the previous to the current versions is in the audit trail: "
                "the dates to restore are unknown",
                details={"group": group},
            )
        return {
            t: (datetime.fromisoformat(d["lastRotatedAt"]), datetime.fromisoformat(d["dueAt"]))
            for t, d in found.items()
        }

    async def _record(
        self,
        journaled: JournalEntry,
        entry: CatalogEntry,
        moves: Sequence[AliasMove],
        rows: dict[SecretType, OmniSecretMetadata],
        dates: dict[str, tuple[datetime, datetime]],
        lock_id: str,
        actor: str,
        correlation_id: str | None,
        started: float,
    ) -> None:
        group = entry.rotation_group.value
        versions = {m.secret_type: m.target["current"] for m in moves}
        async with self._uow_factory() as uow:
            if not await uow.metadata.release_group(group, lock_id):
                raise RollbackNotPossible("the group's lock lapsed during the rollback")
            if not await uow.journal.close(journaled.journal_id, "closed", self._clock.now()):
                raise RollbackNotPossible("the rollback was resolved by recovery meanwhile")
            for secret_type, version in versions.items():
                await uow.metadata.pin_active_version(
                    secret_type, version, only_if_unpinned=False, rotation_dates=dates[secret_type]
                )
            await self._auditor.append_in(
                uow,
                access_event(
                    action="rotation_rollback",
                    at=self._clock.now(),
                    actor=actor,
                    correlation_id=correlation_id,
                    started=started,
                    details={
                        "group": group,
                        "activeVersions": versions,
                        "previousVersions": {t.value: r.active_version for t, r in rows.items()},
                        "restoredDates": {
                            t: {"lastRotatedAt": to_rfc3339(d[0]), "dueAt": to_rfc3339(d[1])}
                            for t, d in dates.items()
                        },
                        "datesBefore": dates_of(rows),
                        "journalId": journaled.journal_id,
                    },
                ),
            )
            await uow.commit()

    async def _release(self, group: str, lock_id: str) -> None:
        try:
            async with self._uow_factory() as uow:
                await uow.metadata.release_group(group, lock_id)
                await uow.commit()
        except Exception:  # noqa: S110  (the lock lapses by itself after 15 minutes)
            pass


async def _undone_row(
    uow: UnitOfWork, group: str, served: dict[str, str | None], back_to: dict[str, str]
) -> dict[str, Any] | None:
    """``datesBefore`` of the newest commit or rollback that moved ``back_to`` → ``served``."""
    rows: list[OmniSecretAccessEvent] = []
    for action in (
        "rotation_commit",
        "rotation_rollback",
        "rotation_recovered",
        "rotation_adopted",
    ):
        rows.extend(await uow.audit.search(AuditFilter(action=action), _AUDIT_LOOKBACK))
    for row in sorted(rows, key=lambda r: r.id, reverse=True):
        details = row.details
        if (
            row.result == "success"
            and details.get("group") == group
            and details.get("activeVersions") == served
            and details.get("previousVersions") == back_to
            and isinstance(details.get("datesBefore"), dict)
            and set(details["datesBefore"]) == set(served)
        ):
            dates: dict[str, Any] = details["datesBefore"]
            return dates
    return None


def _refused(secret_type: str, why: str) -> RollbackNotPossible:
    return RollbackNotPossible(
        f"{secret_type}: cannot roll back: {why}", details={"secretType": secret_type}
    )
