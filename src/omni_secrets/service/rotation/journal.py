"""Writing the commit journal around a group's alias moves (contract section 15).

Commit and rollback call :meth:`JournalWriter.open` after their checks and before the first
``UpdateSecret``; the entry is closed (``closed``) in the same transaction that pins the new
versions, so "the record committed" and "the entry closed" are one fact. When the moves were
refused and moved back, the entry is closed ``aborted`` (best effort: if that fails, recovery
later finds every member on its old version and resolves it back, which changes nothing).
An entry left open by a replica that died is :mod:`.recovery`'s business.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from omni_secrets.domain.clock import Clock
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.rotation.journal import JournalEntry, JournalKind, JournalMember
from omni_secrets.domain.secret_store import CURRENT_ALIAS, PREVIOUS_ALIAS
from omni_secrets.service.rotation.aliases import AliasMove


@dataclass(frozen=True, slots=True)
class JournalOwner:
    """Who writes journal entries: this process.

    Attributes:
        replica_id: this replica's id in ``omni_replicas`` (new per process).
        host: the host name (a restarted container keeps it).
        pid: the process id.
    """

    replica_id: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


def members_of(moves: Sequence[AliasMove]) -> tuple[JournalMember, ...]:
    """The journal's view of planned moves: each member's aliases before and after."""
    return tuple(
        JournalMember(
            secret_type=m.secret_type,
            secret_id=m.secret_id,
            old_version=m.read.aliases.get(CURRENT_ALIAS),
            old_previous=m.read.aliases.get(PREVIOUS_ALIAS),
            new_version=m.target[CURRENT_ALIAS],
            new_previous=m.target.get(PREVIOUS_ALIAS),
        )
        for m in moves
    )


class JournalWriter:
    """Opens and aborts journal entries for this replica.

    Args:
        uow_factory: database units of work.
        clock: stamps ``started_at`` and ``closed_at``.
        owner: this process.
        new_id: makes entry ids.
    """

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        owner: JournalOwner,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._owner = owner
        self._new_id = new_id
        self._in_flight: set[str] = set()

    @property
    def owner(self) -> JournalOwner:
        """This process, as its entries name it."""
        return self._owner

    def in_flight(self, journal_id: str) -> bool:
        """Whether this process is still working on the entry (recovery leaves it alone)."""
        return journal_id in self._in_flight

    def done(self, entry: JournalEntry | None) -> None:
        """This process stopped working on ``entry`` (closed, aborted, or left to recovery)."""
        if entry is not None:
            self._in_flight.discard(entry.journal_id)

    async def open(
        self,
        *,
        kind: JournalKind,
        group: str,
        lock_id: str,
        actor: str,
        moves: Sequence[AliasMove],
        dates: Mapping[str, tuple[datetime, datetime]],
    ) -> JournalEntry:
        """Write (and commit) an open entry for ``moves``; call before the first move.

        The entry counts as in flight (:meth:`in_flight`) until :meth:`done`.

        Raises:
            DatabaseUnavailable: nothing was written; the caller must not move anything.
        """
        entry = JournalEntry(
            journal_id=self._new_id(),
            kind=kind,
            rotation_group=group,
            lock_id=lock_id,
            actor=actor,
            owner_replica_id=self._owner.replica_id,
            owner_host=self._owner.host,
            owner_pid=self._owner.pid,
            started_at=self._clock.now(),
            members=members_of(moves),
            dates=dict(dates),
        )
        self._in_flight.add(entry.journal_id)
        try:
            async with self._uow_factory() as uow:
                await uow.journal.open(entry)
                await uow.commit()
        except BaseException:
            self._in_flight.discard(entry.journal_id)
            raise
        return entry

    async def abort_quietly(self, entry: JournalEntry) -> bool:
        """Close ``entry`` as ``aborted`` (its moves were undone); never raises.

        Returns:
            Whether it is now closed (False: left open for recovery, which finds every member
            on its old version and resolves it back, a no-op).
        """
        try:
            async with self._uow_factory() as uow:
                closed = await uow.journal.close(entry.journal_id, "aborted", self._clock.now())
                await uow.commit()
        except Exception:
            return False
        return closed
