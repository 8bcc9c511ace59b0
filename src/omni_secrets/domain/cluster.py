"""State shared by the replicas of one deployment, and the ports that keep it (contract §12).

- **Replica registry.** Each process registers a :class:`ReplicaInfo` and renews ``last_seen_at``
  on a heartbeat; one not seen for :data:`REPLICA_LIVENESS_SECONDS` is gone.
- **Cluster-wide refresh.** A :class:`ClusterRefresh` request and one
  :class:`ReplicaRefreshOutcome` per replica that ran it live in the database, so any replica can
  answer for any request; :func:`aggregate_status` folds the outcomes of the live replicas.
- **Secret signals.** What GSM's notifications established about a type and every replica must
  apply: a revocation of the served version (fail closed) and a candidate version (status only).

Each port method is its own short transaction (the adapter commits): these writes never join a
business transaction, and a replica must be able to record its refresh outcome while the rest
of the database work of the request has long finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol

from omni_secrets.domain.catalog import SecretType

REPLICA_LIVENESS_SECONDS: Final = 30.0
"""A replica whose heartbeat is older than this is gone (contract §12)."""


class RefreshStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"


class RevocationCode(StrEnum):
    """``lastError.code`` of a type taken out of service by a GSM event."""

    VERSION_DISABLED = "VERSION_DISABLED"
    SECRET_DELETED = "SECRET_DELETED"  # noqa: S105 - an error code, not a password


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    replica_id: str
    host: str
    started_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """One type's outcome on one replica (no value, only the version read)."""

    secret_type: SecretType
    ok: bool
    version: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ClusterRefresh:
    """A refresh request as every replica sees it."""

    request_id: str
    targeted: bool
    secret_types: tuple[SecretType, ...]
    actor: str
    queued_at: datetime
    origin_replica_id: str


@dataclass(frozen=True, slots=True)
class ReplicaRefreshOutcome:
    request_id: str
    replica_id: str
    status: RefreshStatus
    results: tuple[RefreshResult, ...]
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SecretSignal:
    """What GSM events established about one type (None fields: nothing established).

    Attributes:
        revoked_version: the version GSM disabled/destroyed; ``"*"`` when the secret was deleted.
        revoked_code: :class:`RevocationCode` value.
        revoked_message: the sentence status shows (says when GSM could not confirm).
        confirmed: False when GSM could not be reached to confirm (fail closed anyway).
        candidate_version: a version added in GSM, newer than the active one.
    """

    secret_type: SecretType
    revoked_version: str | None = None
    revoked_code: str | None = None
    revoked_message: str | None = None
    revoked_at: datetime | None = None
    confirmed: bool = True
    candidate_version: str | None = None
    candidate_at: datetime | None = None


ANY_VERSION: Final = "*"
"""``revoked_version`` of a deleted secret: every version is gone."""


def outcome_status(results: Sequence[RefreshResult]) -> RefreshStatus:
    """succeeded when every type refreshed, failed when none did, partial otherwise."""
    oks = sum(1 for r in results if r.ok)
    if oks == len(results):
        return RefreshStatus.SUCCEEDED
    return RefreshStatus.FAILED if oks == 0 else RefreshStatus.PARTIAL


def participants(request: ClusterRefresh, live: Sequence[ReplicaInfo]) -> tuple[str, ...]:
    """The replicas a request waits for: live ones that were already running when it was queued.

    A replica that started later hydrated after the request, so it has nothing to refresh.
    The replica that accepted the request always takes part.
    """
    ids = [r.replica_id for r in live if r.started_at <= request.queued_at]
    if request.origin_replica_id not in ids:
        ids.insert(0, request.origin_replica_id)
    return tuple(ids)


def aggregate_status(
    waiting_for: Sequence[str], outcomes: Sequence[ReplicaRefreshOutcome]
) -> RefreshStatus:
    """The request's status over the replicas it waits for.

    ``queued`` until one replica has started, ``running`` until every one finished, then
    ``succeeded`` only when every one succeeded, ``failed`` when all failed, else ``partial``.
    """
    by_replica = {o.replica_id: o for o in outcomes}
    mine = [by_replica[r] for r in waiting_for if r in by_replica]
    finished = [o for o in mine if o.completed_at is not None]
    if not mine:
        return RefreshStatus.QUEUED
    if len(finished) < len(waiting_for):
        return RefreshStatus.RUNNING
    statuses = {o.status for o in finished}
    if statuses == {RefreshStatus.SUCCEEDED}:
        return RefreshStatus.SUCCEEDED
    if statuses == {RefreshStatus.FAILED}:
        return RefreshStatus.FAILED
    return RefreshStatus.PARTIAL


class ReplicaRegistry(Protocol):
    """The ``omni_replicas`` table."""

    async def heartbeat(self, replica: ReplicaInfo) -> None:
        """Insert the replica, or renew its ``last_seen_at`` (host and start kept as given).

        Raises:
            DatabaseUnavailable: the database cannot be reached.
        """
        ...

    async def live(self, now: datetime, window_seconds: float) -> Sequence[ReplicaInfo]:
        """Replicas seen within ``window_seconds`` before ``now``, oldest start first."""
        ...

    async def deregister(self, replica_id: str) -> None:
        """Remove the replica (clean shutdown), so peers stop counting it at once."""
        ...

    async def prune(self, before: datetime) -> int:
        """Delete replicas last seen before ``before``, and refresh requests queued before it.

        Returns:
            How many rows were deleted.
        """
        ...


class RefreshLedger(Protocol):
    """Cluster refresh requests and each replica's outcome."""

    async def add(self, request: ClusterRefresh) -> None:
        """Store a new request."""
        ...

    async def get(
        self, request_id: str
    ) -> tuple[ClusterRefresh, Sequence[ReplicaRefreshOutcome]] | None:
        """The request and the outcomes recorded so far, or None when unknown."""
        ...

    async def record(self, outcome: ReplicaRefreshOutcome) -> None:
        """Insert or replace the outcome of ``outcome.replica_id`` for its request."""
        ...

    async def pending(self, replica_id: str, since: datetime) -> Sequence[ClusterRefresh]:
        """Requests queued at or after ``since`` with no outcome of ``replica_id`` yet, oldest
        first."""
        ...


class SignalStore(Protocol):
    """The ``omni_secret_signals`` table: one row per type that GSM events touched."""

    async def all(self) -> Sequence[SecretSignal]:
        """Every row."""
        ...

    async def put(self, signal: SecretSignal) -> None:
        """Insert or replace the row of ``signal.secret_type``."""
        ...
