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


class ReferenceTime(Protocol):
    """The clock every replica agrees on: the shared database's (contract section 18)."""

    async def reference_now(self) -> datetime | None:
        """The database's current time, or None when the database runs on this host's clock
        (SQLite: nothing to correct).

        Raises:
            DatabaseUnavailable: the database did not answer.
        """
        ...


class SharedClock:
    """Wall time on the database's clock: ``base`` corrected by the last measured offset.

    A replica measures its offset from the database clock at every heartbeat
    (:meth:`observe`) and applies it to :meth:`now` in between, so times other replicas act on
    (override activation and expiry, rotation dates, replica liveness, refresh requests,
    preview expiry, audit rows) do not depend on this host's clock. Between two measurements the
    two clocks drift by at most a few microseconds; a step of this host's clock is corrected at
    the next heartbeat. ``monotonic`` is the host's own: durations never depend on the offset.

    Args:
        base: the host's clock.
        correct: False keeps ``base``'s time (tests that drive time themselves) but still
            measures the offset.
    """

    def __init__(self, base: Clock, *, correct: bool = True) -> None:
        self._base = base
        self._correct = correct
        self._offset: timedelta | None = None

    @property
    def offset_seconds(self) -> float | None:
        """This host's clock minus the database's, in seconds (positive: the host is ahead);
        None before the first measurement."""
        return None if self._offset is None else self._offset.total_seconds()

    def host_now(self) -> datetime:
        """The host's own wall time (to measure the offset with)."""
        return self._base.now()

    def observe(self, before: datetime, reference: datetime | None, after: datetime) -> float:
        """Record one measurement: ``reference`` read between ``before`` and ``after`` (host
        times); the round trip is split evenly. A None reference means the same clock.

        Returns:
            The offset in seconds.
        """
        if reference is None:
            self._offset = timedelta(0)
        else:
            self._offset = before + (after - before) / 2 - reference
        return self._offset.total_seconds()

    def now(self) -> datetime:
        moment = self._base.now()
        if self._correct and self._offset is not None:
            return moment - self._offset
        return moment

    def monotonic(self) -> float:
        return self._base.monotonic()


class HostReferenceTime:
    """The reference clock of a single-host deployment (SQLite, in-memory fakes): this host's."""

    async def reference_now(self) -> datetime | None:
        return None
