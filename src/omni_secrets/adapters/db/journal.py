"""``SqlCommitJournal``: the commit journal port over ``omni_commit_journal`` (SQLAlchemy Core).

Every write signs the row (``mac`` over the journal's ``JOURNAL_FIELDS``) and every read reports
what the MAC says in the entry's ``integrity``; the recovery refuses to act on an entry that does
not verify. Claims and closes are compare-and-sets (``UPDATE … WHERE``
with the expected state; the row count decides), so two replicas never both recover one entry
and a commit never closes an entry a recovery already resolved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from omni_secrets.adapters.db.errors import translate_db_errors
from omni_secrets.adapters.db.tables import commit_journal
from omni_secrets.domain.integrity import (
    IntegrityKeyring,
    IntegrityStatus,
    sign_or_none,
    verify_or_unchecked,
)
from omni_secrets.domain.rotation.journal import (
    CLAIM_SECONDS,
    JOURNAL_FIELDS,
    JOURNAL_PURPOSE,
    JournalEntry,
    JournalStatus,
    dates_json,
    members_json,
    parse_dates,
    parse_members,
)


class SqlCommitJournal:
    """The :class:`~omni_secrets.domain.repositories.CommitJournal` port.

    Args:
        connection: the unit of work's connection.
        keyring: signs and checks entries; None writes no MAC and checks nothing.
    """

    def __init__(self, connection: AsyncConnection, keyring: IntegrityKeyring | None) -> None:
        self._conn = connection
        self._keyring = keyring

    def _mac(self, entry: JournalEntry) -> str | None:
        return sign_or_none(self._keyring, JOURNAL_PURPOSE, JOURNAL_FIELDS, entry.mac_fields())

    def _entry(self, row: Row[Any]) -> JournalEntry:
        try:
            entry = JournalEntry(
                journal_id=row.journal_id,
                kind=row.kind,
                rotation_group=row.rotation_group,
                lock_id=row.lock_id,
                actor=row.actor,
                owner_replica_id=row.owner_replica_id,
                owner_host=row.owner_host,
                owner_pid=row.owner_pid,
                started_at=row.started_at,
                members=parse_members(row.members),
                dates=parse_dates(row.dates),
                status=row.status,
                closed_at=row.closed_at,
                outcome=row.outcome,
                claimed_by=row.claimed_by,
                claimed_at=row.claimed_at,
            )
        except (ValueError, TypeError, KeyError, IndexError):
            # Unparseable text can only be a forgery or corruption: never acted on.
            return JournalEntry(
                journal_id=row.journal_id,
                kind="commit",
                rotation_group=str(row.rotation_group),
                lock_id=str(row.lock_id),
                actor=str(row.actor),
                owner_replica_id=str(row.owner_replica_id),
                owner_host=str(row.owner_host),
                owner_pid=int(row.owner_pid),
                started_at=row.started_at,
                members=(),
                dates={},
                status=row.status,
                integrity=IntegrityStatus.INVALID,
            )
        status = verify_or_unchecked(
            self._keyring, JOURNAL_PURPOSE, JOURNAL_FIELDS, entry.mac_fields(), row.mac
        )
        # The stored text must be the canonical rendering the MAC covered, else it was edited.
        if status is IntegrityStatus.VERIFIED and (
            row.members != members_json(entry.members) or row.dates != dates_json(entry.dates)
        ):
            status = IntegrityStatus.INVALID
        return replace(entry, integrity=status)

    async def open(self, entry: JournalEntry) -> None:
        opened = replace(entry, status="open", closed_at=None, outcome=None)
        with translate_db_errors(doing="commit journal write"):
            existing = (
                await self._conn.execute(
                    select(commit_journal.c.journal_id).where(
                        commit_journal.c.journal_id == entry.journal_id
                    )
                )
            ).first()
            if existing is not None:
                raise ValueError(f"journal entry {entry.journal_id!r} exists")
            await self._conn.execute(
                commit_journal.insert().values(
                    journal_id=opened.journal_id,
                    kind=opened.kind,
                    rotation_group=opened.rotation_group,
                    lock_id=opened.lock_id,
                    actor=opened.actor,
                    owner_replica_id=opened.owner_replica_id,
                    owner_host=opened.owner_host,
                    owner_pid=opened.owner_pid,
                    started_at=opened.started_at,
                    members=members_json(opened.members),
                    dates=dates_json(opened.dates),
                    status="open",
                    mac=self._mac(opened),
                )
            )

    async def get(self, journal_id: str) -> JournalEntry | None:
        with translate_db_errors(doing="commit journal read"):
            row = (
                await self._conn.execute(
                    select(commit_journal).where(commit_journal.c.journal_id == journal_id)
                )
            ).first()
        return self._entry(row) if row is not None else None

    async def list_open(self) -> Sequence[JournalEntry]:
        with translate_db_errors(doing="commit journal read"):
            result = await self._conn.execute(
                select(commit_journal)
                .where(commit_journal.c.status == "open")
                .order_by(commit_journal.c.started_at, commit_journal.c.journal_id)
            )
        return [self._entry(row) for row in result]

    async def claim(self, journal_id: str, replica_id: str, now: datetime) -> bool:
        lapsed = now - timedelta(seconds=CLAIM_SECONDS)
        with translate_db_errors(doing="commit journal claim"):
            result = await self._conn.execute(
                update(commit_journal)
                .where(
                    commit_journal.c.journal_id == journal_id,
                    commit_journal.c.status == "open",
                    or_(
                        commit_journal.c.claimed_by.is_(None),
                        commit_journal.c.claimed_by == replica_id,
                        and_(
                            commit_journal.c.claimed_at.is_not(None),
                            commit_journal.c.claimed_at <= lapsed,
                        ),
                    ),
                )
                .values(claimed_by=replica_id, claimed_at=now)
            )
        return result.rowcount == 1

    async def close(
        self,
        journal_id: str,
        status: JournalStatus,
        now: datetime,
        outcome: str | None = None,
    ) -> bool:
        if status == "open":
            raise ValueError("close needs a closed status")
        with translate_db_errors(doing="commit journal close"):
            row = (
                await self._conn.execute(
                    select(commit_journal)
                    .where(commit_journal.c.journal_id == journal_id)
                    .with_for_update()
                )
            ).first()
            if row is None or row.status != "open":
                return False
            entry = self._entry(row)
            closed = replace(entry, status=status, closed_at=now, outcome=outcome)
            # An entry whose MAC was already bad stays bad: closing must not launder it.
            mac = self._mac(closed) if entry.integrity.servable else row.mac
            result = await self._conn.execute(
                update(commit_journal)
                .where(commit_journal.c.journal_id == journal_id, commit_journal.c.status == "open")
                .values(status=status, closed_at=now, outcome=outcome, mac=mac)
            )
        return result.rowcount == 1
