"""What follows each GSM event and signal event (the services themselves decide and act only).

- Every message's outcome (``GsmMessageDismissed``, ``GsmMessageDuplicate``, ``GsmMessageFailed``,
  ``GsmMessageHandled``) → its ``gsm_event.*`` log line, then
  ``omni_gsm_events_total{event_type, result}``.
- ``ActiveVersionRevoked`` → alert ``active_version_revoked`` (critical).
- ``GsmRotationRequested`` → alert ``rotation_requested`` (warning), then a ``rotation_alert`` audit
  row (best effort: nothing about serving depends on it).
- ``ServedVersionRevoked`` → ``signal.revoked``.
- ``RevocationCleared`` → ``signal.revocation_cleared``, then the revocation alert resolves.
- ``RevocationClearNotStored`` → ``signal.clear_not_stored``.
- ``SignalStored`` → the other replicas are told (``KIND_GSM_SIGNAL``).
- ``CandidatesInstalled`` → ``omni_secret_rotation_candidate_available{secret_type}``.

The alert wording is the alert catalog's; the log event names and fields are the ones operators
and dashboards already know.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from omni_secrets.domain.audit_trail import BackgroundAudit
from omni_secrets.domain.changes import KIND_GSM_SIGNAL, Publish
from omni_secrets.domain.models import SYSTEM_ACTOR, NewAccessEvent
from omni_secrets.observability import alert_catalog
from omni_secrets.observability.alert_catalog import REVOKED_ALERT, ROTATE_ALERT
from omni_secrets.observability.alerts import Alert
from omni_secrets.observability.metrics import OmniMetrics, gsm_event_label
from omni_secrets.service.gsm_events.events import (
    ActiveVersionRevoked,
    CandidatesInstalled,
    EventResult,
    GsmMessageDismissed,
    GsmMessageDuplicate,
    GsmMessageFailed,
    GsmMessageHandled,
    GsmRotationRequested,
    RevocationCleared,
    RevocationClearNotStored,
    ServedVersionRevoked,
    SignalStored,
)
from omni_secrets.service.messagebus import Reactions

log = structlog.get_logger("omni_secrets.gsm_events")
signals_log = structlog.get_logger("omni_secrets.signals")


class _Alerts(Protocol):
    """The alert dispatcher as these reactions use it."""

    def trigger(self, alert: Alert) -> object: ...

    def resolve(self, name: str, subject: str) -> object: ...


class _CountedMessage(Protocol):
    """A message outcome: the labels it is counted under."""

    @property
    def event_type(self) -> str | None: ...

    @property
    def result(self) -> EventResult: ...


def gsm_events_reactions(
    *,
    alerts: _Alerts,
    auditor: BackgroundAudit,
    metrics: OmniMetrics,
    publish: Publish,
    environment: str,
) -> Reactions:
    """The GSM events feature's reaction table (the event service's and the signals').

    Args:
        alerts: triggers and resolves the alerts.
        auditor: queues the ``rotation_alert`` row.
        metrics: the event counter and the candidate gauge.
        publish: tells the other replicas a signal row changed; never raises.
        environment: for the alerts' details.
    """

    def count(event: _CountedMessage) -> None:
        metrics.gsm_events.labels(gsm_event_label(event.event_type), event.result).inc()

    def alert_revoked(event: ActiveVersionRevoked) -> None:
        alerts.trigger(
            alert_catalog.version_revoked(
                environment,
                secret_type=event.secret_type.value,
                message=event.message,
                event_type=event.event_type,
                version=event.version,
                confirmed=event.confirmed,
            )
        )

    def alert_rotation(event: GsmRotationRequested) -> None:
        alerts.trigger(alert_catalog.rotation_requested(environment, event.secret_type.value))

    def audit_rotation(event: GsmRotationRequested) -> None:
        auditor.record_later(rotation_alert_row(event))

    def resolve_revoked(event: RevocationCleared) -> None:
        alerts.resolve(REVOKED_ALERT, event.secret_type.value)

    async def announce(_event: SignalStored) -> None:
        await publish(KIND_GSM_SIGNAL)

    def candidate_gauge(event: CandidatesInstalled) -> None:
        for secret_type, available in event.available:
            metrics.rotation_candidate_available.labels(secret_type.value).set(
                1 if available else 0
            )

    return {
        GsmMessageDismissed: [log_dismissed, count],
        GsmMessageDuplicate: [log_duplicate, count],
        GsmMessageFailed: [log_failed, count],
        GsmMessageHandled: [log_handled, count],
        ActiveVersionRevoked: [alert_revoked],
        GsmRotationRequested: [alert_rotation, audit_rotation],
        ServedVersionRevoked: [log_served_version_revoked],
        RevocationCleared: [log_revocation_cleared, resolve_revoked],
        RevocationClearNotStored: [log_clear_not_stored],
        SignalStored: [announce],
        CandidatesInstalled: [candidate_gauge],
    }


def rotation_alert_row(event: GsmRotationRequested) -> NewAccessEvent:
    """The ``rotation_alert`` audit row of a ``SECRET_ROTATE`` message."""
    return NewAccessEvent(
        occurred_at=event.at,
        secret_type=event.secret_type.value,
        action="rotation_alert",
        actor=SYSTEM_ACTOR,
        result="success",
        duration_ms=None,
        correlation_id=None,
        details={
            "alert": ROTATE_ALERT,
            "source": "gsm_event",
            "eventType": event.event_type,
            "messageId": event.message_id,
        },
    )


def log_dismissed(event: GsmMessageDismissed) -> None:
    log.info(
        "gsm_event.dismissed",
        message_id=event.message_id,
        event_type=event.event_type,
        result=event.result,
        reason=event.reason,
    )


def log_duplicate(event: GsmMessageDuplicate) -> None:
    log.info("gsm_event.duplicate", message_id=event.message_id)


def log_failed(event: GsmMessageFailed) -> None:
    log.warning(
        "gsm_event.failed",
        message_id=event.message_id,
        event_type=event.event_type,
        secret_type=event.secret_type.value,
        error_type=event.error_type,
    )


def log_handled(event: GsmMessageHandled) -> None:
    log.info(
        "gsm_event.handled",
        message_id=event.message_id,
        event_type=event.event_type,
        secret_type=event.secret_type.value,
        version=event.version,
        result=event.result,
    )


def log_served_version_revoked(event: ServedVersionRevoked) -> None:
    signals_log.warning(
        "signal.revoked",
        secret_type=event.secret_type.value,
        version=event.version,
        code=event.code,
    )


def log_revocation_cleared(event: RevocationCleared) -> None:
    signals_log.info("signal.revocation_cleared", secret_type=event.secret_type.value)


def log_clear_not_stored(event: RevocationClearNotStored) -> None:
    signals_log.warning("signal.clear_not_stored", error_type=event.error_type)
