"""The replica heartbeat: keeps this replica's row in ``omni_replicas`` fresh (contract §12).

Every ``interval_seconds`` (well inside the 30 s liveness window) it renews ``last_seen_at`` and
re-reads the live replicas (status ``replica.peers``); on stop it removes the row so the others
stop counting this replica at once. A failed beat is logged and retried at the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from omni_secrets.service.replicas import ReplicaService

Sleep = Callable[[float], Awaitable[None]]

DEFAULT_INTERVAL_SECONDS = 5.0


class ReplicaHeartbeatJob:
    """Runs :meth:`ReplicaService.beat` every ``interval_seconds`` until stopped.

    Raises:
        ValueError: ``interval_seconds`` is not positive.
    """

    def __init__(
        self,
        replicas: ReplicaService,
        *,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not interval_seconds > 0:
            raise ValueError("interval_seconds must be positive")
        self._replicas = replicas
        self._interval = float(interval_seconds)
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register now (so status is right from the start), then beat in the background."""
        await self._replicas.beat()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="replica-heartbeat")

    async def stop(self) -> None:
        """Stop beating and deregister this replica; idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await self._replicas.leave()

    async def _run(self) -> None:
        while True:
            await self._sleep(self._interval)
            await self._replicas.beat()  # never raises
