"""Builds the GSM events feature from explicit collaborators, in the order bootstrap needs them.

The pinned fetch must ask the signals before it reads a version, and the signals must know the
pins to tell what is served: :func:`build_signal_table` comes before the pins,
:func:`build_signals` after them. Status shows the feed before the event service exists:
:class:`GsmEventFeed` comes before the secret service, :func:`build_gsm_events` after it. The
reaction table (:func:`~omni_secrets.service.gsm_events.reactions.gsm_events_reactions`) needs
only the alerts, the auditor, the metrics and the notifier, so it comes before all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.cluster import SignalStore
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.service.gsm_events.feed import GsmEventFeed
from omni_secrets.service.gsm_events.service import GsmEventService
from omni_secrets.service.gsm_events.signals import SecretSignals, SignalTable
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.refresh.service import ClusterRefreshService
from omni_secrets.service.serving.pinned_versions import PinnedVersions
from omni_secrets.service.serving.secrets import OmniSecretService

__all__ = ["GsmEventFeed", "build_gsm_events", "build_signal_table", "build_signals"]


def build_signal_table(
    *, store: SecretStore, signal_store: SignalStore, bus: EventBus
) -> SignalTable:
    """The signals held on this replica; its ``check`` is the pinned fetch's revocation check.

    Args:
        store: GSM, to confirm a revocation before each fetch of the revoked version.
        signal_store: the ``omni_secret_signals`` rows.
        bus: the dispatcher that runs the GSM events reactions.
    """
    return SignalTable(store=store, signal_store=signal_store, bus=bus)


def build_signals(
    *,
    catalog: Catalog,
    table: SignalTable,
    signal_store: SignalStore,
    pins: PinnedVersions,
    bus: EventBus,
) -> SecretSignals:
    """The signals applied to this replica's cache, judged against the pinned versions.

    Args:
        catalog: the secret types.
        table: from :func:`build_signal_table`.
        signal_store: the ``omni_secret_signals`` rows.
        pins: what each type serves (a revocation of another version does not apply).
        bus: the dispatcher that runs the GSM events reactions.
    """

    def pinned(secret_type: SecretType) -> str | None:
        meta = pins.get(secret_type)
        return meta.active_version if meta is not None else None

    return SecretSignals(
        catalog=catalog, table=table, signal_store=signal_store, active_version=pinned, bus=bus
    )


def build_gsm_events(
    *,
    feed: GsmEventFeed,
    projects: frozenset[str],
    catalog: Catalog,
    store: SecretStore,
    secrets: OmniSecretService,
    signals: SecretSignals,
    refresh: ClusterRefreshService,
    clock: Clock,
    bus: EventBus,
    follow: Callable[[], Awaitable[object]] | None = None,
    uow_factory: UnitOfWorkFactory | None = None,
) -> GsmEventService | None:
    """The GSM event service, or None when no subscription is configured (events are off).

    Args:
        feed: the subscription's state (``GsmEventFeed(settings.pubsub_subscription)``).
        projects: project ids and numbers whose secrets we serve (``settings.event_projects``).
        catalog: the secret types.
        store: GSM, to confirm events.
        secrets: the secret service (active versions, the cache).
        signals: from :func:`build_signals`.
        refresh: the cluster refresh service (``SECRET_VERSION_ENABLE``).
        clock: time source.
        bus: the dispatcher that runs the GSM events reactions.
        follow: re-judges GSM's ``current`` aliases after a ``SECRET_UPDATE`` re-read them.
        uow_factory: the database, where ``SECRET_ROTATE``'s once-an-hour bound is checked
            across replicas (None: this replica's memory only).
    """
    if feed.subscription is None:
        return None
    return GsmEventService(
        subscription=feed.subscription,
        feed=feed,
        projects=projects,
        catalog=catalog,
        store=store,
        secrets=secrets,
        signals=signals,
        refresh=refresh,
        clock=clock,
        bus=bus,
        follow=follow,
        uow_factory=uow_factory,
    )
