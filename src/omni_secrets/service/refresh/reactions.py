"""What follows each refresh event: the audit rows, the log lines and the peer announcement.

- ``ClusterRefreshRequested`` → audit row ``cache_refresh_requested`` (buffered; when the audit
  buffer is full it is counted as lost and paged: the refresh already happened).
- ``RefreshShared`` → the other replicas are told (``KIND_REFRESH``).
- ``ReplicaRefreshed`` → audit row ``refresh``: ties the request, its caller and this replica's
  outcome together (each GSM read is audited by the cache observer, actor system).
- ``RefreshNotShared``, ``RefreshOutcomeNotRecorded``, ``RefreshCatchUpFailed``,
  ``RefreshViewFromMemory`` → one ``refresh.*`` warning each.
"""

from __future__ import annotations

import structlog

from omni_secrets.domain.changes import KIND_REFRESH, Publish
from omni_secrets.domain.cluster import RefreshStatus
from omni_secrets.domain.errors import AuditUnavailable
from omni_secrets.domain.models import NewAccessEvent
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.messagebus import Reactions
from omni_secrets.service.refresh.events import (
    ClusterRefreshRequested,
    RefreshCatchUpFailed,
    RefreshNotShared,
    RefreshOutcomeNotRecorded,
    RefreshShared,
    RefreshViewFromMemory,
    ReplicaRefreshed,
)

log = structlog.get_logger("omni_secrets.refresh")


def refresh_reactions(*, auditor: Auditor, publish: Publish) -> Reactions:
    """The refresh feature's reaction table.

    Args:
        auditor: writes the ``cache_refresh_requested`` and ``refresh`` rows.
        publish: tells the other replicas; never raises.
    """

    async def _audit(event: NewAccessEvent) -> None:
        try:
            await auditor.submit(event)
        except AuditUnavailable:
            auditor.record_later(event)  # the buffer is full: counted as lost, paged

    async def audit_requested(event: ClusterRefreshRequested) -> None:
        types = event.secret_types
        await _audit(
            NewAccessEvent(
                occurred_at=event.queued_at,
                secret_type=types[0].value if len(types) == 1 else None,
                action="cache_refresh_requested",
                actor=event.actor,
                result="success",
                duration_ms=None,
                correlation_id=event.correlation_id,
                details={
                    "requestId": event.request_id,
                    "secretTypes": [t.value for t in types],
                    "cluster": event.shared,
                },
            )
        )

    async def audit_refreshed(event: ReplicaRefreshed) -> None:
        await _audit(
            NewAccessEvent(
                occurred_at=event.completed_at,
                secret_type=None,
                action="refresh",
                actor=event.actor,
                result="success" if event.status is RefreshStatus.SUCCEEDED else "failure",
                duration_ms=event.duration_ms,
                correlation_id=event.correlation_id,
                details={
                    "requestId": event.request_id,
                    "replicaId": event.replica_id,
                    "status": event.status.value,
                    "results": {r.secret_type.value: r.error or "ok" for r in event.results},
                },
            )
        )

    async def announce(_event: RefreshShared) -> None:
        await publish(KIND_REFRESH)

    return {
        RefreshNotShared: [log_not_shared],
        ClusterRefreshRequested: [audit_requested],
        RefreshShared: [announce],
        RefreshOutcomeNotRecorded: [log_outcome_not_recorded],
        ReplicaRefreshed: [audit_refreshed],
        RefreshCatchUpFailed: [log_catch_up_failed],
        RefreshViewFromMemory: [log_view_from_memory],
    }


def log_not_shared(event: RefreshNotShared) -> None:
    log.warning(
        "refresh.not_shared",
        request_id=event.request_id,
        error_type=event.error_type,
        outcome="this replica only",
    )


def log_outcome_not_recorded(event: RefreshOutcomeNotRecorded) -> None:
    log.warning(
        "refresh.outcome_not_recorded", request_id=event.request_id, error_type=event.error_type
    )


def log_catch_up_failed(event: RefreshCatchUpFailed) -> None:
    log.warning("refresh.catch_up_failed", error_type=event.error_type)


def log_view_from_memory(event: RefreshViewFromMemory) -> None:
    log.warning("refresh.view_from_memory", error_type=event.error_type)
