"""The composition root: the one place that builds concrete adapters and wires the service.

``run_services(settings, overrides=...)`` is an async context manager used by the app's lifespan
(and by tests and the benchmark). It builds, in order: metrics registry, database engine and
units of work, the GSM client, one shared HTTP client (ApeX, PagerDuty), the alert dispatcher,
the auditor, the secret service with its cache, the rotation service and the rotation monitor
(with its leader lock); then loads metadata, hydrates the cache (a GSM outage leaves it empty and
retrying, it does not fail startup), runs one rotation-monitor round and starts the background
jobs.
Everything is closed in reverse order. :class:`Overrides` swaps adapters for fakes in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from omni_secrets.adapters import apex as apex_adapter
from omni_secrets.adapters import gsm as gsm_adapter
from omni_secrets.adapters import notify, pagerduty
from omni_secrets.adapters.db import engine as db_engine
from omni_secrets.adapters.db import leader as db_leader
from omni_secrets.adapters.db import unit_of_work
from omni_secrets.adapters.retry import RetryPolicy
from omni_secrets.config import Settings
from omni_secrets.domain.breakglass import BreakGlassKeyPair, load_key_pair
from omni_secrets.domain.cache import Fetch, OmniSecretCache
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.changes import ChangeNotifier, Publish
from omni_secrets.domain.clock import Clock, SystemClock
from omni_secrets.domain.errors import BreakGlassKeyInvalid
from omni_secrets.domain.exchange import ApexGateway
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.domain.values import SecretValue
from omni_secrets.jobs.breakglass_expiry import DEFAULT_MAX_INTERVAL_SECONDS, BreakGlassExpiryJob
from omni_secrets.jobs.rotation_monitor import LeaderLock, RotationMonitor
from omni_secrets.observability.alerts import Alert, AlertDispatcher, AlertSink
from omni_secrets.observability.logging import Redactor
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.breakglass import BreakGlassService
from omni_secrets.service.cache_observer import CacheObserver
from omni_secrets.service.gsm_versions import GsmVersions
from omni_secrets.service.rotation import RotationService
from omni_secrets.service.secrets import OmniSecretService, ServiceIdentity
from omni_secrets.service.views import BreakGlassView

log = structlog.get_logger("omni_secrets.bootstrap")

AUDIT_ALERT = "audit_write_failures"
RECONCILE_INTERVAL_SECONDS = 15.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Overrides:
    """Adapters to use instead of the real ones (tests, ``dev``, benchmarks)."""

    clock: Clock | None = None
    secret_store: SecretStore | None = None
    uow_factory: UnitOfWorkFactory | None = None
    apex: ApexGateway | None = None
    alert_sinks: Sequence[AlertSink] | None = None
    # The PagerDuty sink's retry backoff sleep: tests record the delays instead of waiting.
    pagerduty_sleep: pagerduty.Sleep | None = None
    registry: CollectorRegistry | None = None
    redactor: Redactor | None = None
    reconcile_interval_seconds: float = RECONCILE_INTERVAL_SECONDS
    breakglass_expiry_interval_seconds: float = DEFAULT_MAX_INTERVAL_SECONDS
    leader_lock: LeaderLock | None = None


@dataclass(slots=True, kw_only=True)
class Services:
    """Everything the edges need, built once per process (or per test app)."""

    settings: Settings
    catalog: Catalog
    clock: Clock
    metrics: OmniMetrics
    redactor: Redactor
    uow_factory: UnitOfWorkFactory
    store: SecretStore
    alerts: AlertDispatcher
    auditor: Auditor
    apex: ApexGateway
    secrets: OmniSecretService
    break_glass: BreakGlassService
    rotation: RotationService
    rotation_monitor: RotationMonitor
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Cross-replica notifications (LISTEN/NOTIFY on PostgreSQL, a no-op otherwise).
    notifier: ChangeNotifier = field(default_factory=notify.LocalNotifier)
    # One reconcile at a time, whether the periodic loop or a notification asked for it.
    reconcile_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def cache(self) -> OmniSecretCache:
        return self.secrets.cache


def build_secret_store(
    settings: Settings, *, metrics: OmniMetrics | None = None, clock: Clock | None = None
) -> SecretStore:
    """The GSM client for ``settings`` (Google with ADC, or the insecure ``OMNI_GSM_ENDPOINT``).

    Used by the app and by CLI commands that read GSM (``db seed``). Close it with ``aclose()``.
    """

    def on_call(record: gsm_adapter.GsmCallRecord) -> None:
        if metrics is not None:
            metrics.gsm_request_duration.labels(record.method, record.code).observe(
                record.duration_seconds
            )

    return gsm_adapter.GsmSecretManagerClient(
        project_id=settings.gsm.project_id,
        endpoint=settings.gsm_endpoint,
        timeout_seconds=settings.gsm_timeout_seconds,
        retry=RetryPolicy(),
        on_call=on_call,
        clock=clock,
    )


def build_gsm_versions(settings: Settings) -> tuple[GsmVersions, Callable[[], Awaitable[None]]]:
    """The operator's GSM version tool for ``settings`` and the coroutine that closes it.

    Used by ``omni-secrets gsm versions``; the service never writes to GSM.
    """
    client = gsm_adapter.GsmSecretManagerClient(
        project_id=settings.gsm.project_id,
        endpoint=settings.gsm_endpoint,
        timeout_seconds=settings.gsm_timeout_seconds,
        retry=RetryPolicy(),
    )
    return GsmVersions(Catalog(settings.gsm_secret_prefix), client, client), client.aclose


def load_break_glass_key_pair(settings: Settings) -> BreakGlassKeyPair | None:
    """The break-glass key pair of ``settings``, or None when break-glass is not configured.

    Reads the file named by ``OMNI_BREAKGLASS_PRIVATE_KEY_FILE`` and checks that it matches
    ``OMNI_BREAKGLASS_PUBLIC_KEY``. ``serve`` calls this before listening, so a bad pair exits
    non-zero with one line and nothing is served.

    Raises:
        BreakGlassKeyInvalid: the file is missing or unreadable, a key is malformed, or the two
            halves do not belong together (the message never quotes the private key).
    """
    public_key = settings.breakglass_public_key
    if public_key is None:
        return None
    path = settings.breakglass_private_key_file
    if path is None:
        raise BreakGlassKeyInvalid(
            "OMNI_BREAKGLASS_PUBLIC_KEY is set but OMNI_BREAKGLASS_PRIVATE_KEY_FILE is not"
        )
    try:
        text = Path(path).read_text(encoding="ascii")
    except OSError as exc:
        raise BreakGlassKeyInvalid(
            f"cannot read OMNI_BREAKGLASS_PRIVATE_KEY_FILE={path!r}: {exc.strerror or 'error'}"
        ) from None
    except UnicodeDecodeError:
        # The decode error's text would quote bytes of the key: say only what is wrong.
        raise BreakGlassKeyInvalid(
            f"OMNI_BREAKGLASS_PRIVATE_KEY_FILE={path!r} is not a base64 text file"
        ) from None
    return load_key_pair(public_key, text)


@contextlib.asynccontextmanager
async def run_services(
    settings: Settings, overrides: Overrides | None = None
) -> AsyncIterator[Services]:
    """Build, start, yield and finally close every component (see the module docstring)."""
    over = overrides or Overrides()
    clock = over.clock or SystemClock()
    break_glass_keys = load_break_glass_key_pair(settings)
    catalog = Catalog(settings.gsm_secret_prefix)
    registry = over.registry or CollectorRegistry()
    metrics = OmniMetrics(registry, [t.value for t in catalog.types])
    redactor = over.redactor or Redactor()

    async with contextlib.AsyncExitStack() as stack:
        engine: AsyncEngine | None = None
        if over.uow_factory is None:
            engine = db_engine.create_engine(settings.database_url)
            stack.push_async_callback(engine.dispose)
            uow_factory = unit_of_work.sql_unit_of_work_factory(engine, clock=clock)
        else:
            uow_factory = over.uow_factory

        # --- cross-replica notifications ------------------------------------------------------
        notifier: ChangeNotifier = notify.LocalNotifier()
        if engine is not None and not db_engine.is_sqlite(settings.database_url):
            notifier = notify.PostgresNotifier(
                engine, notify.postgres_conninfo(db_engine.async_url(settings.database_url))
            )

        store = over.secret_store or build_secret_store(settings, metrics=metrics, clock=clock)
        closer = getattr(store, "aclose", None)
        if closer is not None:
            stack.push_async_callback(closer)

        http = httpx.AsyncClient(timeout=10.0)
        stack.push_async_callback(http.aclose)

        sinks: list[AlertSink] = list(over.alert_sinks or ())
        if over.alert_sinks is None and settings.pagerduty_routing_key is not None:
            sinks.append(
                pagerduty.PagerDutySink(
                    routing_key=settings.pagerduty_routing_key.get_secret_value(),
                    events_url=str(settings.pagerduty_events_url),
                    http=http,
                    source=f"omni-secrets/{settings.environment}/{settings.gcp_project_id}",
                    sleep=over.pagerduty_sleep or asyncio.sleep,
                )
            )
        alerts = AlertDispatcher(
            str(settings.environment),
            sinks,
            clock,
            on_outcome=lambda alert, action, result: metrics.alerts_sent.labels(
                alert, action, result
            ).inc(),
        )
        alerts.start()
        stack.push_async_callback(alerts.stop)

        def audit_failed() -> None:
            metrics.audit_write_failures.inc()
            alerts.trigger(
                Alert(
                    name=AUDIT_ALERT,
                    subject="audit",
                    severity="critical",
                    summary="omni-secrets: audit events cannot be written",
                    details={"environment": str(settings.environment)},
                )
            )

        auditor = Auditor(
            uow_factory=uow_factory,
            on_write_failure=audit_failed,
            on_write_success=lambda: alerts.resolve(AUDIT_ALERT, "audit"),
        )
        auditor.start()
        stack.push_async_callback(auditor.stop)

        apex = over.apex or apex_adapter.ApexOmniClient(
            str(settings.apex_base_url).rstrip("/"), http, clock
        )
        observer = CacheObserver(
            catalog=catalog,
            metrics=metrics,
            alerts=alerts,
            auditor=auditor,
            clock=clock,
            alert_after_failures=settings.alert_consecutive_failures,
        )

        def build_cache(fetch: Fetch) -> OmniSecretCache:
            return OmniSecretCache(
                catalog=catalog,
                fetch=fetch,
                ttl_seconds=settings.cache_ttl_seconds,
                max_stale_seconds=settings.cache_max_stale_seconds,
                clock=clock,
                listener=observer,
            )

        def served(value: SecretValue) -> None:
            redactor.register(value.reveal())

        # The secret service is built before the break-glass service (which needs its cache):
        # status reaches the latter through this late-bound view.
        break_glass_ref: list[BreakGlassService] = []

        def break_glass_view(secret_type: SecretType) -> BreakGlassView:
            return (
                break_glass_ref[0].view(secret_type) if break_glass_ref else BreakGlassView(False)
            )

        secrets = OmniSecretService(
            identity=ServiceIdentity(
                environment=str(settings.environment),
                gcp_project_id=settings.gcp_project_id or "",
                rotation_warning_days=settings.rotation_warning_days,
            ),
            catalog=catalog,
            store=store,
            uow_factory=uow_factory,
            auditor=auditor,
            apex=apex,
            clock=clock,
            cache_factory=build_cache,
            on_read=lambda t, source, ok: metrics.reads.labels(
                t, source, "success" if ok else "failure"
            ).inc(),
            on_value=served,
            break_glass_view=break_glass_view,
        )
        stack.push_async_callback(secrets.stop)
        metrics.track_cache_age(secrets.cache_age_seconds)

        # --- rotation: preview/commit/cancel and the monitor ------------------------------
        leader_lock: LeaderLock
        if over.leader_lock is not None:
            leader_lock = over.leader_lock
        elif engine is not None:
            leader_lock = db_leader.leader_lock_for(engine)
            stack.push_async_callback(leader_lock.release)
        else:
            leader_lock = db_leader.LocalLeaderLock()
        rotation_monitor = RotationMonitor(
            catalog=catalog,
            uow_factory=uow_factory,
            auditor=auditor,
            alerts=alerts,
            metrics=metrics,
            clock=clock,
            leader_lock=leader_lock,
            warning_days=settings.rotation_warning_days,
            interval_seconds=settings.rotation_check_interval_seconds,
        )
        rotation = RotationService(
            catalog=catalog,
            store=store,
            uow_factory=uow_factory,
            auditor=auditor,
            apex=apex,
            secrets=secrets,
            alerts=alerts,
            metrics=metrics,
            clock=clock,
            period_days=settings.rotation_period_days,
            on_value=served,
            on_commit=lambda group: rotation_monitor.wake(),
            on_change=notifier.publish,
        )

        services = Services(
            settings=settings,
            catalog=catalog,
            clock=clock,
            metrics=metrics,
            redactor=redactor,
            uow_factory=uow_factory,
            store=store,
            alerts=alerts,
            auditor=auditor,
            apex=apex,
            secrets=secrets,
            break_glass=_build_break_glass(
                break_glass_keys,
                secrets,
                uow_factory,
                auditor,
                alerts,
                metrics,
                clock,
                served,
                notifier.publish,
            ),
            rotation=rotation,
            rotation_monitor=rotation_monitor,
            notifier=notifier,
        )
        break_glass_ref.append(services.break_glass)

        await secrets.load_metadata()
        # Before hydration: an override persisted before a restart is served at once, even
        # while GSM (the reason for break-glass) is still down.
        await services.break_glass.reload_at_startup()
        await secrets.cache.hydrate()
        secrets.cache.start()
        stack.push_async_callback(secrets.cache.stop)
        reconcile = asyncio.create_task(
            _reconcile_forever(services, over.reconcile_interval_seconds), name="reconcile"
        )
        services.tasks.append(reconcile)
        expiry = BreakGlassExpiryJob(
            services.break_glass, max_interval_seconds=over.breakglass_expiry_interval_seconds
        )
        services.tasks.append(asyncio.create_task(expiry.run_forever(), name="break-glass-expiry"))
        stack.push_async_callback(_cancel, services.tasks)
        # After hydration: other replicas' changes from now on trigger an immediate reconcile.
        await notifier.start(lambda: reconcile_now(services))
        stack.push_async_callback(notifier.stop)
        # One round now, so the rotation gauges are right from the first scrape.
        await rotation_monitor.tick()
        rotation_monitor.start()
        stack.push_async_callback(rotation_monitor.stop)
        log.info(
            "service.started",
            environment=str(settings.environment),
            project=settings.gcp_project_id,
            cache_state=secrets.cache.state.value,
        )
        yield services


async def reconcile_now(services: Services) -> None:
    """Catch up with the database: new metadata pins, and overrides added or ended elsewhere.

    Run by the periodic loop and on each (coalesced) cross-replica notification; one at a time.
    Never raises: each half's failure is logged and the next reconcile retries.
    """
    async with services.reconcile_lock:
        try:
            await services.secrets.reconcile()
        except Exception as exc:  # a reconcile failure must never end its caller's loop
            log.warning("reconcile.failed", error_type=type(exc).__name__)
        try:
            await services.break_glass.reload()
        except Exception as exc:
            log.warning("break_glass.reconcile_failed", error_type=type(exc).__name__)


async def _reconcile_forever(services: Services, interval: float) -> None:
    """Periodic reconcile: the fallback for changes whose notification was missed."""
    while True:
        await asyncio.sleep(interval)
        await reconcile_now(services)


def _build_break_glass(
    key_pair: BreakGlassKeyPair | None,
    secrets: OmniSecretService,
    uow_factory: UnitOfWorkFactory,
    auditor: Auditor,
    alerts: AlertDispatcher,
    metrics: OmniMetrics,
    clock: Clock,
    on_value: Callable[[SecretValue], None],
    on_change: Publish,
) -> BreakGlassService:
    return BreakGlassService(
        key_pair=key_pair,
        uow_factory=uow_factory,
        auditor=auditor,
        cache=secrets.cache,
        alerts=alerts,
        clock=clock,
        on_read=lambda t, source, ok: metrics.reads.labels(
            t, source, "success" if ok else "failure"
        ).inc(),
        on_failure=lambda t, reason: metrics.record_failure(t, "break_glass", reason),
        on_value=on_value,
        on_change=on_change,
    )


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
