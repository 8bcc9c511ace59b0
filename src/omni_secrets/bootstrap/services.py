"""The composition root: the one place that builds concrete adapters and wires the service.

Three steps, each its own function:

- :func:`build_services` constructs everything (metrics registry, database engine and units of
  work, the GSM client, one shared HTTP client for ApeX and PagerDuty, the alert dispatcher, the
  auditor, the pinned-version fetch, the cache, the secret, break-glass and rotation services and
  the jobs) and returns them as :class:`Services`. No I/O besides reading the break-glass and
  integrity key files, no task, no connection: cheap, and what unit-test rigs call with fakes.
- :func:`start_services` is the async context manager that runs them: loads metadata, reinstalls
  stored overrides, hydrates the cache (a GSM outage leaves it empty and retrying, it does not fail
  startup), starts the background jobs and the cross-replica listener, runs one rotation-monitor
  round; on exit it stops all of that in reverse order and closes what ``build_services`` opened.
- :func:`run_services` is both in one ``async with``, used by the app's lifespan, tests and the
  benchmark.

:class:`Overrides` swaps adapters for fakes in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx
import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from omni_secrets.adapters import apex as apex_adapter
from omni_secrets.adapters import gsm as gsm_adapter
from omni_secrets.adapters import integrity_keys, notify, pagerduty
from omni_secrets.adapters.db import cluster as db_cluster
from omni_secrets.adapters.db import engine as db_engine
from omni_secrets.adapters.db import leader as db_leader
from omni_secrets.adapters.db import unit_of_work
from omni_secrets.adapters.local_cluster import LocalClusterStore
from omni_secrets.adapters.retry import RetryPolicy
from omni_secrets.config import Settings
from omni_secrets.domain.break_glass import BreakGlassKeyPair, load_key_pair
from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.changes import ChangeNotifier
from omni_secrets.domain.clock import Clock, Sleep, SystemClock
from omni_secrets.domain.cluster import RefreshLedger, ReplicaRegistry, SignalStore
from omni_secrets.domain.errors import BreakGlassKeyInvalid
from omni_secrets.domain.exchange import ApexGateway
from omni_secrets.domain.gsm_events import RawGsmMessage
from omni_secrets.domain.observations import ObserverFanOut, ServiceObserver
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.jobs.break_glass_expiry import DEFAULT_MAX_INTERVAL_SECONDS, BreakGlassExpiryJob
from omni_secrets.jobs.reconcile import DEFAULT_INTERVAL_SECONDS as RECONCILE_INTERVAL_SECONDS
from omni_secrets.jobs.reconcile import ReconcileJob
from omni_secrets.jobs.replica_heartbeat import DEFAULT_INTERVAL_SECONDS as HEARTBEAT_SECONDS
from omni_secrets.jobs.replica_heartbeat import ReplicaHeartbeatJob
from omni_secrets.observability import alert_catalog
from omni_secrets.observability.alert_catalog import AUDIT_ALERT
from omni_secrets.observability.alerts import AlertDispatcher, AlertSink
from omni_secrets.observability.cache_observer import CacheObserver
from omni_secrets.observability.logging import Redactor
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.observability.service_observer import MetricsAndRedaction
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.break_glass import (
    BreakGlassService,
    break_glass_reactions,
    build_break_glass,
)
from omni_secrets.service.gsm_events.build import (
    GsmEventFeed,
    build_gsm_events,
    build_signal_table,
    build_signals,
)
from omni_secrets.service.gsm_events.reactions import gsm_events_reactions
from omni_secrets.service.gsm_events.service import GsmEventService
from omni_secrets.service.gsm_events.signals import SecretSignals
from omni_secrets.service.gsm_versions import GsmVersions
from omni_secrets.service.integrity import (
    IntegrityViolation,
    IntegrityViolations,
)
from omni_secrets.service.messagebus import Dispatcher
from omni_secrets.service.pinned_versions import PinnedVersions
from omni_secrets.service.refresh.build import build_refresh
from omni_secrets.service.refresh.reactions import refresh_reactions
from omni_secrets.service.refresh.service import ClusterRefreshService
from omni_secrets.service.replicas import ReplicaService, new_replica_id
from omni_secrets.service.rotation.build import build_rotation
from omni_secrets.service.rotation.monitor import LeaderLock, RotationMonitor
from omni_secrets.service.rotation.service import RotationService
from omni_secrets.service.secrets import OmniSecretService, ServiceIdentity
from omni_secrets.service.views import ReplicaView

if TYPE_CHECKING:
    # Annotations only: google-cloud-pubsub (with its OpenTelemetry and IAM types, about 40 ms
    # and 5 MB) loads in _gsm_subscriber, i.e. only when OMNI_PUBSUB_SUBSCRIPTION is set.
    from omni_secrets.adapters import pubsub as pubsub_adapter

log = structlog.get_logger("omni_secrets.bootstrap")


class ClusterStore(ReplicaRegistry, RefreshLedger, SignalStore, Protocol):
    """The three replica ports (contract section 12), as one adapter implements them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Overrides:
    """Adapters to use instead of the real ones (tests, ``dev``, benchmarks)."""

    clock: Clock | None = None
    secret_store: SecretStore | None = None
    uow_factory: UnitOfWorkFactory | None = None
    apex: ApexGateway | None = None
    alert_sinks: Sequence[AlertSink] | None = None
    # The PagerDuty sink's retry backoff sleep: tests record the delays instead of waiting.
    pagerduty_sleep: Sleep | None = None
    registry: CollectorRegistry | None = None
    redactor: Redactor | None = None
    reconcile_interval_seconds: float = RECONCILE_INTERVAL_SECONDS
    break_glass_expiry_interval_seconds: float = DEFAULT_MAX_INTERVAL_SECONDS
    leader_lock: LeaderLock | None = None
    notifier: ChangeNotifier | None = None
    # Observers of the services' events besides the metrics + redaction one (tests record).
    observers: Sequence[ServiceObserver] = ()
    # The replica registry, refresh ledger and signal store (one object implements all three);
    # several apps in one test can share one to play several replicas.
    cluster_store: ClusterStore | None = None
    replica_id: str | None = None
    heartbeat_interval_seconds: float = HEARTBEAT_SECONDS
    # Builds the Pub/Sub subscriber (tests stand in for it or shorten its probe and backoff).
    pubsub_subscriber_factory: Callable[..., pubsub_adapter.PubSubEventSubscriber] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """Everything the edges need, built once per process (or per test app) by build_services."""

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
    reconcile: ReconcileJob
    break_glass_expiry: BreakGlassExpiryJob
    # Cross-replica notifications (LISTEN/NOTIFY on PostgreSQL, a no-op otherwise).
    notifier: ChangeNotifier
    # Contract section 12: every replica, every change.
    replicas: ReplicaService
    replica_heartbeat: ReplicaHeartbeatJob
    cluster_refresh: ClusterRefreshService
    signals: SecretSignals
    # None when OMNI_PUBSUB_SUBSCRIPTION is unset.
    gsm_events: GsmEventService | None
    gsm_subscriber: pubsub_adapter.PubSubEventSubscriber | None
    # What start_services closes last, in reverse order (engine, GSM channel, HTTP client, ...).
    closers: tuple[Callable[[], Awaitable[object]], ...] = ()

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


