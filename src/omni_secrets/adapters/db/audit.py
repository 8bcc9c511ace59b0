"""``SqlAuditLog``: the append-only, keyed hash chain on PostgreSQL and SQLite.

Appends are serialised so the chain stays a chain, and a batch of rows shares one serialisation:
:meth:`SqlAuditLog.append_many` takes the chain lock once, reads the last row, computes every
new row's id, ``prev_hash`` and (keyed) ``row_hash`` in Python and inserts them all in one
statement. On PostgreSQL the lock is ``pg_advisory_xact_lock(AUDIT_APPEND_LOCK_KEY)``
(cluster-wide, released at commit or rollback); the connection runs in READ COMMITTED, so the
read after the lock sees every append committed before the lock was granted. On SQLite every
transaction already holds the write lock (``BEGIN IMMEDIATE``, see ``engine.py``). Ids are
``max(id) + 1`` — no sequence — so a rolled-back batch leaves no gap. The hashing rules live in
:mod:`omni_secrets.domain.audit_chain`; the HMAC key never reaches the database, which is why the
chain is computed here and not in SQL.

The database itself refuses UPDATE, DELETE and TRUNCATE on the table (triggers created by
migration ``0002``); this module only ever inserts.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import Row, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from omni_secrets.adapters.db.errors import translate_db_errors
from omni_secrets.adapters.db.tables import secret_access_events as events
from omni_secrets.domain import audit_chain
from omni_secrets.domain.errors import AuditUnavailable
from omni_secrets.domain.integrity import IntegrityKeyring
from omni_secrets.domain.models import NewAccessEvent, OmniSecretAccessEvent
from omni_secrets.domain.repositories import AuditFilter

AUDIT_APPEND_LOCK_KEY = 0x6F6D6E6961756474
"""The advisory lock key serialising appends (the ASCII bytes of ``omniaudt``)."""

_LAST = select(events.c.id, events.c.row_hash).order_by(events.c.id.desc()).limit(1)
_PG_LOCK = text(f"SELECT pg_advisory_xact_lock({AUDIT_APPEND_LOCK_KEY})")
_PG_COPY = (
    "COPY omni_secret_access_events (id, occurred_at, secret_type, action, actor, result, "
    "duration_ms, correlation_id, details, prev_hash, row_hash, key_id) FROM STDIN"
)
# Driver failures of the direct psycopg path that mean "the database is not there".
_PSYCOPG_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError)


class SqlAuditLog:
    """The :class:`~omni_secrets.domain.repositories.AuditLog` port over one connection.

    Args:
        connection: the unit of work's connection (its transaction is used, never committed).
        keyring: the integrity keys; new rows are keyed with the signing key. Without it rows are
            written unkeyed (non-production only; contract section 9).
    """

    def __init__(
        self, connection: AsyncConnection, keyring: IntegrityKeyring | None = None
    ) -> None:
        self._conn = connection
        self._keyring = keyring
        self._postgres = connection.dialect.name == "postgresql"

    async def append(self, event: NewAccessEvent) -> OmniSecretAccessEvent:
        return (await self.append_many([event]))[0]

    async def append_many(self, batch: Sequence[NewAccessEvent]) -> Sequence[OmniSecretAccessEvent]:
        if not batch:
            return []
        try:
            with translate_db_errors(AuditUnavailable, doing="audit append"):
                if self._postgres:
                    await self._conn.execute(_PG_LOCK)
                last = (await self._conn.execute(_LAST)).first()
                prev_id, prev_hash = (
                    (last.id, last.row_hash) if last else (0, audit_chain.GENESIS_HASH)
                )
                stored: list[OmniSecretAccessEvent] = []
                for offset, event in enumerate(batch, start=1):
                    row = audit_chain.seal(
                        event,
                        event_id=prev_id + offset,
                        prev_hash=prev_hash,
                        keyring=self._keyring,
                    )
                    stored.append(row)
                    prev_hash = row.row_hash
                if self._postgres:
                    await self._copy_postgres(stored)
                else:
                    await self._conn.execute(insert(events), [_to_row(row) for row in stored])
        except AuditUnavailable:
            # A connection that failed mid-transaction must not go back to the pool as if sane.
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
            raise
        return stored

    async def _copy_postgres(self, rows: Sequence[OmniSecretAccessEvent]) -> None:
        # COPY, straight on the driver connection inside the same transaction: a batch of
        # hundreds of rows costs one round trip and no per-parameter processing (about 2x the
        # rows/s of SQLAlchemy's multi-VALUES insert here; see docs/benchmarks.md).
        driver: psycopg.AsyncConnection[Any] = (
            await self._conn.get_raw_connection()
        ).driver_connection  # type: ignore[assignment]
        try:
            async with driver.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
                for row in rows:
                    await copy.write_row(
                        (
                            row.id,
                            row.occurred_at,
                            row.secret_type,
                            row.action,
                            row.actor,
                            row.result,
                            row.duration_ms,
                            row.correlation_id,
                            json.dumps(row.details),
                            row.prev_hash,
                            row.row_hash,
                            row.key_id,
                        )
                    )
        except _PSYCOPG_UNAVAILABLE as exc:
            raise AuditUnavailable("audit append failed: the database is unreachable") from exc

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

    async def search(self, where: AuditFilter, limit: int) -> Sequence[OmniSecretAccessEvent]:
        query = select(events)
        if where.secret_type is not None:
            query = query.where(events.c.secret_type == where.secret_type)
        if where.action is not None:
            query = query.where(events.c.action == where.action)
        if where.actor is not None:
            query = query.where(events.c.actor == where.actor)
        if where.since is not None:
            query = query.where(events.c.occurred_at >= where.since)
        with translate_db_errors(doing="audit read"):
            result = await self._conn.execute(query.order_by(events.c.id.desc()).limit(limit))
        return [_from_row(row) for row in result]


def _to_row(event: OmniSecretAccessEvent) -> dict[str, Any]:
    return event.model_dump()


def _from_row(row: Row[Any]) -> OmniSecretAccessEvent:
    # Stored rows are taken as they are, unvalidated: a tampered row (an unknown action, a
    # malformed hash) must reach the chain verifier and fail there, not crash the reader.
    return OmniSecretAccessEvent.model_construct(**row._mapping)
