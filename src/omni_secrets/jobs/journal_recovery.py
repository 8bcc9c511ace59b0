"""The journal recovery job: a live replica resolves what a dead one left mid-commit (contract §15).

Every ``interval_seconds`` (5 s) it runs one :meth:`JournalRecovery.recover_dead` round: one
query of the open journal entries, which is empty nearly always; only when an entry is open does
it read the replica registry and, for an entry whose owner has been silent for
:data:`~omni_secrets.domain.rotation.journal.OWNER_SILENT_SECONDS`, recover it. The owner's
silence (12 s) plus one interval keeps recovery by a peer within 30 s of a death. Every replica
runs it (no leader): the journal's claim makes sure one replica recovers each entry. A failed
round is logged and retried at the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from omni_secrets.service.rotation.recovery import JournalRecovery

log = structlog.get_logger("omni_secrets.rotation")

Sleep = Callable[[float], Awaitable[None]]

DEFAULT_INTERVAL_SECONDS = 5.0


class JournalRecoveryJob:
    """Runs :meth:`JournalRecovery.recover_dead` every ``interval_seconds`` until stopped.

    Raises:
        ValueError: ``interval_seconds`` is not positive.
    """

    def __init__(
        self,
        recovery: JournalRecovery,
        *,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not interval_seconds > 0:
            raise ValueError("interval_seconds must be positive")
        self._recovery = recovery
        self._interval = float(interval_seconds)
        self._sleep = sleep

    async def recover_at_startup(self) -> None:
        """Start-up's round (before serving): never raises; the periodic rounds retry."""
        try:
            await self._recovery.recover_at_startup()
        except Exception as exc:
            log.warning("rotation.recovery_failed", at="startup", error_type=type(exc).__name__)

    async def run_once(self) -> None:
        """One periodic round; never raises."""
        try:
            await self._recovery.recover_dead()
        except Exception as exc:
            log.warning("rotation.recovery_failed", at="periodic", error_type=type(exc).__name__)

    async def run_forever(self) -> None:
        """A round every interval until cancelled."""
        while True:
            await self._sleep(self._interval)
            await self.run_once()
