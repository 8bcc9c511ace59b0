"""Timing helpers shared by the benchmarks: per-call samples and their percentiles."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import Any


@dataclass(frozen=True, slots=True)
class Distribution:
    """Percentiles of per-call latencies, in nanoseconds."""

    p50: float
    p99: float
    mean: float
    samples: int

    def describe(self) -> str:
        return f"p50 {self.p50:8.1f} ns   p99 {self.p99:8.1f} ns   ({self.samples:,} samples)"


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def distribution(samples: list[float]) -> Distribution:
    ordered = sorted(samples)
    return Distribution(
        p50=percentile(ordered, 0.50),
        p99=percentile(ordered, 0.99),
        mean=sum(ordered) / len(ordered),
        samples=len(ordered),
    )


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Keep the cyclic GC out of the timed region (it would add pauses unrelated to the code)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_batched(
    call: Callable[[Any], object], arg: Any, *, batch: int, batches: int
) -> list[float]:
    """Per-call nanoseconds, each sample the mean of ``batch`` back-to-back calls.

    Batching spreads the ~50 ns cost of reading the timer over many calls, so the sample is the
    call itself (plus a C-level loop step); ``batches`` samples give the percentiles.
    """
    clock = time.perf_counter_ns
    out: list[float] = []
    with quiet_gc():
        for _ in range(batches):
            start = clock()
            for _ in repeat(None, batch):
                call(arg)
            out.append((clock() - start) / batch)
    return out


def time_single(call: Callable[[Any], object], arg: Any, *, calls: int) -> list[float]:
    """Nanoseconds of each of ``calls`` single calls, timer overhead included."""
    clock = time.perf_counter_ns
    out = [0.0] * calls
    with quiet_gc():
        for i in range(calls):
            start = clock()
            call(arg)
            out[i] = clock() - start
    return out


def timer_overhead(*, calls: int) -> Distribution:
    """What two back-to-back timer reads cost: the floor under every single-call sample."""
    clock = time.perf_counter_ns
    out = [0.0] * calls
    with quiet_gc():
        for i in range(calls):
            start = clock()
            out[i] = clock() - start
    return distribution(out)
