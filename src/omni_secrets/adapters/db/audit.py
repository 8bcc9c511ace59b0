"""``SqlAuditLog``: the append-only, hash-chained audit table on PostgreSQL and SQLite.

Appends are serialised so the chain stays a chain: on PostgreSQL the transaction first takes
``pg_advisory_xact_lock(AUDIT_APPEND_LOCK_KEY)`` (cluster-wide, released at commit or rollback)
and, because the connection runs in READ COMMITTED, the following ``SELECT`` of the newest row
sees every append committed before the lock was granted (under REPEATABLE READ it would not, and
concurrent appends would collide on the id). On SQLite every transaction already holds the write
lock (``BEGIN IMMEDIATE``, see ``engine.py``). The new id is ``max(id) + 1`` — no sequence — so a
rolled-back append leaves no gap. The hash rules live in :mod:`omni_secrets.domain.audit_chain`.

The database itself refuses UPDATE, DELETE and TRUNCATE on the table (triggers created by
migration ``0002``); this module only ever inserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from omni_secrets.adapters.db.errors import translate_db_errors
from omni_secrets.adapters.db.tables import secret_access_events as events
from omni_secrets.domain import audit_chain
from omni_secrets.domain.errors import AuditUnavailable
from omni_secrets.domain.models import NewAccessEvent, OmniSecretAccessEvent

AUDIT_APPEND_LOCK_KEY = 0x6F6D6E6961756474
"""The advisory lock key serialising appends (the ASCII bytes of ``omniaudt``)."""

_LOCK = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=AUDIT_APPEND_LOCK_KEY)
_LAST = select(events.c.id, events.c.row_hash).order_by(events.c.id.desc()).limit(1)


class SqlAuditLog:
    """The :class:`~omni_secrets.domain.repositories.AuditLog` port over one connection.

    Args:
        connection: the unit of work's connection (its transaction is used, never committed).
    """

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection
        self._postgres = connection.dialect.name == "postgresql"

    async def append(self, event: NewAccessEvent) -> OmniSecretAccessEvent:
        with translate_db_errors(AuditUnavailable, doing="audit append"):
            if self._postgres:
                await self._conn.execute(_LOCK)
            last = (await self._conn.execute(_LAST)).first()
            prev_id, prev_hash = (last.id, last.row_hash) if last else (0, audit_chain.GENESIS_HASH)
            stored = audit_chain.seal(event, event_id=prev_id + 1, prev_hash=prev_hash)
            await self._conn.execute(insert(events).values(**_to_row(stored)))
        return stored

    async def recent(self, limit: int) -> Sequence[OmniSecretAccessEvent]:
        with translate_db_errors(doing="audit read"):
            result = await self._conn.execute(
                select(events).order_by(events.c.id.desc()).limit(limit)
            )
        return [_from_row(row) for row in result]

    async def page(self, after_id: int, limit: int) -> Sequence[OmniSecretAccessEvent]:
        with translate_db_errors(doing="audit read"):
            result = await self._conn.execute(
                select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
            )
        return [_from_row(row) for row in result]


def _to_row(event: OmniSecretAccessEvent) -> dict[str, Any]:
    return event.model_dump()


def _from_row(row: Row[Any]) -> OmniSecretAccessEvent:
    # Stored rows are taken as they are, unvalidated: a tampered row (an unknown action, a
    # malformed hash) must reach the chain verifier and fail there, not crash the reader.
    return OmniSecretAccessEvent.model_construct(**row._mapping)
