"""The reconcile job: catch up with changes other replicas made in the shared database.

A reconcile reloads the GSM signals (a revocation received by another replica → stop serving),
the metadata pins (a rotation committed elsewhere → targeted refresh) and the break-glass
overrides (activated or ended elsewhere → installed or removed), names GSM's ``current`` alias
where a refresh found it missing (contract section 15; a refused move is retried once a refresh
has read the secret anew), follows GSM's ``current`` aliases (adopts a group GSM moved whole,
else reports its drift), and runs the cluster refresh
requests of other replicas this one has not run yet. It runs every
``interval_seconds`` (the fallback for lost notifications) and, on PostgreSQL, on each coalesced
cross-replica notification (:meth:`ReconcileJob.reconcile_now` is the notifier's callback). One
reconcile runs at a time, whoever asked for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from omni_secrets.service.aliases import CurrentAliasService
from omni_secrets.service.break_glass import BreakGlassService
from omni_secrets.service.gsm_events.signals import SecretSignals
from omni_secrets.service.refresh.service import ClusterRefreshService
from omni_secrets.service.serving.secrets import OmniSecretService

log = structlog.get_logger("omni_secrets.bootstrap")

DEFAULT_INTERVAL_SECONDS = 15.0


class ReconcileJob:
    """Reconciles on demand and periodically.

    Args:
        secrets: reloads the pins and refreshes types whose pin moved.
        break_glass: reloads the overrides.
        interval_seconds: the wait between two periodic reconciles.
        signals: reloads the GSM signals (revocations first: they must stop serving at once).
        refresh: runs the cluster refresh requests of other replicas this one has not run.
        aliases: names a missing ``current`` alias after the refreshes that read it.
        follow: follows GSM's ``current`` aliases last (adoption, drift; contract section 15).
    """

    def __init__(
        self,
        *,
        secrets: OmniSecretService,
        break_glass: BreakGlassService,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        signals: SecretSignals | None = None,
        refresh: ClusterRefreshService | None = None,
        aliases: CurrentAliasService | None = None,
        follow: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._follow = follow
        self._aliases = aliases
        self._signals = signals
        self._refresh = refresh
        self._secrets = secrets
        self._break_glass = break_glass
        self._interval = interval_seconds
        self._lock = asyncio.Lock()

    async def reconcile_now(self) -> None:
        """Catch up with the database once; never raises (failures are logged, retried later).

        Refresh requests of other replicas run beside the reconcile, outside its lock: a refresh
        waits on GSM and must neither wait for nor hold up the rest.
        """
        catch_up = self._refresh.catch_up() if self._refresh is not None else asyncio.sleep(0)
        await asyncio.gather(self._reconcile_locked(), catch_up)

    async def _reconcile_locked(self) -> None:
        async with self._lock:
            if self._signals is not None:
                try:
                    await self._signals.reload(self._secrets.cache)
                except Exception as exc:
                    log.warning("signals.reconcile_failed", error_type=type(exc).__name__)
            try:
                await self._secrets.reconcile()
            except Exception as exc:  # a reconcile failure must never end its caller's loop
                log.warning("reconcile.failed", error_type=type(exc).__name__)
            try:
                await self._break_glass.reload()
            except Exception as exc:
                log.warning("break_glass.reconcile_failed", error_type=type(exc).__name__)
            if self._aliases is not None:
                try:
                    await self._aliases.name_missing()
                except Exception as exc:
                    log.warning("alias.reconcile_failed", error_type=type(exc).__name__)
            if self._follow is not None:
                try:
                    await self._follow()
                except Exception as exc:
                    log.warning("rotation.follow_failed", error_type=type(exc).__name__)

    async def run_forever(self) -> None:
        """Reconcile every interval until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.reconcile_now()
