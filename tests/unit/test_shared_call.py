"""SharedCall: concurrent callers share one call; later callers start a new one."""

from __future__ import annotations

import asyncio

import pytest

from omni_secrets.service.shared_call import SharedCall


class Gate:
    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = False

    async def __call__(self) -> int:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("fake-database-down")
        return self.calls


async def test_callers_in_flight_share_one_call() -> None:
    gate = Gate()
    shared = SharedCall(gate)
    waiters = [asyncio.create_task(shared.run()) for _ in range(16)]
    await asyncio.sleep(0)
    gate.release.set()
    assert await asyncio.gather(*waiters) == [1] * 16
    assert gate.calls == 1


async def test_a_caller_after_the_call_finished_starts_a_new_one() -> None:
    gate = Gate()
    gate.release.set()
    shared = SharedCall(gate)
    assert await shared.run() == 1
    await asyncio.sleep(0)
    assert await shared.run() == 2


async def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    gate = Gate()
    gate.fail = True
    shared = SharedCall(gate)
    waiters = [asyncio.create_task(shared.run()) for _ in range(3)]
    await asyncio.sleep(0)
    gate.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    gate.fail = False
    await asyncio.sleep(0)
    assert await shared.run() == 2


async def test_one_waiter_giving_up_does_not_cancel_the_others() -> None:
    gate = Gate()
    shared = SharedCall(gate)
    quitter = asyncio.create_task(shared.run())
    stayer = asyncio.create_task(shared.run())
    await asyncio.sleep(0)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    gate.release.set()
    assert await stayer == 1
