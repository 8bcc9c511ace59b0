"""Cross-replica change notifications: the port replicas use to tell each other to catch up.

A replica that commits a change other replicas must see at once (a break-glass override
activated, revoked or expired; a rotation committed) publishes its kind after the commit. Every
replica listens and, on a notification, reconciles with the database. Notifications are a
latency optimisation only: the periodic reconcile stays the fallback for any that are lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, Protocol

KIND_BREAK_GLASS: Final = "break_glass"
KIND_ROTATION: Final = "rotation"
KIND_REFRESH: Final = "refresh"
KIND_GSM_SIGNAL: Final = "gsm_signal"
CHANGE_KINDS: Final = frozenset({KIND_BREAK_GLASS, KIND_ROTATION, KIND_REFRESH, KIND_GSM_SIGNAL})
URGENT_KINDS: Final = frozenset({KIND_REFRESH, KIND_GSM_SIGNAL})
"""Kinds the other replicas act on without waiting for the rest of a burst: a refresh someone
waits for, and a GSM revocation that must stop serving everywhere within a second."""

OnChange = Callable[[], Awaitable[None]]
Publish = Callable[[str], Awaitable[None]]


async def publish_nothing(kind: str) -> None:
    """The default publish hook of services built without a notifier (tests, one process)."""


class ChangeNotifier(Protocol):
    """Publishes committed changes to, and listens for those of, the other replicas."""

    async def publish(self, kind: str) -> None:
        """Tell the other replicas that a change of ``kind`` was committed.

        Never raises: a notification that cannot be sent is logged and dropped (the periodic
        reconcile catches up instead).
        """

    async def start(self, on_change: OnChange) -> None:
        """Start listening; ``on_change`` runs (coalesced) after notifications arrive."""

    async def stop(self) -> None:
        """Stop listening and release the connection (idempotent)."""
