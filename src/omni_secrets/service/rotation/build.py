"""The rotation feature's builder: its service, its monitor and their reaction table.

The composition root passes every collaborator explicitly and the process's one event bus; it
adds the returned table to that bus (``Dispatcher.add``) before anything runs. The table cannot
be given to the bus at its construction: the monitor emits on the bus, and a commit's reaction
wakes that monitor.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.changes import Publish
from omni_secrets.domain.clock import Clock, Sleep
from omni_secrets.domain.exchange import ApexGateway
from omni_secrets.domain.integrity import IntegrityKeyring
from omni_secrets.domain.observations import ServiceObserver
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.rotation.drift import DriftBoard
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.observability.alerts import AlertDispatcher
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.integrity import IntegrityViolations
from omni_secrets.service.messagebus import EventBus, Reactions
from omni_secrets.service.rotation.adoption import AliasFollower
from omni_secrets.service.rotation.aliases import PayloadDigests
from omni_secrets.service.rotation.journal import JournalOwner, JournalWriter
from omni_secrets.service.rotation.monitor import LeaderLock, RotationMonitor
from omni_secrets.service.rotation.preview import PreviewOpener
from omni_secrets.service.rotation.reactions import MonitorReactions, RotationReactions
from omni_secrets.service.rotation.recovery import JournalRecovery, LiveReplicas
from omni_secrets.service.rotation.reminder import GsmRotationReminder
from omni_secrets.service.rotation.service import RotationService
from omni_secrets.service.serving.pinned_versions import PinnedVersions
from omni_secrets.service.serving.secrets import OmniSecretService


@dataclass(frozen=True, slots=True)
class RotationFeature:
    """What :func:`build_rotation` returns.

    Attributes:
        service: preview, commit and cancel (the API's).
        monitor: the rotation rounds (started by ``start_services``).
        recovery: resolves commits a dead replica left open (start-up and a periodic job).
        reactions: what follows each of their events; add it to ``bus``.
        reminder: GSM's own rotation reminder; a commit and a rollback move it, and so must
            any other decision that moves a group's ``dueAt`` (adoption).
    """

    service: RotationService
    monitor: RotationMonitor
    recovery: JournalRecovery
    reactions: Reactions
    reminder: GsmRotationReminder


def build_alias_follower(
    *,
    catalog: Catalog,
    store: SecretStore,
    pins: PinnedVersions,
    uow_factory: UnitOfWorkFactory,
    auditor: Auditor,
    apex: ApexGateway,
    bus: EventBus,
    clock: Clock,
    board: DriftBoard,
    period_days: int,
    keyring: IntegrityKeyring | None = None,
) -> AliasFollower:
    """The follower of GSM's ``current`` aliases (:mod:`.adoption`); its events are reacted to
    by the rotation table (``RotationAdopted``, ``AliasDrift``).

    Built before the GSM events and the reconcile job, which run it; it needs only the pins,
    not the rotation service.
    """
    checks = PreviewOpener(
        catalog=catalog,
        store=store,
        uow_factory=uow_factory,
        auditor=auditor,
        apex=apex,
        bus=bus,
        clock=clock,
        period_days=period_days,
        new_id=lambda: uuid.uuid4().hex,
        digests=PayloadDigests(keyring),
    )
    return AliasFollower(
        catalog=catalog,
        pins=pins,
        uow_factory=uow_factory,
        auditor=auditor,
        checks=checks,
        store=store,
        bus=bus,
        clock=clock,
        board=board,
        period_days=period_days,
    )


def build_rotation(
    *,
    catalog: Catalog,
    store: SecretStore,
    uow_factory: UnitOfWorkFactory,
    auditor: Auditor,
    apex: ApexGateway,
    secrets: OmniSecretService,
    alerts: AlertDispatcher,
    metrics: OmniMetrics,
    observer: ServiceObserver,
    clock: Clock,
    leader_lock: LeaderLock,
    publish: Publish,
    bus: EventBus,
    period_days: int,
    warning_days: int,
    check_interval_seconds: float,
    sleep: Sleep = asyncio.sleep,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    keyring: IntegrityKeyring | None = None,
    owner: JournalOwner | None = None,
    live_replicas: LiveReplicas | None = None,
    integrity: IntegrityViolations | None = None,
    environment: str = "",
) -> RotationFeature:
    """Build the rotation service and monitor on ``bus``, and their reactions.

    Args:
        catalog: the secret types and their groups.
        store: GSM: candidate versions and payloads.
        uow_factory: database units of work.
        auditor: audit rows in the units of work, and in the background (failures, status
            changes).
        apex: runs the self-test with candidate credentials.
        secrets: the serving side a commit (or preview, or cancel) catches up at once.
        alerts, metrics: the per-group rotation alerts; the rotation gauges.
        observer: reads, failures and values seen (metrics and the log redactor). Required:
            wiring that forgets it would lose redaction of candidate values.
        clock: time source.
        leader_lock: cluster-wide leadership for the monitor's alerts and audit rows.
        publish: tells the other replicas of a commit.
        bus: the process's event bus; the caller adds ``reactions`` to it.
        period_days, warning_days, check_interval_seconds: ``OMNI_ROTATION_PERIOD_DAYS``,
            ``OMNI_ROTATION_WARNING_DAYS``, ``OMNI_ROTATION_CHECK_INTERVAL_SECONDS``.
        sleep: the monitor's sleep between rounds (tests gate it).
        new_id: makes preview ids.
        keyring: the integrity keys; candidate digests are MACs under them (else preview-keyed).
        owner: this process, as the commit journal names it (default: replica ``local``).
        live_replicas: the replicas heard from within the journal's owner window (default:
            none but this one, i.e. every other owner counts as dead).
        integrity: told of journal entries whose MAC does not verify and of each preview
            refused at commit for its integrity.
        environment: named in the ``alias_drift`` alert.

    Raises:
        ValueError: a period, warning window or interval out of range.
    """
    monitor = RotationMonitor(
        catalog=catalog,
        uow_factory=uow_factory,
        bus=bus,
        clock=clock,
        leader_lock=leader_lock,
        warning_days=warning_days,
        interval_seconds=check_interval_seconds,
        sleep=sleep,
    )
    journal = JournalWriter(
        uow_factory=uow_factory, clock=clock, owner=owner or JournalOwner(replica_id="local")
    )

    async def only_me() -> frozenset[str]:
        return frozenset({journal.owner.replica_id})

    recovery = JournalRecovery(
        store=store,
        uow_factory=uow_factory,
        auditor=auditor,
        bus=bus,
        clock=clock,
        writer=journal,
        live_replicas=live_replicas or only_me,
        integrity=integrity,
    )
    service = RotationService(
        catalog=catalog,
        store=store,
        uow_factory=uow_factory,
        auditor=auditor,
        apex=apex,
        bus=bus,
        clock=clock,
        period_days=period_days,
        new_id=new_id,
        digests=PayloadDigests(keyring),
        journal=journal,
    )
    reminder = GsmRotationReminder(
        catalog=catalog, store=store, clock=clock, warning_days=warning_days
    )
    service_reactions = RotationReactions(
        catalog=catalog,
        secrets=secrets,
        alerts=alerts,
        observer=observer,
        auditor=auditor,
        monitor=monitor,
        publish=publish,
        reminder=reminder,
        integrity=integrity,
        metrics=metrics,
        environment=environment,
    )
    monitor_reactions = MonitorReactions(metrics=metrics, alerts=alerts, auditor=auditor)
    return RotationFeature(
        service=service,
        monitor=monitor,
        recovery=recovery,
        reactions={**service_reactions.table(), **monitor_reactions.table()},
        reminder=reminder,
    )
