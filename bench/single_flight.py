"""1,000 concurrent refresh requests against a fetch with 100 ms latency: GSM calls per type.

The target is at most one fetch per type; every caller must still get an outcome for every type.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench._fakes import LatencyFetch
from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import SystemClock

CALLERS = 1_000
LATENCY_SECONDS = 0.100


@dataclass(frozen=True, slots=True)
class SingleFlightResult:
    callers: int
    max_fetches_per_type: int
    total_fetches: int
    types: int
    wall_seconds: float
    every_caller_answered: bool


async def _run() -> SingleFlightResult:
    fetch = LatencyFetch(LATENCY_SECONDS)
    cache = OmniSecretCache(
        catalog=Catalog(), fetch=fetch, ttl_seconds=300, max_stale_seconds=0, clock=SystemClock()
    )
    start = time.perf_counter()
    results = await asyncio.gather(*(cache.refresh() for _ in range(CALLERS)))
    wall = time.perf_counter() - start
    types = len(Catalog())
    return SingleFlightResult(
        callers=CALLERS,
        max_fetches_per_type=max(fetch.calls.values()),
        total_fetches=sum(fetch.calls.values()),
        types=types,
        wall_seconds=wall,
        every_caller_answered=all(
            len(r) == types and all(o.ok for o in r.values()) for r in results
        ),
    )


def run(*, quick: bool = False) -> SingleFlightResult:
    return asyncio.run(_run())
