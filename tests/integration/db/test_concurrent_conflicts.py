"""Races between separate connections: the rotation lock and break-glass nonces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from omni_secrets.adapters.db.engine import create_engine
from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.errors import ReplayDetected
from omni_secrets.domain.repositories import GroupLock
from tests.integration.db.test_repositories_contract import metadata_row, override

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
HOLD_SECONDS = 0.1  # the winner keeps its transaction open so the rival really has to wait


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines (two connections, as two replicas would have) on one seeded database."""
    first, second = create_engine(database_url), create_engine(database_url)
    async with sql_unit_of_work_factory(first)() as uow:
        await uow.metadata.insert_missing(metadata_row(t) for t in SecretType)
        await uow.commit()
    yield first, second
    await first.dispose()
    await second.dispose()


async def lock_attempt(
    engine: AsyncEngine, preview_id: str, now: datetime, ready: asyncio.Barrier
) -> GroupLock:
    async with sql_unit_of_work_factory(engine)() as uow:
        await ready.wait()
        lock = await uow.metadata.try_lock_group(
            "api_credentials", preview_id, now + timedelta(minutes=15), now
        )
        await asyncio.sleep(HOLD_SECONDS)
        await uow.commit()
        return lock


class TestRotationLockRace:
    async def test_exactly_one_of_two_concurrent_attempts_wins(
        self, engines: tuple[AsyncEngine, AsyncEngine]
    ) -> None:
        """Two previews racing for the same group on separate connections: one wins, one sees it."""
        ready = asyncio.Barrier(2)
        a, b = await asyncio.gather(
            lock_attempt(engines[0], "prv-a", T0, ready),
            lock_attempt(engines[1], "prv-b", T0, ready),
        )
        winner, loser = (a, b) if a.won else (b, a)
        assert [a.won, b.won].count(True) == 1
        assert loser.preview_id == winner.preview_id
        assert loser.expires_at == T0 + timedelta(minutes=15)

    async def test_expired_lock_is_taken_over_and_released_across_connections(
        self, engines: tuple[AsyncEngine, AsyncEngine]
    ) -> None:
        """After expiry another connection takes the lock over; its release frees the group."""
        ready = asyncio.Barrier(1)
        first = await lock_attempt(engines[0], "prv-a", T0, ready)
        later = T0 + timedelta(minutes=16)
        takeover = await lock_attempt(engines[1], "prv-b", later, ready)
        async with sql_unit_of_work_factory(engines[0])() as uow:
            stale_release = await uow.metadata.release_group("api_credentials", "prv-a")
            release = await uow.metadata.release_group("api_credentials", "prv-b")
            await uow.commit()
        async with sql_unit_of_work_factory(engines[1])() as uow:
            rows = await uow.metadata.list_all()
        assert first.won and takeover.won
        assert (stale_release, release) == (False, True)
        assert all(row.preview_id is None for row in rows)


class TestNonceRace:
    async def test_same_nonce_on_two_connections_activates_once(
        self, engines: tuple[AsyncEngine, AsyncEngine]
    ) -> None:
        """Two activations carrying one nonce at once: one is stored, the other is a replay."""
        ready = asyncio.Barrier(2)

        async def activate(engine: AsyncEngine, override_id: str) -> str:
            async with sql_unit_of_work_factory(engine)() as uow:
                await ready.wait()
                try:
                    await uow.overrides.add(override(override_id, "fake-nonce-race"))
                except ReplayDetected:
                    return "replay"
                await asyncio.sleep(HOLD_SECONDS)
                await uow.commit()
                return "stored"

        outcomes = await asyncio.gather(
            activate(engines[0], "ovr-a"), activate(engines[1], "ovr-b")
        )
        async with sql_unit_of_work_factory(engines[0])() as uow:
            active = await uow.overrides.list_active(T0)
        assert sorted(outcomes) == ["replay", "stored"]
        assert len(active) == 1
