"""Reader latency while a refresh hangs on GSM, against the same readers with nothing in flight.

A refresh of every type is started (with 1,000 callers waiting on it) whose fetches never return;
readers on the same event loop keep calling ``get``. The target: readers are not slowed (ratio of
p50s about 1) and keep getting the old snapshot.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bench._fakes import LatencyFetch
from bench._stats import Distribution, distribution, time_batched
from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import SystemClock

WAITING_CALLERS = 1_000


@dataclass(frozen=True, slots=True)
class ReadersResult:
    idle: Distribution
    hanging: Distribution
    fetches_in_flight: int
    old_snapshot_served: bool

    @property
    def ratio(self) -> float:
        return self.hanging.p50 / self.idle.p50


async def _readers(cache: OmniSecretCache, *, rounds: int) -> Distribution:
    samples: list[float] = []
    for _ in range(rounds):
        samples += time_batched(cache.get, SecretType.API_KEY, batch=100, batches=50)
        await asyncio.sleep(0)  # let the loop run whatever else is scheduled between rounds
    return distribution(samples)


async def _run(rounds: int) -> ReadersResult:
    fetch = LatencyFetch()
    cache = OmniSecretCache(
        catalog=Catalog(), fetch=fetch, ttl_seconds=300, max_stale_seconds=0, clock=SystemClock()
    )
    await cache.hydrate()
    before = cache.get(SecretType.API_KEY)
    idle = await _readers(cache, rounds=rounds)

    fetch.hang = asyncio.Event()
    callers = [asyncio.create_task(cache.refresh()) for _ in range(WAITING_CALLERS)]
    await asyncio.sleep(0)
    in_flight = sum(1 for info in cache.entries() if info.refreshing)
    hanging = await _readers(cache, rounds=rounds)
    served_old = cache.get(SecretType.API_KEY) is before

    fetch.hang.set()
    await asyncio.gather(*callers)
    await cache.stop()
    return ReadersResult(
        idle=idle, hanging=hanging, fetches_in_flight=in_flight, old_snapshot_served=served_old
    )


def run(*, quick: bool = False) -> ReadersResult:
    return asyncio.run(_run(10 if quick else 100))
