"""Hydration wall time of the whole catalog with 100 ms of latency injected into every fetch.

The target (design.md) is under 1.5 x one call: the five fetches must overlap. The ratio is taken
against one fetch timed in the same run, so event-loop overhead on this machine is not hidden in
the nominal 100 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

from bench._fakes import LatencyFetch
from omni_secrets.domain.cache import CacheState, OmniSecretCache
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import SystemClock

LATENCY_SECONDS = 0.100


@dataclass(frozen=True, slots=True)
class HydrationResult:
    types: int
    single_call_seconds: float
    hydration_seconds: float
    runs: int
    all_ready: bool

    @property
    def ratio(self) -> float:
        return self.hydration_seconds / self.single_call_seconds


async def _one_run() -> tuple[float, float, bool]:
    fetch = LatencyFetch(LATENCY_SECONDS)
    cache = OmniSecretCache(
        catalog=Catalog(), fetch=fetch, ttl_seconds=300, max_stale_seconds=0, clock=SystemClock()
    )
    start = time.perf_counter()
    await fetch(SecretType.API_KEY)
    single = time.perf_counter() - start
    start = time.perf_counter()
    report = await cache.hydrate()
    hydration = time.perf_counter() - start
    return single, hydration, report.state is CacheState.READY


def run(*, quick: bool = False) -> HydrationResult:
    """Hydrate a fresh cache several times; report medians."""
    runs = 3 if quick else 7
    results = [asyncio.run(_one_run()) for _ in range(runs)]
    return HydrationResult(
        types=len(Catalog()),
        single_call_seconds=statistics.median(r[0] for r in results),
        hydration_seconds=statistics.median(r[1] for r in results),
        runs=runs,
        all_ready=all(r[2] for r in results),
    )
