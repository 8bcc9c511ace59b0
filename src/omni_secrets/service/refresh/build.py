"""Builds the refresh feature from explicit collaborators (bootstrap calls it; so can tests).

The reaction table (:func:`~omni_secrets.service.refresh.reactions.refresh_reactions`) needs only
the auditor and the notifier, so bootstrap builds it before the dispatcher the service emits to.
"""

from __future__ import annotations

from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.cluster import RefreshLedger
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.refresh.service import ClusterRefreshService
from omni_secrets.service.replicas import ReplicaService


def build_refresh(
    *,
    catalog: Catalog,
    cache: OmniSecretCache,
    ledger: RefreshLedger,
    replicas: ReplicaService,
    clock: Clock,
    bus: EventBus,
) -> ClusterRefreshService:
    """The cluster refresh service of this replica (nothing started: refreshes run on request).

    Args:
        catalog: the secret types.
        cache: this replica's cache.
        ledger: requests and per-replica outcomes in the database.
        replicas: this replica's identity and the registry of live ones.
        clock: time source.
        bus: the dispatcher that runs the refresh reactions (``reactions.py``).
    """
    return ClusterRefreshService(
        catalog=catalog, cache=cache, ledger=ledger, replicas=replicas, clock=clock, bus=bus
    )
