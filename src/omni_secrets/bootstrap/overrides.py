"""What tests, ``dev`` and the benchmarks may swap: :class:`Overrides` for the real adapters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry

from omni_secrets.domain.changes import ChangeNotifier
from omni_secrets.domain.clock import Clock, Sleep
from omni_secrets.domain.cluster import RefreshLedger, ReplicaRegistry, SignalStore
from omni_secrets.domain.exchange import ApexGateway
from omni_secrets.domain.observations import ServiceObserver
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.jobs.break_glass_expiry import DEFAULT_MAX_INTERVAL_SECONDS
from omni_secrets.jobs.journal_recovery import DEFAULT_INTERVAL_SECONDS as JOURNAL_RECOVERY_SECONDS
from omni_secrets.jobs.reconcile import DEFAULT_INTERVAL_SECONDS as RECONCILE_INTERVAL_SECONDS
from omni_secrets.jobs.replica_heartbeat import DEFAULT_INTERVAL_SECONDS as HEARTBEAT_SECONDS
from omni_secrets.observability.alerts import AlertSink
from omni_secrets.observability.logging import Redactor
from omni_secrets.service.rotation.monitor import LeaderLock

if TYPE_CHECKING:
    # Annotations only: google-cloud-pubsub loads only when OMNI_PUBSUB_SUBSCRIPTION is set.
    from omni_secrets.adapters import pubsub as pubsub_adapter


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
    journal_recovery_interval_seconds: float = JOURNAL_RECOVERY_SECONDS
    # Contract section 17: how often the audit chain head is anchored in GSM (at most 60 s).
    audit_anchor_interval_seconds: float = 60.0
    # Builds the Pub/Sub subscriber (tests stand in for it or shorten its probe and backoff).
    pubsub_subscriber_factory: Callable[..., pubsub_adapter.PubSubEventSubscriber] | None = None
