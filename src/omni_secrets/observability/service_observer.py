"""The observer bootstrap installs: service events → Prometheus samples and the log redactor."""

from __future__ import annotations

from omni_secrets.domain.observations import (
    OperationFailed,
    SecretRead,
    ServiceEvent,
    ValueRetired,
    ValueSeen,
)
from omni_secrets.observability.logging import Redactor
from omni_secrets.observability.metrics import OmniMetrics


class MetricsAndRedaction:
    """Counts reads and failures in ``metrics``; registers every value seen with ``redactor`` and
    forgets every value retired.

    Args:
        metrics: the process's metrics.
        redactor: the log redactor every structlog line passes through.
    """

    def __init__(self, metrics: OmniMetrics, redactor: Redactor) -> None:
        self._metrics = metrics
        self._redactor = redactor

    def on_event(self, event: ServiceEvent) -> None:
        match event:
            case ValueSeen(value=value):
                self._redactor.register(value.reveal())
            case ValueRetired(value=value):
                self._redactor.forget(value.reveal())
            case SecretRead(secret_type=secret_type, source=source, ok=ok):
                self._metrics.reads.labels(
                    secret_type, source, "success" if ok else "failure"
                ).inc()
            case OperationFailed(secret_type=secret_type, operation=operation, reason=reason):
                self._metrics.record_failure(secret_type, operation, reason)