def build_services(settings: Settings, overrides: Overrides | None = None) -> Services:
    """Construct every component for ``settings`` (nothing started, nothing connected).

    Args:
        settings: the validated configuration.
        overrides: adapters to use instead of the real ones.

    Raises:
        BreakGlassKeyInvalid: break-glass is configured with a bad key pair.
    """
    over = overrides or Overrides()
    clock = over.clock or SystemClock()
    break_glass_keys = load_break_glass_key_pair(settings)
    keyring = integrity_keys.load_keyring(settings.integrity_key_files)
    if keyring is None:
        # Only possible outside production (the guard refuses it there): say what that means.
        log.warning(
            "integrity.disabled",
            reason="OMNI_INTEGRITY_KEY_FILE is not set",
            effect="audit rows are unkeyed; override and pin MACs are neither written nor checked",
        )
    catalog = Catalog(settings.gsm_secret_prefix)
    registry = over.registry or CollectorRegistry()
    metrics = OmniMetrics(registry, [t.value for t in catalog.types])
    redactor = over.redactor or Redactor()
    closers: list[Callable[[], Awaitable[object]]] = []

    engine: AsyncEngine | None = None
    if over.uow_factory is None:
        engine = db_engine.create_engine(settings.database_url)
        closers.append(engine.dispose)
        uow_factory = unit_of_work.sql_unit_of_work_factory(engine, clock=clock, keyring=keyring)
    else:
        uow_factory = over.uow_factory

    # Cross-replica notifications: LISTEN/NOTIFY on PostgreSQL, nothing on SQLite or fakes.
    notifier: ChangeNotifier = over.notifier or notify.LocalNotifier()
    if (
        over.notifier is None
        and engine is not None
        and not db_engine.is_sqlite(settings.database_url)
    ):
        notifier = notify.PostgresNotifier(
            engine, notify.postgres_conninfo(db_engine.async_url(settings.database_url))
        )

    store = over.secret_store or build_secret_store(settings, metrics=metrics, clock=clock)
    closer = getattr(store, "aclose", None)
    if closer is not None:
        closers.append(closer)

    http = httpx.AsyncClient(timeout=10.0)
    closers.append(http.aclose)

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

    def audit_failed() -> None:
        metrics.audit_write_failures.inc()
        alerts.trigger(alert_catalog.audit_write_failures(str(settings.environment)))

    auditor = Auditor(
        uow_factory=uow_factory,
        on_write_failure=audit_failed,
        on_write_success=lambda: alerts.resolve(AUDIT_ALERT, "audit"),
        on_batch=metrics.audit_batch_size.observe,
    )
    metrics.audit_queue_depth.set_function(lambda: auditor.pending)

    def integrity_violated(violation: IntegrityViolation) -> None:
        metrics.integrity_violations.labels(violation.table).inc()
        alerts.trigger(
            alert_catalog.integrity_violation(
                str(settings.environment),
                table=violation.table,
                row=violation.row,
                problem=violation.problem,
                secret_type=violation.secret_type,
            )
        )

    integrity = IntegrityViolations(integrity_violated)

    apex = over.apex or apex_adapter.ApexOmniClient(
        str(settings.apex_base_url).rstrip("/"), http, clock
    )

    # Every service reports reads, failures and values it sees through this one observer.
    observer: ServiceObserver = MetricsAndRedaction(metrics, redactor)
    if over.observers:
        observer = ObserverFanOut([observer, *over.observers])

    # Section 12: the replica registry, the refresh ledger and the GSM signals share one store.
    cluster_store: ClusterStore = over.cluster_store or (
        db_cluster.SqlClusterStore(engine) if engine is not None else LocalClusterStore()
    )
    replicas = ReplicaService(
        registry=cluster_store,
        clock=clock,
        replica_id=over.replica_id or new_replica_id(),
        host=socket.gethostname(),
        on_peers=metrics.replica_peers.set,
    )

    # Services emit events; the features' reactions (log lines, metrics, alerts, audit rows,
    # peer announcements) need only what exists by now, so the dispatcher comes first.
    bus = Dispatcher(
        [
            break_glass_reactions(
                observer=observer,
                alerts=alerts,
                auditor=auditor,
                publish=notifier.publish,
                integrity=integrity,
            ),
            refresh_reactions(auditor=auditor, publish=notifier.publish),
            gsm_events_reactions(
                alerts=alerts,
                auditor=auditor,
                metrics=metrics,
                publish=notifier.publish,
                environment=str(settings.environment),
            ),
        ]
    )

    # The pinned fetch asks the signal table first; the signals judge revocations by the pins.
    signal_table = build_signal_table(store=store, signal_store=cluster_store, bus=bus)
    # The cache is built around the pinned fetch, before any service: break-glass and the
    # secret service both receive it, so neither has to be late-bound to the other.
    pins = PinnedVersions(
        catalog=catalog,
        store=store,
        uow_factory=uow_factory,
        observer=observer,
        check_revocation=signal_table.check,
        integrity=integrity,
    )
    signals = build_signals(
        catalog=catalog, table=signal_table, signal_store=cluster_store, pins=pins, bus=bus
    )
    cache = OmniSecretCache(
        catalog=catalog,
        fetch=pins.fetch,
        ttl_seconds=settings.cache_ttl_seconds,
        max_stale_seconds=settings.cache_max_stale_seconds,
        clock=clock,
        listener=CacheObserver(
            catalog=catalog,
            metrics=metrics,
            alerts=alerts,
            auditor=auditor,
            clock=clock,
            alert_after_failures=settings.alert_consecutive_failures,
        ),
    )
    break_glass = build_break_glass(
        key_pair=break_glass_keys,
        uow_factory=uow_factory,
        auditor=auditor,
        cache=cache,
        clock=clock,
        bus=bus,
    )
    # Status shows the event feed; the event service and the subscriber update it later.
    event_feed = GsmEventFeed(settings.pubsub_subscription)
    secrets = OmniSecretService(
        identity=ServiceIdentity(
            environment=str(settings.environment),
            gcp_project_id=settings.gcp_project_id or "",
            rotation_warning_days=settings.rotation_warning_days,
        ),
        catalog=catalog,
        pins=pins,
        cache=cache,
        uow_factory=uow_factory,
        auditor=auditor,
        apex=apex,
        clock=clock,
        break_glass_view=break_glass.view,
        signals=signals,
        replica_view=lambda: ReplicaView(id=replicas.replica_id, peers=replicas.peers),
        events_view=event_feed.view,
    )
    metrics.track_cache_age(secrets.cache_age_seconds)
    cluster_refresh = build_refresh(
        catalog=catalog,
        cache=cache,
        ledger=cluster_store,
        replicas=replicas,
        clock=clock,
        bus=bus,
    )
    gsm_events = build_gsm_events(
        feed=event_feed,
        projects=settings.event_projects,
        catalog=catalog,
        store=store,
        secrets=secrets,
        signals=signals,
        refresh=cluster_refresh,
        clock=clock,
        bus=bus,
    )
    gsm_subscriber = _gsm_subscriber(gsm_events, metrics, over) if gsm_events is not None else None

    leader_lock: LeaderLock
    if over.leader_lock is not None:
        leader_lock = over.leader_lock
    elif engine is not None:
        leader_lock = db_leader.leader_lock_for(engine)
        closers.append(leader_lock.release)
    else:
        leader_lock = db_leader.LocalLeaderLock()
    rotation = build_rotation(
        catalog=catalog,
        store=store,
        uow_factory=uow_factory,
        auditor=auditor,
        apex=apex,
        secrets=secrets,
        alerts=alerts,
        metrics=metrics,
        observer=observer,
        clock=clock,
        leader_lock=leader_lock,
        publish=notifier.publish,
        bus=bus,
        period_days=settings.rotation_period_days,
        warning_days=settings.rotation_warning_days,
        check_interval_seconds=settings.rotation_check_interval_seconds,
    )
    bus.add(rotation.reactions)
    return Services(
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
        break_glass=break_glass,
        rotation=rotation.service,
        rotation_monitor=rotation.monitor,
        reconcile=ReconcileJob(
            secrets=secrets,
            break_glass=break_glass,
            interval_seconds=over.reconcile_interval_seconds,
            signals=signals,
            refresh=cluster_refresh,
        ),
        break_glass_expiry=BreakGlassExpiryJob(
            break_glass, max_interval_seconds=over.break_glass_expiry_interval_seconds
        ),
        notifier=notifier,
        replicas=replicas,
        replica_heartbeat=ReplicaHeartbeatJob(
            replicas, interval_seconds=over.heartbeat_interval_seconds
        ),
        cluster_refresh=cluster_refresh,
        signals=signals,
        gsm_events=gsm_events,
        gsm_subscriber=gsm_subscriber,
        closers=tuple(closers),
    )


