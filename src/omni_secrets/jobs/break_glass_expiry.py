"""The break-glass expiry job: ends overrides in the database once their window has passed.

The cache stops serving an override at its expiry on its own (the hot path checks it); this job
makes the database and the audit trail agree: each expired override is marked ended
(``expired``) with a ``break_glass_expire`` audit row (actor ``system``), the cache forgets it and
the ``break_glass_active`` alert is resolved when the type has no other override. It wakes at the
next known expiry, and at least every ``max_interval_seconds`` so overrides activated on other
replicas (or before a restart) are ended too. Every replica runs it; an override is ended, and
audited, by exactly one of them (the database's conditional update decides).

Time is injected: ``sleep`` and the service's clock, so tests drive it without waiting.
"""

from __future__ import annotations

import asyncio

import structlog

from omni_secrets.domain.clock import Sleep
from omni_secrets.service.break_glass import BreakGlassService

log = structlog.get_logger("omni_secrets.jobs.break_glass_expiry")


DEFAULT_MAX_INTERVAL_SECONDS = 10.0
MIN_DELAY_SECONDS = 0.05
"""Floor of a wait, so a clock that lags the database's never spins the loop."""


class BreakGlassExpiryJob:
    """Runs :meth:`BreakGlassService.expire_due` at each expiry, and at least every interval.

    Args:
        service: the break-glass service.
        max_interval_seconds: the longest wait between two passes.
        sleep: how to wait (inject one driven by a manual clock in tests).

    Raises:
        ValueError: ``max_interval_seconds`` is not positive.
    """

    def __init__(
        self,
        service: BreakGlassService,
        *,
        max_interval_seconds: float = DEFAULT_MAX_INTERVAL_SECONDS,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not max_interval_seconds > 0:
            raise ValueError("max_interval_seconds must be positive")
        self._service = service
        self._max_interval = float(max_interval_seconds)
        self._sleep = sleep

    async def run_once(self) -> float:
        """One pass: end what is due.

        Returns:
            Seconds to wait before the next pass (the next expiry, capped at the interval).

        Raises:
            DatabaseUnavailable: the database could not be read (nothing changed).
        """
        until_next = await self._service.expire_due()
        return max(MIN_DELAY_SECONDS, min(until_next, self._max_interval))

    async def run_forever(self) -> None:
        """Pass after pass until cancelled; a failed pass is logged, then retried next interval."""
        while True:
            try:
                delay = await self.run_once()
            except Exception as exc:  # a failed pass must never end the job
                log.warning("break_glass.expiry_pass_failed", error_type=type(exc).__name__)
                delay = self._max_interval
            await self._sleep(delay)
