"""The readiness probe's database check, answered from a one-second memo.

Kubernetes, load balancers and monitors probe ``/readyz`` often and in bursts; each check is a
database round trip (on SQLite it takes the write lock). The outcome is kept for
:data:`PROBE_TTL_SECONDS`, and concurrent probes in that window share one check.

A check is given :data:`PROBE_TIMEOUT_SECONDS`: a database that accepts the connection and then
never answers (a partition) is reported unavailable in time, so ``/readyz`` always answers
within 2 s (contract section 18).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

PROBE_TTL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 1.0


class CachedDatabaseProbe:
    """Runs ``check`` at most once per ``ttl_seconds``; its outcome is a reason or None (ok).

    Args:
        check: the real check; it raises when the database does not answer.
        ttl_seconds: how long an outcome (success or failure) is reused.
        timeout_seconds: how long one check may take before the database counts as unavailable.
        monotonic: the clock (injectable for tests).
    """

    def __init__(
        self,
        check: Callable[[], Awaitable[object]],
        *,
        ttl_seconds: float = PROBE_TTL_SECONDS,
        timeout_seconds: float = PROBE_TIMEOUT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._monotonic = monotonic
        self._outcome: str | None = None
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()
        self._running: asyncio.Future[object] | None = None

    async def problem(self) -> str | None:
        """None when the database answered within the last second, else why it did not."""
        if self._fresh():
            return self._outcome
        async with self._lock:
            if self._fresh():  # another probe checked while this one waited
                return self._outcome
            outcome = await self._run_check()
            self._outcome, self._checked_at = outcome, self._monotonic()
            return outcome

    async def _run_check(self) -> str | None:
        # The check runs as its own task and is waited for, not cancelled: a cancelled database
        # call may itself take seconds to give up (psycopg tries to cancel the query on the
        # server first). A check still stalled is not started again: later probes wait on it.
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._check())
            self._running.add_done_callback(_consume)
        done, _ = await asyncio.wait({self._running}, timeout=self._timeout)
        if not done:
            return f"database unavailable (no answer within {self._timeout:g} s)"
        error = self._running.exception()
        if error is not None:
            return f"database unavailable ({type(error).__name__})"
        return None

    def _fresh(self) -> bool:
        return self._checked_at is not None and self._monotonic() - self._checked_at < self._ttl


def _consume(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a failed check is an answer, not an unhandled error
