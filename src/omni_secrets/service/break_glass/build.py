"""Building the break-glass feature from explicit collaborators (bootstrap and test rigs).

Two steps, because the service emits through the process's one dispatcher and that dispatcher is
made from every feature's reaction table: first :func:`break_glass_reactions` (the table needs
only the outward collaborators), then, with the dispatcher built from the tables,
:func:`build_break_glass`. Nothing is late-bound and the dispatcher never changes once built::

    reactions = break_glass_reactions(observer=..., alerts=..., auditor=..., publish=...)
    bus = Dispatcher([reactions, ...])
    service = build_break_glass(key_pair=..., ..., bus=bus)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from omni_secrets.domain.break_glass import BreakGlassKeyPair
from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.changes import Publish, publish_nothing
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.observations import ServiceObserver
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.break_glass.reactions import Alerts, BreakGlassReactions
from omni_secrets.service.break_glass.service import BreakGlassService
from omni_secrets.service.integrity import IntegrityViolations
from omni_secrets.service.messagebus import EventBus, Reactions


def break_glass_reactions(
    *,
    observer: ServiceObserver,
    alerts: Alerts,
    auditor: Auditor,
    publish: Publish = publish_nothing,
    integrity: IntegrityViolations | None = None,
) -> Reactions:
    """The break-glass reaction table, for the process's dispatcher.

    Args:
        observer: counts reads and failures and teaches the log redactor each committed or
            reloaded value (no default: wiring that forgets it would lose redaction).
        alerts: raises and resolves ``break_glass_active``.
        auditor: writes the best-effort rows (``break_glass_rejected``, a deferred revoke's).
        publish: tells the other replicas after an activation, revoke or expiry committed here
            (its failure is logged, never raised).
        integrity: told about each stored override refused on reload (MAC missing or wrong,
            window longer than the 30-minute cap).
    """
    return BreakGlassReactions(
        observer=observer,
        alerts=alerts,
        auditor=auditor,
        publish=publish,
        integrity=integrity or IntegrityViolations(),
    ).table()


def build_break_glass(
    *,
    key_pair: BreakGlassKeyPair | None,
    uow_factory: UnitOfWorkFactory,
    auditor: Auditor,
    cache: OmniSecretCache,
    clock: Clock,
    bus: EventBus,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> BreakGlassService:
    """The break-glass service, emitting through ``bus`` (which must hold the table above).

    Args:
        key_pair: the X25519 key pair; None when break-glass is disabled.
        uow_factory: database units of work.
        auditor: appends the rows that commit with the override.
        cache: where overrides are served from.
        clock: wall time.
        bus: the process's dispatcher (or a test's recording bus).
        new_id: makes override ids.
    """
    return BreakGlassService(
        key_pair=key_pair,
        uow_factory=uow_factory,
        auditor=auditor,
        cache=cache,
        clock=clock,
        bus=bus,
        new_id=new_id,
    )
