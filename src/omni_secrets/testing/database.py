"""Database fakes: an in-memory unit of work implementing the repository ports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Self

from omni_secrets.domain import audit_chain
from omni_secrets.domain.clock import Clock, SystemClock
from omni_secrets.domain.errors import AuditUnavailable, DatabaseUnavailable, ReplayDetected
from omni_secrets.domain.models import (
    BreakGlassOverrideRecord,
    NewAccessEvent,
    OmniSecretAccessEvent,
    OmniSecretMetadata,
    OverrideEndReason,
    PreviewStatus,
    RotationPreviewRecord,
)
from omni_secrets.domain.repositories import AuditFilter, GroupLock, UnitOfWorkFactory
from omni_secrets.domain.rotation.journal import JournalEntry, JournalStatus, claimable


@dataclass(slots=True)
class InMemoryState:
    """Everything an :class:`InMemoryDatabase` holds; records are immutable, so copies are cheap.

    Attributes:
        metadata: rows by secret type.
        events: audit rows in id order.
        overrides: break-glass overrides by id.
        nonces: used break-glass nonces and when they were used (never pruned).
        previews: rotation previews by id.
        journal: commit journal entries by id.
    """

    metadata: dict[str, OmniSecretMetadata] = field(default_factory=dict)
    events: list[OmniSecretAccessEvent] = field(default_factory=list)
    overrides: dict[str, BreakGlassOverrideRecord] = field(default_factory=dict)
    nonces: dict[str, datetime] = field(default_factory=dict)
    previews: dict[str, RotationPreviewRecord] = field(default_factory=dict)
    journal: dict[str, JournalEntry] = field(default_factory=dict)

    def copy(self) -> InMemoryState:
        return InMemoryState(
            metadata=dict(self.metadata),
            events=list(self.events),
            overrides=dict(self.overrides),
            nonces=dict(self.nonces),
            previews=dict(self.previews),
            journal=dict(self.journal),
        )


class InMemoryDatabase:
    """The committed state shared by every :class:`InMemoryUnitOfWork` made for it.

    Units of work run one at a time (like SQLite's write lock): a second one waits until the
    first ends, and opening one inside another in the same task raises ``RuntimeError`` instead
    of waiting forever.

    Attributes:
        committed: the committed state; tests assert on it (``db.committed.events``).
        commits: how many commits happened.
        unavailable: when True, entering a unit of work raises ``DatabaseUnavailable`` (the
            database is down).
        fail_audit_appends: when True, ``audit.append`` raises ``AuditUnavailable``.
    """

    def __init__(self) -> None:
        self.committed = InMemoryState()
        self.commits = 0
        self.unavailable = False
        self.fail_audit_appends = False
        self._lock: asyncio.Lock | None = None
        self._owner: asyncio.Task[object] | None = None

    async def _acquire(self) -> None:
        if self.unavailable:
            raise DatabaseUnavailable("database connect failed: the database is unreachable")
        task = asyncio.current_task()
        if task is not None and task is self._owner:
            raise RuntimeError("a unit of work is already open in this task")
        if self._lock is None:
            self._lock = asyncio.Lock()
        await self._lock.acquire()
        self._owner = task

    def _release(self) -> None:
        self._owner = None
        if self._lock is not None:
            self._lock.release()


class _InMemoryMetadata:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    @property
    def _rows(self) -> dict[str, OmniSecretMetadata]:
        return self._uow.state.metadata

    def _update(self, row: OmniSecretMetadata, **changes: object) -> None:
        self._rows[row.secret_type] = row.model_copy(
            update={**changes, "updated_at": self._uow.clock.now()}
        )

    def _group(self, group: str) -> list[OmniSecretMetadata]:
        return [row for _, row in sorted(self._rows.items()) if row.rotation_group == group]

    async def resign_stale(self) -> Sequence[str]:
        return ()  # the in-memory fake signs nothing

    async def list_all(self) -> Sequence[OmniSecretMetadata]:
        return [row for _, row in sorted(self._rows.items())]

    async def get(self, secret_type: str) -> OmniSecretMetadata | None:
        return self._rows.get(secret_type)

    async def insert_missing(self, rows: Iterable[OmniSecretMetadata]) -> int:
        inserted = 0
        for row in rows:
            if row.secret_type not in self._rows:
                self._rows[row.secret_type] = row
                inserted += 1
        return inserted

    async def pin_active_version(
        self,
        secret_type: str,
        version: str,
        *,
        only_if_unpinned: bool,
        rotation_dates: tuple[datetime, datetime] | None = None,
    ) -> bool:
        row = self._rows.get(secret_type)
        if row is None or (only_if_unpinned and row.active_version is not None):
            return False
        if rotation_dates is None:
            self._update(row, active_version=version)
        else:
            self._update(
                row,
                active_version=version,
                last_rotated_at=rotation_dates[0],
                rotation_due_at=rotation_dates[1],
            )
        return True

    async def record_rotation(
        self,
        group: str,
        active_versions: Mapping[str, str],
        rotated_at: datetime,
        due_at: datetime,
    ) -> None:
        members = {row.secret_type: row for row in self._group(group)}
        for secret_type in active_versions:
            if secret_type not in members:
                raise ValueError(f"secret type {secret_type!r} has no row in group {group!r}")
        for secret_type, row in members.items():
            self._update(
                row,
                active_version=active_versions.get(secret_type, row.active_version),
                last_rotated_at=rotated_at,
                rotation_due_at=due_at,
                preview_id=None,
                preview_expires_at=None,
            )

    async def try_lock_group(
        self, group: str, preview_id: str, expires_at: datetime, now: datetime
    ) -> GroupLock:
        members = self._group(group)
        if not members:
            return GroupLock(won=False, preview_id=None, expires_at=None)
        for row in members:
            held = row.preview_expires_at is not None and row.preview_expires_at > now
            if held and row.preview_id != preview_id:
                return GroupLock(
                    won=False, preview_id=row.preview_id, expires_at=row.preview_expires_at
                )
        for row in members:
            self._rows[row.secret_type] = row.model_copy(
                update={
                    "preview_id": preview_id,
                    "preview_expires_at": expires_at,
                    "updated_at": now,
                }
            )
        return GroupLock(won=True, preview_id=preview_id, expires_at=expires_at)

    async def release_group(self, group: str, preview_id: str) -> bool:
        released = False
        for row in self._group(group):
            if row.preview_id == preview_id:
                self._update(row, preview_id=None, preview_expires_at=None)
                released = True
        return released

    async def set_break_glass(
        self, secret_type: str, activated_at: datetime | None, expires_at: datetime | None
    ) -> bool:
        if (activated_at is None) != (expires_at is None):
            raise ValueError("activated_at and expires_at are set or cleared together")
        row = self._rows.get(secret_type)
        if row is None:
            return False
        self._update(row, break_glass_activated_at=activated_at, break_glass_expires_at=expires_at)
        return True


class _InMemoryAudit:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    async def append(self, event: NewAccessEvent) -> OmniSecretAccessEvent:
        return (await self.append_many([event]))[0]

    async def append_many(self, batch: Sequence[NewAccessEvent]) -> Sequence[OmniSecretAccessEvent]:
        if self._uow.db.fail_audit_appends:
            raise AuditUnavailable("audit append failed: the database is unreachable or busy")
        events = self._uow.state.events
        stored: list[OmniSecretAccessEvent] = []
        for event in batch:
            prev_id, prev_hash = (
                (events[-1].id, events[-1].row_hash) if events else (0, audit_chain.GENESIS_HASH)
            )
            row = audit_chain.seal(event, event_id=prev_id + 1, prev_hash=prev_hash)
            events.append(row)
            stored.append(row)
        return stored

    async def recent(self, limit: int) -> Sequence[OmniSecretAccessEvent]:
        return list(reversed(self._uow.state.events[-limit:])) if limit > 0 else []

    async def page(self, after_id: int, limit: int) -> Sequence[OmniSecretAccessEvent]:
        return [event for event in self._uow.state.events if event.id > after_id][:limit]

    async def search(self, where: AuditFilter, limit: int) -> Sequence[OmniSecretAccessEvent]:
        return [event for event in reversed(self._uow.state.events) if where.matches(event)][:limit]


class _InMemoryOverrides:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    async def add(self, record: BreakGlassOverrideRecord) -> None:
        state = self._uow.state
        if record.nonce in state.nonces:
            raise ReplayDetected("the break-glass payload's nonce was used before")
        if record.override_id in state.overrides:
            raise ValueError(f"override {record.override_id!r} exists")
        state.nonces[record.nonce] = record.activated_at
        state.overrides[record.override_id] = record

    async def get(self, override_id: str) -> BreakGlassOverrideRecord | None:
        return self._uow.state.overrides.get(override_id)

    async def list_active(self, now: datetime) -> Sequence[BreakGlassOverrideRecord]:
        active = [r for r in self._uow.state.overrides.values() if r.is_active(now)]
        return sorted(active, key=lambda r: (r.activated_at, r.override_id))

    async def resign_stale(self, now: datetime) -> Sequence[str]:  # noqa: ARG002
        return ()  # the in-memory fake signs nothing

    async def end(self, override_id: str, ended_at: datetime, reason: OverrideEndReason) -> bool:
        record = self._uow.state.overrides.get(override_id)
        if record is None or record.ended_at is not None:
            return False
        self._uow.state.overrides[override_id] = record.model_copy(
            update={"ended_at": ended_at, "end_reason": reason}
        )
        return True


class _InMemoryPreviews:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    async def add(self, record: RotationPreviewRecord) -> None:
        if record.preview_id in self._uow.state.previews:
            raise ValueError(f"rotation preview {record.preview_id!r} exists")
        self._uow.state.previews[record.preview_id] = record

    async def get(self, preview_id: str) -> RotationPreviewRecord | None:
        return self._uow.state.previews.get(preview_id)

    async def resign_stale(self, now: datetime) -> Sequence[str]:  # noqa: ARG002
        return ()  # the in-memory fake signs nothing

    async def set_status(self, preview_id: str, status: PreviewStatus) -> bool:
        record = self._uow.state.previews.get(preview_id)
        if record is None:
            return False
        self._uow.state.previews[preview_id] = record.model_copy(update={"status": status})
        return True


class _InMemoryJournal:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    async def open(self, entry: JournalEntry) -> None:
        if entry.journal_id in self._uow.state.journal:
            raise ValueError(f"journal entry {entry.journal_id!r} exists")
        self._uow.state.journal[entry.journal_id] = replace(
            entry, status="open", closed_at=None, outcome=None
        )

    async def get(self, journal_id: str) -> JournalEntry | None:
        return self._uow.state.journal.get(journal_id)

    async def list_open(self) -> Sequence[JournalEntry]:
        entries = [e for e in self._uow.state.journal.values() if e.status == "open"]
        return sorted(entries, key=lambda e: (e.started_at, e.journal_id))

    async def claim(self, journal_id: str, replica_id: str, now: datetime) -> bool:
        entry = self._uow.state.journal.get(journal_id)
        if entry is None or entry.status != "open":
            return False
        if not claimable(entry, replica_id=replica_id, now=now):
            return False
        self._uow.state.journal[journal_id] = replace(entry, claimed_by=replica_id, claimed_at=now)
        return True

    async def close(
        self, journal_id: str, status: JournalStatus, now: datetime, outcome: str | None = None
    ) -> bool:
        entry = self._uow.state.journal.get(journal_id)
        if entry is None or entry.status != "open":
            return False
        self._uow.state.journal[journal_id] = replace(
            entry, status=status, closed_at=now, outcome=outcome
        )
        return True


class InMemoryUnitOfWork:
    """The :class:`~omni_secrets.domain.repositories.UnitOfWork` port over an
    :class:`InMemoryDatabase`: works on a private copy, publishes it on :meth:`commit`.

    Args:
        db: the shared committed state.
        clock: stamps ``updated_at`` on metadata rows.
    """

    def __init__(self, db: InMemoryDatabase, *, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()
        self._state: InMemoryState | None = None
        self._metadata = _InMemoryMetadata(self)
        self._audit = _InMemoryAudit(self)
        self._overrides = _InMemoryOverrides(self)
        self._previews = _InMemoryPreviews(self)
        self._journal = _InMemoryJournal(self)

    @property
    def state(self) -> InMemoryState:
        """The working copy of this unit of work.

        Raises:
            RuntimeError: outside the ``async with`` block.
        """
        if self._state is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._state

    @property
    def metadata(self) -> _InMemoryMetadata:
        self.state  # noqa: B018 - fail outside the block, as the SQL unit of work does
        return self._metadata

    @property
    def audit(self) -> _InMemoryAudit:
        self.state  # noqa: B018
        return self._audit

    @property
    def overrides(self) -> _InMemoryOverrides:
        self.state  # noqa: B018
        return self._overrides

    @property
    def previews(self) -> _InMemoryPreviews:
        self.state  # noqa: B018
        return self._previews

    @property
    def journal(self) -> _InMemoryJournal:
        self.state  # noqa: B018
        return self._journal

    async def __aenter__(self) -> Self:
        if self._state is not None:
            raise RuntimeError("unit of work entered twice")
        await self.db._acquire()
        self._state = self.db.committed.copy()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._state is None:
            return
        self._state = None
        self.db._release()

    async def commit(self) -> None:
        self.db.committed = self.state.copy()
        self.db.commits += 1

    async def rollback(self) -> None:
        self.state  # noqa: B018
        self._state = self.db.committed.copy()


@dataclass(slots=True)
class InMemoryUnitOfWorkFactory:
    """A ``UnitOfWorkFactory`` over one :class:`InMemoryDatabase` (a fresh one by default).

    Attributes:
        db: the shared state; assert on ``db.committed``.
        clock: given to every unit of work.
    """

    db: InMemoryDatabase = field(default_factory=InMemoryDatabase)
    clock: Clock | None = None

    def __call__(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.db, clock=self.clock)


if TYPE_CHECKING:  # mypy proves the fake implements the ports; nothing runs at import

    def _implements_the_port(factory: InMemoryUnitOfWorkFactory) -> UnitOfWorkFactory:
        return factory
