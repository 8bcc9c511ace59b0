"""The composition root: :func:`build_services` builds the platform, then one builder per feature.

Construction only: no connection, no task (``bootstrap/start.py`` starts and stops). The order is
the dependency order, so nothing is late-bound:

1. the break-glass key pair (a bad pair refuses before anything is opened);
2. the platform (``bootstrap/platform.py``): clock, catalog, metrics, database, GSM, alerts,
   auditor, integrity reporting, ApeX, the observer, the replica registry;
3. the one :class:`~omni_secrets.service.messagebus.Dispatcher`, with every feature's reaction
   table (rotation's joins once its monitor exists: its commit reaction wakes the monitor);
4. the serving path: the GSM signal table, the pinned fetch and the cache around it, the signals;
5. break-glass (serves overrides from the cache), then the secret service (shows break-glass);
6. the cluster refresh, the GSM events and their subscriber, rotation, and the jobs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omni_secrets.bootstrap.gsm import build_gsm_subscriber
from omni_secrets.bootstrap.keys import load_break_glass_key_pair
from omni_secrets.bootstrap.overrides import Overrides
from omni_secrets.bootstrap.platform import Platform, build_platform
from omni_secrets.config import Settings
from omni_secrets.domain.audit_anchor import anchor_secret_id
from omni_secrets.domain.break_glass import BreakGlassKeyPair
from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.changes import ChangeNotifier
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.exchange import ApexGateway
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.rotation.drift import DriftBoard
from omni_secrets.domain.rotation.journal import OWNER_SILENT_SECONDS
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.jobs.audit_anchor import AuditAnchorJob
from omni_secrets.jobs.break_glass_expiry import BreakGlassExpiryJob
from omni_secrets.jobs.journal_recovery import JournalRecoveryJob
from omni_secrets.jobs.reconcile import ReconcileJob
from omni_secrets.jobs.replica_heartbeat import ReplicaHeartbeatJob
from omni_secrets.observability.alerts import AlertDispatcher
from omni_secrets.observability.cache_observer import CacheObserver
from omni_secrets.observability.logging import Redactor
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.service.aliases import CurrentAliasService, build_current_aliases
from omni_secrets.service.aliases.reactions import alias_reactions
from omni_secrets.service.audit_anchor import AuditAnchorWriter, anchor_reactions
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
from omni_secrets.service.messagebus import Dispatcher
from omni_secrets.service.refresh.build import build_refresh
from omni_secrets.service.refresh.reactions import refresh_reactions
from omni_secrets.service.refresh.service import ClusterRefreshService
from omni_secrets.service.rekey import LiveStateRekey
from omni_secrets.service.replicas import ReplicaService
from omni_secrets.service.rotation.adoption import AliasFollower
from omni_secrets.service.rotation.build import (
    RotationFeature,
    build_alias_follower,
    build_rotation,
)
from omni_secrets.service.rotation.journal import JournalOwner
from omni_secrets.service.rotation.monitor import RotationMonitor
from omni_secrets.service.rotation.service import RotationService
from omni_secrets.service.serving.build import build_cache, build_secret_service
from omni_secrets.service.serving.secrets import OmniSecretService, ServiceIdentity
from omni_secrets.service.views import ReplicaView

if TYPE_CHECKING:
    from omni_secrets.adapters import pubsub as pubsub_adapter


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
    # Contract section 15: commits a dead replica left half-done (start-up and every 5 s).
    journal_recovery: JournalRecoveryJob
    break_glass_expiry: BreakGlassExpiryJob
    # Cross-replica notifications (LISTEN/NOTIFY on PostgreSQL, a no-op otherwise).
    notifier: ChangeNotifier
    # Contract section 12: every replica, every change.
    replicas: ReplicaService
    replica_heartbeat: ReplicaHeartbeatJob
    cluster_refresh: ClusterRefreshService
    signals: SecretSignals
    # Contract section 15: names GSM's `current` alias where it is missing (start-up, reconcile).
    current_aliases: CurrentAliasService
    # Contract section 15: adopts groups GSM moved whole, reports drift (after each reconcile).
    alias_follower: AliasFollower
    # None when OMNI_PUBSUB_SUBSCRIPTION is unset.
    gsm_events: GsmEventService | None
    gsm_subscriber: pubsub_adapter.PubSubEventSubscriber | None
    # Contract section 17: re-signs live state at start-up after an integrity key change, and
    # anchors the audit chain head in GSM.
    rekey: LiveStateRekey
    audit_anchor: AuditAnchorJob
    # What start_services closes last, in reverse order (engine, GSM channel, HTTP client, ...).
    closers: tuple[Callable[[], Awaitable[object]], ...] = ()

    @property
    def cache(self) -> OmniSecretCache:
        return self.secrets.cache


@dataclass(frozen=True, slots=True)
class _Serving:
    signals: SecretSignals
    break_glass: BreakGlassService
    secrets: OmniSecretService
    current_aliases: CurrentAliasService
    drift: DriftBoard


def build_services(settings: Settings, overrides: Overrides | None = None) -> Services:
    """Construct every component for ``settings`` (nothing started, nothing connected).

    Args:
        settings: the validated configuration.
        overrides: adapters to use instead of the real ones.

    Raises:
        BreakGlassKeyInvalid: break-glass is configured with a bad key pair.
    """
    over = overrides or Overrides()
    break_glass_keys = load_break_glass_key_pair(settings)
    base = build_platform(settings, over)
    bus = _dispatcher(base)
    # Status shows the event feed; the event service and the subscriber update it later.
    feed = GsmEventFeed(settings.pubsub_subscription)
    serving = _serving(base, bus, break_glass_keys, feed)
    follower = build_alias_follower(
        catalog=base.catalog,
        store=base.store,
        pins=serving.secrets.pins,
        uow_factory=base.uow_factory,
        auditor=base.auditor,
        apex=base.apex,
        bus=bus,
        clock=base.clock,
        board=serving.drift,
        period_days=settings.rotation_period_days,
        keyring=base.keyring,
    )
    refresh = build_refresh(
        catalog=base.catalog,
        cache=serving.secrets.cache,
        ledger=base.cluster_store,
        replicas=base.replicas,
        clock=base.clock,
        bus=bus,
    )
    gsm_events = build_gsm_events(
        feed=feed,
        projects=settings.event_projects,
        catalog=base.catalog,
        store=base.store,
        secrets=serving.secrets,
        signals=serving.signals,
        refresh=refresh,
        clock=base.clock,
        bus=bus,
        follow=follower.follow,
        uow_factory=base.uow_factory,
    )
    rotation = _rotation(base, bus, serving.secrets)
    bus.add(rotation.reactions)
    anchor = _audit_anchor(base, over)
    bus.add(anchor_reactions(anchor.poke))
    return _assemble(base, over, serving, refresh, gsm_events, rotation, follower, anchor)


def _audit_anchor(base: Platform, over: Overrides) -> AuditAnchorJob:
    """The audit anchor job (contract section 17); break-glass and rotation events poke it."""
    writer = AuditAnchorWriter(
        store=base.store,
        uow_factory=base.uow_factory,
        keyring=base.keyring,
        clock=base.clock,
        secret_id=anchor_secret_id(base.settings.gsm_secret_prefix),
    )
    return AuditAnchorJob(writer, interval_seconds=over.audit_anchor_interval_seconds)


def _dispatcher(base: Platform) -> Dispatcher:
    """The one dispatcher, with the reaction tables that need only the platform."""
    publish = base.notifier.publish
    return Dispatcher(
        [
            break_glass_reactions(
                observer=base.observer,
                alerts=base.alerts,
                auditor=base.auditor,
                publish=publish,
                integrity=base.integrity,
            ),
            refresh_reactions(auditor=base.auditor, publish=publish),
            alias_reactions(auditor=base.auditor),
            gsm_events_reactions(
                alerts=base.alerts,
                auditor=base.auditor,
                metrics=base.metrics,
                publish=publish,
                environment=base.environment,
            ),
        ]
    )


def _serving(
    base: Platform,
    bus: Dispatcher,
    break_glass_keys: BreakGlassKeyPair | None,
    feed: GsmEventFeed,
) -> _Serving:
    """Signals, the pinned fetch and cache, break-glass, the secret service, in that order."""
    settings = base.settings
    # The pinned fetch asks the signal table first; the signals judge revocations by the pins.
    signal_table = build_signal_table(store=base.store, signal_store=base.cluster_store, bus=bus)
    cached = build_cache(
        catalog=base.catalog,
        store=base.store,
        uow_factory=base.uow_factory,
        observer=base.observer,
        check_revocation=signal_table.check,
        integrity=base.integrity,
        ttl_seconds=settings.cache_ttl_seconds,
        max_stale_seconds=settings.cache_max_stale_seconds,
        clock=base.clock,
        listener=CacheObserver(
            catalog=base.catalog,
            metrics=base.metrics,
            alerts=base.alerts,
            auditor=base.auditor,
            clock=base.clock,
            alert_after_failures=settings.alert_consecutive_failures,
        ),
    )
    signals = build_signals(
        catalog=base.catalog,
        table=signal_table,
        signal_store=base.cluster_store,
        pins=cached.pins,
        bus=bus,
    )
    break_glass = build_break_glass(
        key_pair=break_glass_keys,
        uow_factory=base.uow_factory,
        auditor=base.auditor,
        cache=cached.cache,
        clock=base.clock,
        bus=bus,
    )
    replicas = base.replicas
    drift = DriftBoard()
    secrets = build_secret_service(
        identity=ServiceIdentity(
            environment=base.environment,
            gcp_project_id=settings.gcp_project_id or "",
            rotation_warning_days=settings.rotation_warning_days,
        ),
        catalog=base.catalog,
        cached=cached,
        uow_factory=base.uow_factory,
        auditor=base.auditor,
        apex=base.apex,
        clock=base.clock,
        signals=signals,
        break_glass_view=break_glass.view,
        replica_view=lambda: ReplicaView(
            id=replicas.replica_id,
            peers=replicas.peers,
            clock_offset_seconds=_rounded(replicas.clock_offset_seconds),
        ),
        events_view=feed.view,
        drift=drift.get,
    )
    base.metrics.track_cache_age(secrets.cache_age_seconds)
    base.metrics.track_enabled_versions(cached.pins.enabled_versions)
    current_aliases = build_current_aliases(
        catalog=base.catalog, store=base.store, pins=cached.pins, clock=base.clock, bus=bus
    )
    return _Serving(signals, break_glass, secrets, current_aliases, drift)


def _rotation(base: Platform, bus: Dispatcher, secrets: OmniSecretService) -> RotationFeature:
    """The rotation service and monitor; their table is added to ``bus`` by the caller."""
    settings = base.settings
    return build_rotation(
        catalog=base.catalog,
        store=base.store,
        uow_factory=base.uow_factory,
        auditor=base.auditor,
        apex=base.apex,
        secrets=secrets,
        alerts=base.alerts,
        metrics=base.metrics,
        observer=base.observer,
        clock=base.clock,
        leader_lock=base.leader_lock,
        publish=base.notifier.publish,
        bus=bus,
        period_days=settings.rotation_period_days,
        warning_days=settings.rotation_warning_days,
        check_interval_seconds=settings.rotation_check_interval_seconds,
        keyring=base.keyring,
        owner=JournalOwner(replica_id=base.replicas.replica_id, host=base.replicas.host),
        live_replicas=lambda: base.replicas.live_ids(OWNER_SILENT_SECONDS),
        integrity=base.integrity,
        environment=base.environment,
    )


def _assemble(
    base: Platform,
    over: Overrides,
    serving: _Serving,
    refresh: ClusterRefreshService,
    gsm_events: GsmEventService | None,
    rotation: RotationFeature,
    follower: AliasFollower,
    anchor: AuditAnchorJob,
) -> Services:
    """:class:`Services` from the built parts, with the jobs and the Pub/Sub subscriber."""
    secrets, break_glass, signals = serving.secrets, serving.break_glass, serving.signals
    current_aliases = serving.current_aliases
    return Services(
        settings=base.settings,
        catalog=base.catalog,
        clock=base.clock,
        metrics=base.metrics,
        redactor=base.redactor,
        uow_factory=base.uow_factory,
        store=base.store,
        alerts=base.alerts,
        auditor=base.auditor,
        apex=base.apex,
        secrets=secrets,
        break_glass=break_glass,
        rotation=rotation.service,
        rotation_monitor=rotation.monitor,
        reconcile=ReconcileJob(
            secrets=secrets,
            break_glass=break_glass,
            interval_seconds=over.reconcile_interval_seconds,
            signals=signals,
            refresh=refresh,
            aliases=current_aliases,
            follow=follower.follow,
        ),
        journal_recovery=JournalRecoveryJob(
            rotation.recovery, interval_seconds=over.journal_recovery_interval_seconds
        ),
        break_glass_expiry=BreakGlassExpiryJob(
            break_glass, max_interval_seconds=over.break_glass_expiry_interval_seconds
        ),
        notifier=base.notifier,
        replicas=base.replicas,
        replica_heartbeat=ReplicaHeartbeatJob(
            base.replicas,
            interval_seconds=over.heartbeat_interval_seconds,
            # Section 18: a peer that died may have held a revocation Pub/Sub will redeliver
            # only when its lease lapses; one refresh from GSM applies it now.
            on_peers_silent=lambda _peers: secrets.cache.refresh(),
        ),
        cluster_refresh=refresh,
        signals=signals,
        current_aliases=current_aliases,
        alias_follower=follower,
        gsm_events=gsm_events,
        gsm_subscriber=(
            build_gsm_subscriber(gsm_events, base.metrics, over.pubsub_subscriber_factory)
            if gsm_events is not None
            else None
        ),
        audit_anchor=anchor,
        rekey=LiveStateRekey(
            uow_factory=base.uow_factory,
            auditor=base.auditor,
            clock=base.clock,
            signing_key_id=base.keyring.signing_key_id if base.keyring else None,
        ),
        closers=base.closers,
    )


def _rounded(seconds: float | None) -> float | None:
    """An offset as status shows it (milliseconds; the measurement is no finer)."""
    return None if seconds is None else round(seconds, 3)
