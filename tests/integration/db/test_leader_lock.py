"""The rotation monitor's leader lock: a PostgreSQL session advisory lock, or always on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine

from omni_secrets.adapters.db.engine import create_engine as create_async_engine
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.leader import LocalLeaderLock, PostgresLeaderLock, leader_lock_for
from tests.integration.db.conftest import PostgresDatabases


@pytest.fixture
async def pg_url(postgres_databases: PostgresDatabases) -> AsyncIterator[str]:
    url = postgres_databases.create()
    yield url
    postgres_databases.drop(url)


@pytest.fixture
async def engines(pg_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one database: two replicas."""
    first, second = create_async_engine(pg_url), create_async_engine(pg_url)
    yield first, second
    await first.dispose()
    await second.dispose()


def terminate_other_sessions(url: str) -> int:
    engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        engine.dispose()


@pytest.mark.postgres
class TestPostgresLeaderLock:
    async def test_one_leader_until_released(
        self, engines: tuple[AsyncEngine, AsyncEngine]
    ) -> None:
        """The first replica leads and keeps leading; the other takes over after a release."""
        a, b = PostgresLeaderLock(engines[0]), PostgresLeaderLock(engines[1])
        assert await a.try_acquire() is True
        assert await b.try_acquire() is False
        assert await a.try_acquire() is True
        await a.release()
        assert await b.try_acquire() is True
        assert await a.try_acquire() is False
        await b.release()
        await b.release()  # idempotent

    async def test_dead_session_hands_over(
        self, engines: tuple[AsyncEngine, AsyncEngine], pg_url: str
    ) -> None:
        """When the leader's session dies, PostgreSQL frees the lock and the other replica leads."""
        a, b = PostgresLeaderLock(engines[0]), PostgresLeaderLock(engines[1])
        assert await a.try_acquire() is True
        assert terminate_other_sessions(pg_url) >= 1
        assert await b.try_acquire() is True
        assert await a.try_acquire() is False  # notices its dead session, competes, loses
        await b.release()
        assert await a.try_acquire() is True
        await a.release()

    async def test_keys_are_independent(self, engines: tuple[AsyncEngine, AsyncEngine]) -> None:
        """Different jobs (keys) elect their leaders separately."""
        a, b = PostgresLeaderLock(engines[0], key=1), PostgresLeaderLock(engines[1], key=2)
        assert await a.try_acquire() is True
        assert await b.try_acquire() is True
        await a.release()
        await b.release()

    async def test_factory_picks_postgres(self, engines: tuple[AsyncEngine, AsyncEngine]) -> None:
        """leader_lock_for a PostgreSQL engine is the advisory lock."""
        assert isinstance(leader_lock_for(engines[0]), PostgresLeaderLock)


class TestLocalLeaderLock:
    async def test_sqlite_always_leads(self, tmp_path: Path) -> None:
        """On SQLite (one process) the lock is always granted."""
        engine = create_async_engine(f"sqlite:///{tmp_path / 'omni.db'}")
        try:
            lock = leader_lock_for(engine)
            assert isinstance(lock, LocalLeaderLock)
            assert await lock.try_acquire() is True
            assert await lock.try_acquire() is True
            await lock.release()
        finally:
            await engine.dispose()
