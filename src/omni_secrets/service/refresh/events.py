"""What :class:`~omni_secrets.service.refresh.service.ClusterRefreshService` reports.

Each event is a fact the service has already acted on; ``reactions.py`` says what follows (the
audit rows, the log lines, the announcement to the other replicas). No event carries a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.cluster import RefreshResult, RefreshStatus


@dataclass(frozen=True, slots=True)
class ClusterRefreshRequested:
    """A refresh was accepted (the 202); ``shared``: stored in the ledger for every replica."""

    request_id: str
    secret_types: tuple[SecretType, ...]
    actor: str
    correlation_id: str | None
    queued_at: datetime
    shared: bool


@dataclass(frozen=True, slots=True)
class RefreshNotShared:
    """The ledger refused the request (database down): it runs on this replica only."""

    request_id: str
    error_type: str


@dataclass(frozen=True, slots=True)
class RefreshShared:
    """The request is in the ledger: the other replicas should run it now, not at reconcile."""

    request_id: str


@dataclass(frozen=True, slots=True)
class ReplicaRefreshed:
    """This replica ran a request (its own or another's) and has its outcome."""

    request_id: str
    replica_id: str
    actor: str
    correlation_id: str | None
    status: RefreshStatus
    results: tuple[RefreshResult, ...]
    completed_at: datetime
    duration_ms: int


@dataclass(frozen=True, slots=True)
class RefreshOutcomeNotRecorded:
    """This replica's outcome could not be stored: other replicas' views miss it."""

    request_id: str
    error_type: str


@dataclass(frozen=True, slots=True)
class RefreshCatchUpFailed:
    """The ledger could not list other replicas' requests; the next reconcile tries again."""

    error_type: str


@dataclass(frozen=True, slots=True)
class RefreshViewFromMemory:
    """The ledger could not be read for a view: this replica answers from its own memory."""

    error_type: str
