"""``ReplicaService``: this process's entry in the replica registry, and how many peers it sees.

The heartbeat job calls :meth:`ReplicaService.beat` every few seconds; status reads
:attr:`ReplicaService.peers` from memory (status never touches the database). A replica not seen
for :data:`~omni_secrets.domain.cluster.REPLICA_LIVENESS_SECONDS` is gone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog

from omni_secrets.domain.clock import Clock
from omni_secrets.domain.cluster import REPLICA_LIVENESS_SECONDS, ReplicaInfo, ReplicaRegistry
from omni_secrets.service.shared_time import ClockSync

log = structlog.get_logger("omni_secrets.replicas")

PEER_SILENT_SECONDS = 8.0
"""A peer whose heartbeat (every 5 s) is older than this has probably died (contract section 18):
the heartbeat job refreshes the cache from GSM once, so what the dead peer held (a revocation it
was leased but never acted on) reaches this replica without waiting for Pub/Sub's redelivery."""

PRUNE_AFTER = timedelta(days=1)
"""Registry rows and refresh requests older than this are deleted by the heartbeat."""


def new_replica_id() -> str:
    """A fresh replica id (random: a restarted process is a new replica)."""
    return uuid.uuid4().hex[:16]


class ReplicaService:
    """Registers this replica and tracks the live ones.

    Args:
        registry: the ``omni_replicas`` port.
        clock: wall time for ``started_at``/``last_seen_at``.
        replica_id: this process's id (:func:`new_replica_id`).
        host: the host name shown in the registry.
        on_peers: called with the peer count after each successful beat (a gauge).
        clock_sync: measures this replica's offset from the database clock at every beat
            (contract section 18), before the beat's own times are taken.
    """

    def __init__(
        self,
        *,
        registry: ReplicaRegistry,
        clock: Clock,
        replica_id: str,
        host: str,
        on_peers: Callable[[int], None] = lambda _n: None,
        clock_sync: ClockSync | None = None,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self.replica_id = replica_id
        self.host = host
        self.started_at: datetime = clock.now()
        self._on_peers = on_peers
        self._clock_sync = clock_sync
        self._peers = 0
        self._beats = 0
        self._silent: frozenset[str] = frozenset()
        self._newly_silent: tuple[str, ...] = ()

    @property
    def peers(self) -> int:
        """Other live replicas as of the last successful beat (0 before the first)."""
        return self._peers  # counted when read: status shows it on every call

    @property
    def clock_offset_seconds(self) -> float | None:
        """This host's clock minus the database's at the last heartbeat (None: not measured)."""
        return None if self._clock_sync is None else self._clock_sync.offset_seconds

    async def sync_clock(self) -> bool:
        """Measure the offset from the database clock now; never raises.

        Returns:
            Whether the database answered (a failed measurement keeps the last offset).
        """
        if self._clock_sync is None:
            return True
        try:
            await self._clock_sync.sync()
        except Exception as exc:
            log.warning("replica.clock_sync_failed", error_type=type(exc).__name__)
            return False
        return True

    def _saw(self, live: Sequence[ReplicaInfo], now: datetime) -> None:
        others = [r for r in live if r.replica_id != self.replica_id]
        self._peers = len(others)
        silent = frozenset(
            r.replica_id
            for r in others
            if (now - r.last_seen_at).total_seconds() > PEER_SILENT_SECONDS
        )
        self._newly_silent = (*self._newly_silent, *sorted(silent - self._silent))
        self._silent = silent

    def take_newly_silent(self) -> tuple[str, ...]:
        """Peers that stopped beating since the last call (each reported once)."""
        newly, self._newly_silent = self._newly_silent, ()
        return newly

    async def beat(self) -> bool:
        """Renew this replica's row and re-read the live ones; never raises.

        Returns:
            Whether the database answered (a failed beat keeps the last known peers).
        """
        await self.sync_clock()
        now = self._clock.now()
        if self._beats == 0:
            # Stamped on the database's clock (measured just above), not the host's: a
            # refresh queued after this replica started must count it in.
            self.started_at = now
        try:
            await self._registry.heartbeat(
                ReplicaInfo(self.replica_id, self.host, self.started_at, now)
            )
            self._saw(await self._registry.live(now, REPLICA_LIVENESS_SECONDS), now)
            self._beats += 1
            if self._beats % 100 == 1:  # rarely: pruning is housekeeping, not liveness
                await self._registry.prune(now - PRUNE_AFTER)
        except Exception as exc:
            log.warning("replica.heartbeat_failed", error_type=type(exc).__name__)
            return False
        self._on_peers(self.peers)
        return True

    async def live(self) -> Sequence[ReplicaInfo]:
        """The live replicas read now from the database (refresh status uses it).

        Raises:
            DatabaseUnavailable: the database cannot be reached.
        """
        now = self._clock.now()
        live = tuple(await self._registry.live(now, REPLICA_LIVENESS_SECONDS))
        self._saw(live, now)
        return live

    async def live_ids(self, window_seconds: float) -> frozenset[str]:
        """The ids of the replicas seen within ``window_seconds`` (a narrower window than the
        registry's own, for the commit journal's recovery).

        Raises:
            DatabaseUnavailable: the database cannot be reached.
        """
        live = await self._registry.live(self._clock.now(), window_seconds)
        return frozenset(r.replica_id for r in live)

    async def leave(self) -> None:
        """Remove this replica's row (clean shutdown); never raises."""
        try:
            await self._registry.deregister(self.replica_id)
        except Exception as exc:
            log.warning("replica.deregister_failed", error_type=type(exc).__name__)
