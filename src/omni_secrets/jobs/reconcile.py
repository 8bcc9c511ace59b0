"""The reconcile job: catch up with changes other replicas made in the shared database.

A reconcile reloads the metadata pins (a rotation committed elsewhere → targeted refresh) and the
break-glass overrides (activated or ended elsewhere → installed or removed). It runs every
``interval_seconds`` (the fallback for lost notifications) and, on PostgreSQL, on each coalesced
cross-replica notification (:meth:`ReconcileJob.reconcile_now` is the notifier's callback). One
reconcile runs at a time, whoever asked for it.
"""

from __future__ import annotations

import asyncio

import structlog

from omni_secrets.service.breakglass import BreakGlassService
from omni_secrets.service.secrets import OmniSecretService

log = structlog.get_logger("omni_secrets.bootstrap")

DEFAULT_INTERVAL_SECONDS = 15.0


class ReconcileJob:
    """Reconciles on demand and periodically.

    Args:
        secrets: reloads the pins and refreshes types whose pin moved.
        break_glass: reloads the overrides.
        interval_seconds: the wait between two periodic reconciles.
    """

    def __init__(
        self,
        *,
        secrets: OmniSecretService,
        break_glass: BreakGlassService,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
    ) -> None:
        self._secrets = secrets
        self._break_glass = break_glass
        self._interval = interval_seconds
        self._lock = asyncio.Lock()

    async def reconcile_now(self) -> None:
        """Catch up with the database once; never raises (failures are logged, retried later)."""
        async with self._lock:
            try:
                await self._secrets.reconcile()
            except Exception as exc:  # a reconcile failure must never end its caller's loop
                log.warning("reconcile.failed", error_type=type(exc).__name__)
            try:
                await self._break_glass.reload()
            except Exception as exc:
                log.warning("break_glass.reconcile_failed", error_type=type(exc).__name__)

    async def run_forever(self) -> None:
        """Reconcile every interval until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.reconcile_now()
