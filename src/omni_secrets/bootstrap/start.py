"""Start-up and shutdown: :func:`start_services` runs what ``build_services`` constructed.

Start-up order: the offset from the database clock (section 18); alert dispatcher and auditor;
live state re-signed after an integrity key change; metadata; stored GSM signals and break-glass
overrides (before hydration, so a revoked version is never hydrated and an override persisted
before a restart is served at once even while GSM is down); the commit journal's recovery of what
this host's previous process left half-done (contract section 15; never fatal); cache hydration
and refresher; GSM's ``current`` alias named where hydration found it missing (contract section
15; never fatal); the reconcile, break-glass expiry and journal recovery jobs; the cross-replica
listener; the replica heartbeat and the GSM event subscriber; one rotation-monitor round, then
the monitor. Exit reverses it and finally closes what ``build_services`` opened (engine, GSM
channel, HTTP client, leader lease).

Exit is bounded whatever the dependencies do (contract section 18: SIGTERM done within 15 s):
every stop step shares :data:`STOP_BUDGET_SECONDS` and none waits more than
:data:`STEP_SECONDS` (the audit drain: at most 10 s, less when earlier steps used the budget);
a step past its bound is logged (``shutdown.step_timed_out``) and left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

from omni_secrets.bootstrap.overrides import Overrides
from omni_secrets.bootstrap.services import Services, build_services
from omni_secrets.config import Settings

log = structlog.get_logger("omni_secrets.bootstrap")

STOP_BUDGET_SECONDS = 13.0
"""All the stop steps together (uvicorn's own shutdown and the exit take the rest of 15 s)."""
STEP_SECONDS = 2.0
"""One stop step at most (the audit drain excepted)."""
AUDIT_DRAIN_SECONDS = 10.0
_AFTER_AUDIT_SECONDS = 1.5  # kept for the closers after the audit drain


class _StopBudget:
    """Bounds each stop step and all of them together; starts with the first step."""

    def __init__(self, total: float) -> None:
        self._total = total
        self._ends: float | None = None

    def remaining(self) -> float:
        now = asyncio.get_running_loop().time()
        if self._ends is None:
            self._ends = now + self._total
        return max(0.0, self._ends - now)

    async def step(self, name: str, stop: Callable[[], Awaitable[object]]) -> None:
        await self._bounded(name, stop(), min(STEP_SECONDS, self.remaining()))

    async def audit(self, services: Services) -> None:
        drain = max(0.0, min(AUDIT_DRAIN_SECONDS, self.remaining() - _AFTER_AUDIT_SECONDS))
        await self._bounded(
            "auditor", services.auditor.stop(drain_seconds=drain), drain + _AFTER_AUDIT_SECONDS
        )

    async def _bounded(self, name: str, stopping: Awaitable[object], seconds: float) -> None:
        task = asyncio.ensure_future(stopping)
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if not done:
            # Not awaited: a database call stalled on the network may take seconds more to
            # honour a cancellation.
            task.cancel()
            log.warning("shutdown.step_timed_out", step=name, seconds=round(seconds, 2))
            return
        if not task.cancelled() and task.exception() is not None:
            log.error("shutdown.step_failed", step=name, error_type=type(task.exception()).__name__)


@contextlib.asynccontextmanager
async def start_services(services: Services) -> AsyncIterator[Services]:
    """Start ``services``, yield them, then stop them and close their resources (module doc)."""
    budget = _StopBudget(STOP_BUDGET_SECONDS)
    # Section 18: the offset from the database clock first, so nothing restored, expired or
    # stamped below uses this host's clock (never fatal: the heartbeat measures it again).
    await services.replicas.sync_clock()
    async with contextlib.AsyncExitStack() as stack:
        for close in services.closers:
            stack.push_async_callback(budget.step, _name_of(close), close)
        services.alerts.start()
        stack.push_async_callback(budget.step, "alerts", services.alerts.stop)
        services.auditor.start()
        stack.push_async_callback(budget.audit, services)
        stack.push_async_callback(budget.step, "secrets", services.secrets.stop)
        rekeyed = await _restore_state(services)
        # Before hydration: a commit this host's previous process left half-done is resolved
        # to one generation first, so the pins hydrated are the ones GSM names.
        await services.journal_recovery.recover_at_startup()
        await services.cache.hydrate()
        services.cache.start()
        stack.push_async_callback(budget.step, "cache", services.cache.stop)
        await _name_current_aliases(services)
        tasks = [
            asyncio.create_task(services.reconcile.run_forever(), name="reconcile"),
            asyncio.create_task(
                services.break_glass_expiry.run_forever(), name="break-glass-expiry"
            ),
            asyncio.create_task(services.journal_recovery.run_forever(), name="journal-recovery"),
            asyncio.create_task(services.audit_anchor.run_forever(), name="audit-anchor"),
        ]
        if not rekeyed:  # the database was down: re-sign as soon as it answers (start-up only)
            tasks.append(asyncio.create_task(_rekey_later(services), name="integrity-rekey"))
        stack.push_async_callback(budget.step, "jobs", lambda: _cancel(tasks))
        # After hydration: other replicas' changes from now on trigger an immediate reconcile.
        await services.notifier.start(services.reconcile.reconcile_now)
        stack.push_async_callback(budget.step, "notifier", services.notifier.stop)
        # Section 12: register (status shows peers from the start), then the GSM event feed.
        await services.replica_heartbeat.start()
        stack.push_async_callback(budget.step, "replica", services.replica_heartbeat.stop)
        stack.push_async_callback(budget.step, "cluster_refresh", services.cluster_refresh.stop)
        if services.gsm_subscriber is not None:
            services.gsm_subscriber.start()
            stack.push_async_callback(budget.step, "gsm_events", services.gsm_subscriber.stop)
        # One round now, so the rotation gauges are right from the first scrape.
        await services.rotation_monitor.tick()
        services.rotation_monitor.start()
        stack.push_async_callback(budget.step, "rotation_monitor", services.rotation_monitor.stop)
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


async def _restore_state(services: Services) -> bool:
    """What the database holds from before: metadata, GSM signals, break-glass overrides.

    First, after an integrity key change, the live state signed by the previous key and still
    fresh is re-signed (contract section 17, ``service/rekey.py``); a failure is logged, never
    fatal, and retried by :func:`_rekey_later` (the rows stay refused until then). Returns
    whether the re-signing ran.
    """
    rekeyed = await _rekey(services)
    await services.secrets.load_metadata()
    # Signals other replicas stored: a revoked version is never hydrated.
    try:
        await services.signals.reload(services.cache)
    except Exception as exc:  # database down: the reconcile loads them later
        log.error("signals.load_failed", error_type=type(exc).__name__)
    await services.break_glass.reload_at_startup()
    return rekeyed


REKEY_RETRY_SECONDS = 5.0
REKEY_RETRY_FOR_SECONDS = 600.0


async def _rekey(services: Services) -> bool:
    try:
        rekeyed = await services.rekey.run()
    except Exception as exc:
        log.error("integrity.rekey_failed", error_type=type(exc).__name__)
        return False
    if rekeyed.count:
        log.warning(
            "integrity.rekeyed",
            pins=list(rekeyed.pins),
            overrides=list(rekeyed.overrides),
            previews=list(rekeyed.previews),
        )
    return True


async def _rekey_later(services: Services) -> None:
    """The start-up re-signing, retried while the database does not answer (10 minutes at
    most: afterwards a restart does it); then a reconcile serves what it re-signed."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + REKEY_RETRY_FOR_SECONDS
    while loop.time() < give_up:
        await asyncio.sleep(REKEY_RETRY_SECONDS)
        if await _rekey(services):
            await services.reconcile.reconcile_now()
            return


def _name_of(close: Callable[[], Awaitable[object]]) -> str:
    owner = getattr(close, "__self__", None)
    return type(owner).__name__ if owner is not None else getattr(close, "__name__", "closer")


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
