"""Start-up and shutdown: :func:`start_services` runs what ``build_services`` constructed.

Start-up order: alert dispatcher and auditor; metadata; stored GSM signals and break-glass
overrides (before hydration, so a revoked version is never hydrated and an override persisted
before a restart is served at once even while GSM is down); cache hydration and refresher; GSM's
``current`` alias named where hydration found it missing (contract section 15; never fatal); the
reconcile and break-glass expiry jobs; the cross-replica listener; the replica heartbeat and the
GSM event subscriber; one rotation-monitor round, then the monitor. Exit reverses it and finally
closes what ``build_services`` opened (engine, GSM channel, HTTP client, leader lease).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from omni_secrets.bootstrap.overrides import Overrides
from omni_secrets.bootstrap.services import Services, build_services
from omni_secrets.config import Settings

log = structlog.get_logger("omni_secrets.bootstrap")


@contextlib.asynccontextmanager
async def start_services(services: Services) -> AsyncIterator[Services]:
    """Start ``services``, yield them, then stop them and close their resources (module doc)."""
    async with contextlib.AsyncExitStack() as stack:
        for close in services.closers:
            stack.push_async_callback(close)
        services.alerts.start()
        stack.push_async_callback(services.alerts.stop)
        services.auditor.start()
        stack.push_async_callback(services.auditor.stop)
        stack.push_async_callback(services.secrets.stop)
        await _restore_state(services)
        await services.cache.hydrate()
        services.cache.start()
        stack.push_async_callback(services.cache.stop)
        await _name_current_aliases(services)
        tasks = [
            asyncio.create_task(services.reconcile.run_forever(), name="reconcile"),
            asyncio.create_task(
                services.break_glass_expiry.run_forever(), name="break-glass-expiry"
            ),
        ]
        stack.push_async_callback(_cancel, tasks)
        # After hydration: other replicas' changes from now on trigger an immediate reconcile.
        await services.notifier.start(services.reconcile.reconcile_now)
        stack.push_async_callback(services.notifier.stop)
        # Section 12: register (status shows peers from the start), then the GSM event feed.
        await services.replica_heartbeat.start()
        stack.push_async_callback(services.replica_heartbeat.stop)
        stack.push_async_callback(services.cluster_refresh.stop)
        if services.gsm_subscriber is not None:
            services.gsm_subscriber.start()
            stack.push_async_callback(services.gsm_subscriber.stop)
        # One round now, so the rotation gauges are right from the first scrape.
        await services.rotation_monitor.tick()
        services.rotation_monitor.start()
        stack.push_async_callback(services.rotation_monitor.stop)
        log.info(
            "service.started",
            environment=str(services.settings.environment),
            project=services.settings.gcp_project_id,
            cache_state=services.cache.state.value,
        )
        yield services


@contextlib.asynccontextmanager
async def run_services(
    settings: Settings, overrides: Overrides | None = None
) -> AsyncIterator[Services]:
    """:func:`~omni_secrets.bootstrap.services.build_services` then :func:`start_services`: what
    the app's lifespan runs."""
    async with start_services(build_services(settings, overrides)) as services:
        yield services


async def _restore_state(services: Services) -> None:
    """What the database holds from before: metadata, GSM signals, break-glass overrides."""
    await services.secrets.load_metadata()
    # Signals other replicas stored: a revoked version is never hydrated.
    try:
        await services.signals.reload(services.cache)
    except Exception as exc:  # database down: the reconcile loads them later
        log.error("signals.load_failed", error_type=type(exc).__name__)
    await services.break_glass.reload_at_startup()


async def _name_current_aliases(services: Services) -> None:
    """Name ``current`` where hydration read none; a failure is retried by the reconcile job."""
    try:
        await services.current_aliases.name_missing()
    except Exception as exc:  # never fatal: the reconcile job tries again
        log.warning("alias.startup_failed", error_type=type(exc).__name__)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
