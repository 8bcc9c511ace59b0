"""One clock for shared time (contract section 18): this replica's offset from the database's.

:class:`ClockSync` reads the database's clock between two readings of the host's, records the
offset on the :class:`~omni_secrets.domain.clock.SharedClock` every service stamps and compares
times with, and reports it (gauge ``omni_clock_offset_seconds``, status
``replica.clockOffsetSeconds``). It runs once at start-up, before anything reads or writes a
shared time, then at every replica heartbeat; between two heartbeats the last offset applies
(cheap: ``now()`` stays one addition, and two clocks drift apart by microseconds in 5 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from omni_secrets.domain.clock import ReferenceTime, SharedClock

DEFAULT_TIMEOUT_SECONDS = 5.0
"""The longest wait for the database's clock (a partition must not hold a heartbeat for ever)."""


class ClockSync:
    """Measures and applies this replica's offset from the database clock.

    Args:
        clock: the shared clock the services use.
        reference: the database's clock.
        on_offset: called with each measured offset in seconds (a gauge).
        timeout_seconds: the longest wait for the database.
    """

    def __init__(
        self,
        *,
        clock: SharedClock,
        reference: ReferenceTime,
        on_offset: Callable[[float], None] = lambda _s: None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._clock = clock
        self._reference = reference
        self._on_offset = on_offset
        self._timeout = timeout_seconds

    @property
    def offset_seconds(self) -> float | None:
        """The last measured offset (host minus database; None before the first)."""
        return self._clock.offset_seconds

    async def sync(self) -> float:
        """Measure the offset now and apply it.

        Returns:
            The offset in seconds (positive: this host's clock is ahead of the database's).

        Raises:
            DatabaseUnavailable: the database did not answer (the last offset stays).
            TimeoutError: it did not answer within ``timeout_seconds``.
        """
        before = self._clock.host_now()
        async with asyncio.timeout(self._timeout):
            reference = await self._reference.reference_now()
        after = self._clock.host_now()
        offset = self._clock.observe(before, reference, after)
        self._on_offset(offset)
        return offset
