"""Time: an injectable clock and the RFC 3339 rendering the contract uses.

Every component that needs "now" takes a :class:`Clock` so tests can drive time without sleeping.
Wall time (``now``) stamps records; monotonic time (``monotonic``) measures durations and cache
freshness on the hot path, where it is cheaper and immune to clock steps.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

Sleep = Callable[[float], Awaitable[None]]
"""How a component waits (``asyncio.sleep``; tests inject one that records or drives a clock)."""


class Clock(Protocol):
    """Source of wall and monotonic time."""

    def now(self) -> datetime:
        """The current UTC time, timezone-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock (only differences are meaningful)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; for tests and the benchmark.

    Args:
        start: the initial wall time (timezone-aware).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
        self._mono = 1_000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        self._now += timedelta(seconds=seconds)
        self._mono += seconds


def to_rfc3339(moment: datetime) -> str:
    """Render an aware datetime as RFC 3339 UTC with a ``Z`` suffix.

    Raises:
        ValueError: ``moment`` is naive (a naive time is a bug: we never guess its zone).
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
