"""Concurrent audit writers on separate connections: gapless ids, an intact chain, and tampering
caught by ``omni-secrets audit verify``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, pool, text

from omni_secrets.adapters.db.engine import create_engine as create_async_engine
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
from omni_secrets.domain.models import NewAccessEvent
from tests.integration.db.conftest import OmniCli

TABLE = "omni_secret_access_events"
ROW_TRIGGER = "omni_secret_access_events_append_only"


async def write_concurrently(url: str, writers: int, appends: int) -> float:
    """Run ``writers`` tasks, each with its own engine (connection), appending ``appends`` rows
    in one transaction per row; return the elapsed seconds."""
    engines = [create_async_engine(url, pool_size=1, max_overflow=0) for _ in range(writers)]
    start = asyncio.Event()

    async def writer(index: int) -> None:
        uow_factory = sql_unit_of_work_factory(engines[index])
        async with uow_factory() as uow:  # connect before the start line, not in the timing
            await uow.audit.recent(1)
        await start.wait()
        for n in range(appends):
            async with uow_factory() as uow:
                await uow.audit.append(
                    NewAccessEvent(
                        occurred_at=datetime.now(UTC),
                        secret_type="api_key",
                        action="refresh",
                        actor=f"writer-{index}",
                        result="success",
                        duration_ms=n,
                        correlation_id=f"w{index}-{n}",
                        details={"writer": index, "n": n},
                    )
                )
                await uow.commit()

    try:
        tasks = [asyncio.create_task(writer(i)) for i in range(writers)]
        await asyncio.sleep(0.2)
        began = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        return time.perf_counter() - began
    finally:
        for engine in engines:
            await engine.dispose()


def stored(engine: Engine) -> list[tuple[int, str | None]]:
    with engine.connect() as conn:
        result = conn.execute(
            text("SELECT id, correlation_id FROM omni_secret_access_events ORDER BY id")
        )
        return [(int(r[0]), r[1]) for r in result]


def actor_of(engine: Engine, event_id: int) -> str:
    with engine.connect() as conn:
        query = text("SELECT actor FROM omni_secret_access_events WHERE id = :id")
        return str(conn.execute(query, {"id": event_id}).scalar_one())


def tamper(engine: Engine, event_id: int, assignments: str = "actor = 'mallory'") -> None:
    """Edit a stored row the way an attacker with database superuser rights could.

    PostgreSQL: DISABLE TRIGGER works even on ENABLE ALWAYS triggers (only
    session_replication_role does not), so switch the row trigger off, edit, and switch it back
    on as it was. SQLite cannot disable a trigger, so the tamperer drops it.
    """
    update = text(f"UPDATE {TABLE} SET {assignments} WHERE id = :id")  # noqa: S608 - test constants
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE {TABLE} DISABLE TRIGGER {ROW_TRIGGER}"))
            conn.execute(update, {"id": event_id})
            conn.execute(text(f"ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER {ROW_TRIGGER}"))
        else:
            conn.execute(text("DROP TRIGGER omni_secret_access_events_no_update"))
            conn.execute(update, {"id": event_id})


def trigger_states(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        query = text(
            "SELECT tgname, tgenabled FROM pg_trigger "
            "WHERE tgrelid = 'omni_secret_access_events'::regclass"
        )
        return {str(name): str(state) for name, state in conn.execute(query)}


class TestConcurrentAppends:
    @pytest.mark.parametrize("backend", ["postgres"], indirect=True)
    async def test_eight_writers_on_postgres(self, database_url: str, omni_cli: OmniCli) -> None:
        """8 writers x 200 appends give ids 1..1600 and an intact chain; an edited row is named.

        (Throughput is measured by ``make bench``, not here.)"""
        await write_concurrently(database_url, writers=8, appends=200)
        raw = create_engine(sync_url(database_url), poolclass=pool.NullPool)
        try:
            rows = stored(raw)
            assert [r[0] for r in rows] == list(range(1, 1601))
            assert {r[1] for r in rows} == {f"w{i}-{n}" for i in range(8) for n in range(200)}
            intact = await asyncio.to_thread(
                omni_cli, "audit", "verify", OMNI_DATABASE_URL=database_url
            )
            assert intact.code == 0, intact.stderr
            assert "1600 events verified" in intact.stdout

            tamper(raw, 777)
            assert actor_of(raw, 777) == "mallory"
            assert set(trigger_states(raw).values()) == {"A"}
            broken = await asyncio.to_thread(
                omni_cli, "audit", "verify", OMNI_DATABASE_URL=database_url
            )
        finally:
            raw.dispose()
        assert broken.code == 1
        assert "event id 777" in broken.stderr
        assert "776 events before it verified" in broken.stderr

    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    async def test_four_writers_on_sqlite(self, database_url: str, omni_cli: OmniCli) -> None:
        """Concurrent SQLite writers (separate connections) also leave gapless ids and a chain."""
        await write_concurrently(database_url, writers=4, appends=25)
        raw = create_engine(sync_url(database_url), poolclass=pool.NullPool)
        try:
            assert [r[0] for r in stored(raw)] == list(range(1, 101))
            intact = await asyncio.to_thread(
                omni_cli, "audit", "verify", OMNI_DATABASE_URL=database_url
            )
            tamper(raw, 42)
            broken = await asyncio.to_thread(
                omni_cli, "audit", "verify", OMNI_DATABASE_URL=database_url
            )
        finally:
            raw.dispose()
        assert (intact.code, broken.code) == (0, 1)
        assert "100 events verified" in intact.stdout
        assert "event id 42" in broken.stderr

    async def test_tampered_row_that_no_longer_validates_is_still_named(
        self, database_url: str, omni_cli: OmniCli
    ) -> None:
        """An edit leaving the row invalid (unknown action, bad hash) is reported, not a crash."""
        await write_concurrently(database_url, writers=1, appends=3)
        raw = create_engine(sync_url(database_url), poolclass=pool.NullPool)
        try:
            tamper(raw, 2, "action = 'nonsense', details = '[1, 2]', prev_hash = 'zz'")
            broken = await asyncio.to_thread(
                omni_cli, "audit", "verify", OMNI_DATABASE_URL=database_url
            )
        finally:
            raw.dispose()
        assert broken.code == 1
        assert "event id 2" in broken.stderr
        assert "Traceback" not in broken.stderr
