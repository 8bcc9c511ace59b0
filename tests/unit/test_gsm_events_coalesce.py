"""FreshReads: one GSM read per key in flight, one per interval, never older than the event."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from omni_secrets.domain.clock import SystemClock
from omni_secrets.service.gsm_events.coalesce import FreshReads


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        await asyncio.sleep(0.01)
        return self.calls


class TestFreshReads:
    async def test_a_flood_published_before_the_read_shares_it(self) -> None:
        reads: FreshReads[int] = FreshReads(SystemClock(), min_interval=0.2)
        call = Counter()
        published = datetime.now(UTC) - timedelta(seconds=5)
        answers = await asyncio.gather(*(reads.run("s", published, call) for _ in range(300)))
        assert call.calls == reads.calls == 1
        assert set(answers) == {1}
        assert await reads.run("s", published, call) == 1  # a fresh enough answer is reused

    async def test_an_event_newer_than_the_last_read_gets_a_new_one_after_the_interval(
        self,
    ) -> None:
        reads: FreshReads[int] = FreshReads(SystemClock(), min_interval=0.2)
        call = Counter()
        assert await reads.run("s", datetime.now(UTC), call) == 1
        started = asyncio.get_running_loop().time()
        later = datetime.now(UTC)
        answers = await asyncio.gather(*(reads.run("s", later, call) for _ in range(50)))
        assert set(answers) == {2} and call.calls == 2
        assert asyncio.get_running_loop().time() - started >= 0.15  # spaced by the interval
        assert await reads.run("other", later, call) == 3  # keys are independent

    async def test_a_failed_read_fails_who_joined_it_and_is_not_reused(self) -> None:
        reads: FreshReads[int] = FreshReads(SystemClock(), min_interval=0.0)

        async def broken() -> int:
            raise RuntimeError("fake-gsm-down")

        now = datetime.now(UTC)
        results = await asyncio.gather(
            *(reads.run("s", now, broken) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) for r in results)
        call = Counter()
        assert await reads.run("s", now, call) == 1
        with pytest.raises(RuntimeError):
            await reads.run("s", datetime.now(UTC) + timedelta(seconds=1), broken)
