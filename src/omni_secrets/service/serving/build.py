"""Builds the serving path: the pinned fetch, the cache around it, and the secret service.

Two steps, because break-glass sits between them: it serves overrides from the cache, and the
secret service shows break-glass in status. :func:`build_cache` comes first, then break-glass,
then :func:`build_secret_service`; nothing is late-bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.cache.events import CacheListener
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.exchange import ApexGateway
from omni_secrets.domain.observations import ServiceObserver
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.rotation.drift import Drift
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.gsm_events.signals import SecretSignals
from omni_secrets.service.integrity import IntegrityViolations
from omni_secrets.service.serving.pinned_versions import CheckRevocation, PinnedVersions
from omni_secrets.service.serving.secrets import OmniSecretService, ServiceIdentity
from omni_secrets.service.views import BreakGlassView, EventsView, ReplicaView


@dataclass(frozen=True, slots=True)
class CachedPins:
    """What :func:`build_cache` returns: the pinned fetch and the cache that calls it."""

    pins: PinnedVersions
    cache: OmniSecretCache


def build_cache(
    *,
    catalog: Catalog,
    store: SecretStore,
    uow_factory: UnitOfWorkFactory,
    observer: ServiceObserver,
    check_revocation: CheckRevocation,
    integrity: IntegrityViolations,
    ttl_seconds: float,
    max_stale_seconds: float,
    clock: Clock,
    listener: CacheListener,
) -> CachedPins:
    """The pinned-version fetch and the cache around it (built before any service).

    Args:
        check_revocation: asked before each fetch whether GSM revoked the version (the signals).
        listener: turns the cache's events into metrics, alerts, audit rows and log lines.
    """
    pins = PinnedVersions(
        catalog=catalog,
        store=store,
        uow_factory=uow_factory,
        observer=observer,
        check_revocation=check_revocation,
        integrity=integrity,
    )
    cache = OmniSecretCache(
        catalog=catalog,
        fetch=pins.fetch,
        ttl_seconds=ttl_seconds,
        max_stale_seconds=max_stale_seconds,
        clock=clock,
        listener=listener,
    )
    return CachedPins(pins, cache)


def build_secret_service(
    *,
    identity: ServiceIdentity,
    catalog: Catalog,
    cached: CachedPins,
    uow_factory: UnitOfWorkFactory,
    auditor: Auditor,
    apex: ApexGateway,
    clock: Clock,
    signals: SecretSignals,
    break_glass_view: Callable[[SecretType], BreakGlassView],
    replica_view: Callable[[], ReplicaView | None],
    events_view: Callable[[], EventsView | None],
    drift: Callable[[str], Drift | None] = lambda _t: None,
) -> OmniSecretService:
    """The service the edges call: status, ApeX calls, readiness, reconcile."""
    return OmniSecretService(
        identity=identity,
        catalog=catalog,
        pins=cached.pins,
        cache=cached.cache,
        uow_factory=uow_factory,
        auditor=auditor,
        apex=apex,
        clock=clock,
        break_glass_view=break_glass_view,
        signals=signals,
        replica_view=replica_view,
        events_view=events_view,
        drift=drift,
    )
