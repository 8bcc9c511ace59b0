"""SQL implementation of the replica ports (``domain/cluster.py``): registry, refresh ledger,
secret signals.

Unlike the unit-of-work repositories, every method here is one short transaction of its own
(``engine.begin()``): these rows are bookkeeping between replicas and never take part in a
business transaction. Upserts are ``INSERT … ON CONFLICT DO UPDATE`` on both dialects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omni_secrets.adapters.db.errors import translate_db_errors
from omni_secrets.adapters.db.tables import (
    refresh_requests,
    refresh_results,
    replicas,
    secret_signals,
)
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.cluster import (
    ClusterRefresh,
    RefreshResult,
    RefreshStatus,
    ReplicaInfo,
    ReplicaRefreshOutcome,
    SecretSignal,
)


async def _upsert(
    conn: AsyncConnection, table: Table, values: Mapping[str, Any], keys: Sequence[str]
) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    changes = {k: statement.excluded[k] for k in values if k not in keys}
    await conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changes))


class SqlClusterStore:
    """:class:`ReplicaRegistry`, :class:`RefreshLedger` and :class:`SignalStore` over ``engine``.

    Raises (every method):
        DatabaseUnavailable: the database cannot be reached.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # --- registry -----------------------------------------------------------------------------

    async def heartbeat(self, replica: ReplicaInfo) -> None:
        async with self._begin("replica heartbeat") as conn:
            await _upsert(
                conn,
                replicas,
                {
                    "id": replica.replica_id,
                    "host": replica.host,
                    "started_at": replica.started_at,
                    "last_seen_at": replica.last_seen_at,
                },
                ["id"],
            )

    async def live(self, now: datetime, window_seconds: float) -> Sequence[ReplicaInfo]:
        since = now - timedelta(seconds=window_seconds)
        async with self._begin("replica list") as conn:
            rows = await conn.execute(
                select(replicas)
                .where(replicas.c.last_seen_at >= since)
                .order_by(replicas.c.started_at, replicas.c.id)
            )
            return [ReplicaInfo(r.id, r.host, r.started_at, r.last_seen_at) for r in rows]

    async def deregister(self, replica_id: str) -> None:
        async with self._begin("replica deregister") as conn:
            await conn.execute(delete(replicas).where(replicas.c.id == replica_id))

    async def prune(self, before: datetime) -> int:
        async with self._begin("replica prune") as conn:
            old = select(refresh_requests.c.request_id).where(refresh_requests.c.queued_at < before)
            # Results first: SQLite does not enforce the cascade without PRAGMA foreign_keys.
            statements = (
                delete(refresh_results).where(refresh_results.c.request_id.in_(old)),
                delete(refresh_requests).where(refresh_requests.c.queued_at < before),
                delete(replicas).where(replicas.c.last_seen_at < before),
            )
            deleted = 0
            for statement in statements:
                deleted += int((await conn.execute(statement)).rowcount or 0)
            return deleted

    # --- refresh ledger -------------------------------------------------------------------------

    async def add(self, request: ClusterRefresh) -> None:
        async with self._begin("refresh request insert") as conn:
            await conn.execute(
                refresh_requests.insert().values(
                    request_id=request.request_id,
                    targeted=request.targeted,
                    secret_types=[t.value for t in request.secret_types],
                    actor=request.actor,
                    queued_at=request.queued_at,
                    origin_replica_id=request.origin_replica_id,
                )
            )

    async def get(
        self, request_id: str
    ) -> tuple[ClusterRefresh, Sequence[ReplicaRefreshOutcome]] | None:
        async with self._begin("refresh request read") as conn:
            row = (
                await conn.execute(
                    select(refresh_requests).where(refresh_requests.c.request_id == request_id)
                )
            ).first()
            if row is None:
                return None
            outcomes = await conn.execute(
                select(refresh_results)
                .where(refresh_results.c.request_id == request_id)
                .order_by(refresh_results.c.replica_id)
            )
            return _request(row), [_outcome(o) for o in outcomes]

    async def record(self, outcome: ReplicaRefreshOutcome) -> None:
        async with self._begin("refresh result upsert") as conn:
            await _upsert(
                conn,
                refresh_results,
                {
                    "request_id": outcome.request_id,
                    "replica_id": outcome.replica_id,
                    "status": outcome.status.value,
                    "results": [
                        {
                            "secretType": r.secret_type.value,
                            "ok": r.ok,
                            "version": r.version,
                            "error": r.error,
                        }
                        for r in outcome.results
                    ],
                    "completed_at": outcome.completed_at,
                },
                ["request_id", "replica_id"],
            )

    async def pending(self, replica_id: str, since: datetime) -> Sequence[ClusterRefresh]:
        done = select(refresh_results.c.request_id).where(
            refresh_results.c.replica_id == replica_id
        )
        async with self._begin("refresh pending read") as conn:
            rows = await conn.execute(
                select(refresh_requests)
                .where(refresh_requests.c.queued_at >= since)
                .where(refresh_requests.c.request_id.not_in(done))
                .order_by(refresh_requests.c.queued_at)
            )
            return [_request(r) for r in rows]

    # --- signals --------------------------------------------------------------------------------

    async def all(self) -> Sequence[SecretSignal]:
        async with self._begin("signal read") as conn:
            rows = await conn.execute(select(secret_signals).order_by(secret_signals.c.secret_type))
            return [_signal(r) for r in rows if r.secret_type in _KNOWN_TYPES]

    async def put(self, signal: SecretSignal) -> None:
        async with self._begin("signal upsert") as conn:
            await _upsert(
                conn,
                secret_signals,
                {
                    "secret_type": signal.secret_type.value,
                    "revoked_version": signal.revoked_version,
                    "revoked_code": signal.revoked_code,
                    "revoked_message": signal.revoked_message,
                    "revoked_at": signal.revoked_at,
                    "confirmed": signal.confirmed,
                    "candidate_version": signal.candidate_version,
                    "candidate_at": signal.candidate_at,
                },
                ["secret_type"],
            )

    # --- plumbing -------------------------------------------------------------------------------

    def _begin(self, doing: str) -> _Transaction:
        return _Transaction(self._engine, doing)


