"""The readiness database check runs at most once a second (issue 15)."""

from __future__ import annotations

import asyncio

from omni_secrets.service.serving.db_probe import CachedDatabaseProbe


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_burst_of_probes_makes_one_check() -> None:
    calls = 0
    clock = FakeClock()

    async def check() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)

    probe = CachedDatabaseProbe(check, monotonic=clock)
    outcomes = await asyncio.gather(*(probe.problem() for _ in range(50)))
    assert outcomes == [None] * 50
    assert calls == 1
    clock.now += 0.99
    assert await probe.problem() is None
    assert calls == 1
    clock.now += 0.02
    assert await probe.problem() is None
    assert calls == 2


async def test_failure_is_reported_and_rechecked_after_the_window() -> None:
    clock = FakeClock()
    failing = True

    async def check() -> None:
        if failing:
            raise ConnectionRefusedError("fake: no database")

    probe = CachedDatabaseProbe(check, monotonic=clock)
    assert await probe.problem() == "database unavailable (ConnectionRefusedError)"
    failing = False
    assert await probe.problem() is not None  # still inside the window
    clock.now += 1.0
    assert await probe.problem() is None