def _gsm_subscriber(
    events: GsmEventService, metrics: OmniMetrics, over: Overrides
) -> pubsub_adapter.PubSubEventSubscriber:
    """The Pub/Sub subscriber feeding ``events`` (built, not started: no connection yet)."""
    connected_gauge = metrics.gsm_events_connected.labels(events.subscription)
    connected_gauge.set(0)

    def on_connected(connected: bool) -> None:
        events.connected = connected
        connected_gauge.set(1 if connected else 0)

    async def handle(message: RawGsmMessage) -> bool:
        return (await events.handle(message)).ack

    factory = over.pubsub_subscriber_factory
    if factory is None:
        from omni_secrets.adapters.pubsub import PubSubEventSubscriber

        factory = PubSubEventSubscriber
    return factory(subscription=events.subscription, handler=handle, on_connected=on_connected)


@contextlib.asynccontextmanager
async def start_services(services: Services) -> AsyncIterator[Services]:
    """Start ``services``, yield them, then stop them and close their resources.

    Start-up order: alert dispatcher and auditor; metadata; stored break-glass overrides (before
    hydration, so an override persisted before a restart is served at once even while GSM is
    down); cache hydration and refresher; the reconcile and break-glass expiry jobs; the
    cross-replica listener; the replica heartbeat and the GSM event subscriber; one
    rotation-monitor round, then the monitor. Exit reverses it and
    finally closes what :func:`build_services` opened (engine, GSM channel, HTTP client, leader).
    """
    async with contextlib.AsyncExitStack() as stack:
        for close in services.closers:
            stack.push_async_callback(close)
        services.alerts.start()
        stack.push_async_callback(services.alerts.stop)
        services.auditor.start()
        stack.push_async_callback(services.auditor.stop)
        stack.push_async_callback(services.secrets.stop)

        await services.secrets.load_metadata()
        # Signals other replicas stored: a revoked version is never hydrated.
        try:
            await services.signals.reload(services.cache)
        except Exception as exc:  # database down: the reconcile loads them later
            log.error("signals.load_failed", error_type=type(exc).__name__)
        await services.break_glass.reload_at_startup()
        await services.cache.hydrate()
        services.cache.start()
        stack.push_async_callback(services.cache.stop)
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
    """:func:`build_services` then :func:`start_services`: what the app's lifespan runs."""
    async with start_services(build_services(settings, overrides)) as services:
        yield services


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
