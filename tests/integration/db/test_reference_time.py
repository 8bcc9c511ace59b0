"""The database's clock (contract section 18): PostgreSQL answers its own time; SQLite runs on
this host's clock (None: nothing to correct)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from omni_secrets.adapters.db.clock import SqlReferenceTime
from omni_secrets.adapters.db.engine import create_engine as create_async_engine
from omni_secrets.domain.clock import SharedClock, SystemClock
from omni_secrets.service.shared_time import ClockSync
from tests.integration.db.conftest import PostgresDatabases


@pytest.fixture
async def pg_url(postgres_databases: PostgresDatabases) -> AsyncIterator[str]:
    url = postgres_databases.create()
    yield url
    postgres_databases.drop(url)


@pytest.mark.postgres
async def test_postgres_answers_its_clock_and_the_offset_is_small_on_one_host(
    pg_url: str,
) -> None:
    engine = create_async_engine(pg_url)
    try:
        reference = SqlReferenceTime(engine)
        before = datetime.now(UTC)
        moment = await reference.reference_now()
        after = datetime.now(UTC)
        assert moment is not None and moment.tzinfo is not None
        # The server runs on this machine: its clock is this host's, within the round trip.
        assert abs((moment - before).total_seconds()) < 2
        assert abs((after - moment).total_seconds()) < 2
        clock = SharedClock(SystemClock())
        offset = await ClockSync(clock=clock, reference=reference).sync()
        assert abs(offset) < 0.5, offset
        assert clock.offset_seconds == offset
    finally:
        await engine.dispose()


async def test_sqlite_runs_on_the_host_clock(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite:///{tmp_path / 'clock.db'}")
    try:
        assert await SqlReferenceTime(engine).reference_now() is None
    finally:
        await engine.dispose()