_KNOWN_TYPES = frozenset(t.value for t in SecretType)


class _Transaction:
    """``engine.begin()`` with operational failures translated (on enter, body and commit)."""

    def __init__(self, engine: AsyncEngine, doing: str) -> None:
        self._engine = engine
        self._doing = doing
        self._cm: Any = None

    async def __aenter__(self) -> AsyncConnection:
        with translate_db_errors(doing=self._doing):
            self._cm = self._engine.begin()
            conn: AsyncConnection = await self._cm.__aenter__()
            return conn

    async def __aexit__(self, *exc_info: Any) -> None:
        with translate_db_errors(doing=self._doing):
            await self._cm.__aexit__(*exc_info)


def _request(row: Row[Any]) -> ClusterRefresh:
    return ClusterRefresh(
        request_id=row.request_id,
        targeted=bool(row.targeted),
        secret_types=tuple(SecretType(t) for t in row.secret_types if t in _KNOWN_TYPES),
        actor=row.actor,
        queued_at=row.queued_at,
        origin_replica_id=row.origin_replica_id,
    )


def _outcome(row: Row[Any]) -> ReplicaRefreshOutcome:
    return ReplicaRefreshOutcome(
        request_id=row.request_id,
        replica_id=row.replica_id,
        status=RefreshStatus(row.status),
        results=tuple(
            RefreshResult(
                secret_type=SecretType(r["secretType"]),
                ok=bool(r["ok"]),
                version=r.get("version"),
                error=r.get("error"),
            )
            for r in row.results
            if r.get("secretType") in _KNOWN_TYPES
        ),
        completed_at=row.completed_at,
    )


def _signal(row: Row[Any]) -> SecretSignal:
    return SecretSignal(
        secret_type=SecretType(row.secret_type),
        revoked_version=row.revoked_version,
        revoked_code=row.revoked_code,
        revoked_message=row.revoked_message,
        revoked_at=row.revoked_at,
        confirmed=bool(row.confirmed),
        candidate_version=row.candidate_version,
        candidate_at=row.candidate_at,
    )
