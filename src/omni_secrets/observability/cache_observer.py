"""Turns cache events into metrics, alerts and audit rows (the cache itself knows none of them).

- ``RefreshFailed`` → ``omni_secret_failures_total{operation=hydrate|refresh, reason}``; at
  ``OMNI_ALERT_CONSECUTIVE_FAILURES`` consecutive failures of a type, the ``gsm_failures`` alert
  triggers (critical when a required type is no longer served, else error); a ``refresh`` or
  ``hydrate`` audit row with result ``failure``.
- ``Refreshed`` → resolves ``gsm_failures`` for the type; an audit row with the version read.
- ``Hydrated`` → ``omni_secret_cache_hydration_duration_seconds``; a ``hydrate`` audit row.
- ``OverrideInstalled``/``OverrideEnded`` → ``omni_secret_break_glass_active``.
- Every event → one ``cache.*`` log line (:mod:`omni_secrets.observability.cache_log`).
"""

from __future__ import annotations

from omni_secrets.domain.audit_trail import BackgroundAudit
from omni_secrets.domain.cache.events import (
    CacheEvent,
    Hydrated,
    OverrideEnded,
    OverrideInstalled,
    Refreshed,
    RefreshFailed,
)
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.models import SYSTEM_ACTOR, NewAccessEvent
from omni_secrets.observability import alert_catalog
from omni_secrets.observability.alert_catalog import GSM_FAILURES_ALERT
from omni_secrets.observability.alerts import AlertDispatcher
from omni_secrets.observability.cache_log import log_cache_event
from omni_secrets.observability.metrics import OmniMetrics


class CacheObserver:
    """A ``CacheListener`` that feeds metrics, alerts and the audit trail."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        metrics: OmniMetrics,
        alerts: AlertDispatcher,
        auditor: BackgroundAudit,
        clock: Clock,
        alert_after_failures: int,
    ) -> None:
        self._catalog = catalog
        self._metrics = metrics
        self._alerts = alerts
        self._auditor = auditor
        self._clock = clock
        self._threshold = alert_after_failures

    def on_event(self, event: CacheEvent) -> None:
        log_cache_event(event)
        if isinstance(event, RefreshFailed):
            self._on_failure(event)
        elif isinstance(event, Refreshed):
            self._alerts.resolve(GSM_FAILURES_ALERT, event.secret_type.value)
            self._audit(
                event.operation.value,
                event.secret_type.value,
                "success",
                event.duration_seconds,
                {"version": event.version, "previousVersion": event.previous_version},
            )
        elif isinstance(event, Hydrated):
            self._metrics.hydration_duration.observe(event.duration_seconds)
            self._audit(
                "hydrate",
                None,
                "success" if not event.failed else "failure",
                event.duration_seconds,
                {
                    "state": event.state.value,
                    "loaded": [t.value for t in event.loaded],
                    "failed": [t.value for t in event.failed],
                },
            )
        elif isinstance(event, OverrideInstalled):
            self._metrics.break_glass_active.labels(event.secret_type.value).set(1)
        elif isinstance(event, OverrideEnded):
            self._metrics.break_glass_active.labels(event.secret_type.value).set(0)

    def _on_failure(self, event: RefreshFailed) -> None:
        secret_type = event.secret_type.value
        self._metrics.record_failure(secret_type, event.operation.value, event.reason)
        self._audit(
            event.operation.value,
            secret_type,
            "failure",
            event.duration_seconds,
            {
                "reason": event.reason,
                "transient": event.transient,
                "serving": event.serving,
                "consecutiveFailures": event.consecutive_failures,
            },
        )
        if event.consecutive_failures >= self._threshold:
            self._alerts.trigger(
                alert_catalog.gsm_failures(
                    secret_type,
                    reason=event.reason,
                    consecutive_failures=event.consecutive_failures,
                    serving=event.serving,
                    transient=event.transient,
                    required=self._catalog.entry(event.secret_type).required,
                )
            )

    def _audit(
        self,
        action: str,
        secret_type: str | None,
        result: str,
        duration_seconds: float,
        details: dict[str, object],
    ) -> None:
        self._auditor.record_later(
            NewAccessEvent.model_validate(
                {
                    "occurred_at": self._clock.now(),
                    "secret_type": secret_type,
                    "action": action,
                    "actor": SYSTEM_ACTOR,
                    "result": result,
                    "duration_ms": int(duration_seconds * 1000),
                    "details": details,
                }
            )
        )
