"""The replica heartbeat: keeps this replica's row in ``omni_replicas`` fresh (contract §12).

Every ``interval_seconds`` (well inside the 30 s liveness window) it renews ``last_seen_at`` and
re-reads the live replicas (status ``replica.peers``); on stop it removes the row so the others
stop counting this replica at once. A failed beat is logged and retried at the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog

from omni_secrets.service.replicas import ReplicaService

log = structlog.get_logger("omni_secrets.replicas")

Sleep = Callable[[float], Awaitable[None]]
PeersSilent = Callable[[Sequence[str]], Awaitable[object]]

DEFAULT_INTERVAL_SECONDS = 5.0


class ReplicaHeartbeatJob:
    """Runs :meth:`ReplicaService.beat` every ``interval_seconds`` until stopped; when a peer
    stops beating (``PEER_SILENT_SECONDS``) calls ``on_peers_silent`` once with its id.

    Raises:
        ValueError: ``interval_seconds`` is not positive.
    """

    def __init__(
        self,
        replicas: ReplicaService,
        *,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        sleep: Sleep = asyncio.sleep,
        on_peers_silent: PeersSilent | None = None,
    ) -> None:
        if not interval_seconds > 0:
            raise ValueError("interval_seconds must be positive")
        self._replicas = replicas
        self._interval = float(interval_seconds)
        self._sleep = sleep
        self._on_peers_silent = on_peers_silent
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
            silent = self._replicas.take_newly_silent()
            if silent and self._on_peers_silent is not None:
                log.warning("replica.peers_silent", peers=list(silent))
                try:
                    await self._on_peers_silent(silent)
                except Exception as exc:
                    log.warning("replica.peers_silent_failed", error_type=type(exc).__name__)
