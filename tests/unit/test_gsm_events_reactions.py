"""What follows each GSM events feature event: the log lines (names and fields as operators know
them), the counter and gauge, the alerts, the ``rotation_alert`` row and the peer announcement;
and the services that emit them import none of that machinery."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

import omni_secrets.service.gsm_events as gsm_events_package
import omni_secrets.service.refresh as refresh_package
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.models import NewAccessEvent
from omni_secrets.observability.alerts import Alert
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.service.gsm_events.events import (
    ActiveVersionRevoked,
    CandidatesInstalled,
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
from omni_secrets.service.gsm_events.reactions import gsm_events_reactions
from omni_secrets.service.messagebus import Dispatcher

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
API_SECRET = SecretType.API_SECRET


class RecordingAlerts:
    def __init__(self) -> None:
        self.triggered: list[Alert] = []
        self.resolved: list[tuple[str, str]] = []

    def trigger(self, alert: Alert) -> bool:
        self.triggered.append(alert)
        return True

    def resolve(self, name: str, subject: str) -> bool:
        self.resolved.append((name, subject))
        return True


class RecordingAudit:
    def __init__(self) -> None:
        self.rows: list[NewAccessEvent] = []

    def record_later(self, event: NewAccessEvent) -> None:
        self.rows.append(event)


class Rig:
    def __init__(self) -> None:
        self.alerts = RecordingAlerts()
        self.audit = RecordingAudit()
        self.registry = CollectorRegistry()
        self.metrics = OmniMetrics(self.registry, [t.value for t in Catalog().types])
        self.published: list[str] = []

        async def publish(kind: str) -> None:
            self.published.append(kind)

        self.bus = Dispatcher(
            [
                gsm_events_reactions(
                    alerts=self.alerts,
                    auditor=self.audit,
                    metrics=self.metrics,
                    publish=publish,
                    environment="test",
                )
            ]
        )

    def counted(self, event_type: str, result: str) -> float | None:
        return self.registry.get_sample_value(
            "omni_gsm_events_total", {"event_type": event_type, "result": result}
        )

    async def logs_of(self, event: object) -> list[dict[str, Any]]:
        with capture_logs() as logs:
            await self.bus.emit(event)
        return logs


class TestMessageOutcomes:
    async def test_each_outcome_logs_its_line_and_is_counted(self) -> None:
        """The four outcomes keep their ``gsm_event.*`` lines and fields, and count once each."""
        rig = Rig()
        cases: list[tuple[object, dict[str, Any], tuple[str, str]]] = [
            (
                GsmMessageDismissed("m-1", None, "rejected", "no eventType attribute"),
                {
                    "event": "gsm_event.dismissed",
                    "log_level": "info",
                    "message_id": "m-1",
                    "event_type": None,
                    "result": "rejected",
                    "reason": "no eventType attribute",
                },
                ("OTHER", "rejected"),
            ),
            (
                GsmMessageDuplicate("m-2", "SECRET_VERSION_ADD"),
                {"event": "gsm_event.duplicate", "log_level": "info", "message_id": "m-2"},
                ("SECRET_VERSION_ADD", "duplicate"),
            ),
            (
                GsmMessageFailed(
                    "m-3", "SECRET_VERSION_DISABLE", API_SECRET, "DatabaseUnavailable"
                ),
                {
                    "event": "gsm_event.failed",
                    "log_level": "warning",
                    "message_id": "m-3",
                    "event_type": "SECRET_VERSION_DISABLE",
                    "secret_type": "api_secret",
                    "error_type": "DatabaseUnavailable",
                },
                ("SECRET_VERSION_DISABLE", "failed"),
            ),
            (
                GsmMessageHandled("m-4", "SECRET_VERSION_DISABLE", API_SECRET, "1", "applied"),
                {
                    "event": "gsm_event.handled",
                    "log_level": "info",
                    "message_id": "m-4",
                    "event_type": "SECRET_VERSION_DISABLE",
                    "secret_type": "api_secret",
                    "version": "1",
                    "result": "applied",
                },
                ("SECRET_VERSION_DISABLE", "applied"),
            ),
        ]
        for event, line, labels in cases:
            assert await rig.logs_of(event) == [line]
            assert rig.counted(*labels) == 1.0


class TestActing:
    async def test_a_revocation_triggers_the_critical_alert(self) -> None:
        """``active_version_revoked`` with the catalog's wording and details; no log line."""
        rig = Rig()
        event = ActiveVersionRevoked(
            API_SECRET, "SECRET_VERSION_DISABLE", "1", "x version 1 is DISABLED in GSM", False
        )
        assert await rig.logs_of(event) == []
        (alert,) = rig.alerts.triggered
        assert (alert.name, alert.subject, alert.severity) == (
            "active_version_revoked",
            "api_secret",
            "critical",
        )
        assert alert.details["confirmed"] is False
        assert alert.details["environment"] == "test"

    async def test_a_rotate_event_alerts_then_queues_the_rotation_alert_row(self) -> None:
        """``rotation_requested`` (warning) and the ``rotation_alert`` row as before."""
        rig = Rig()
        await rig.bus.emit(GsmRotationRequested(API_SECRET, "SECRET_ROTATE", "m-9", AT))
        (alert,) = rig.alerts.triggered
        assert (alert.name, alert.severity) == ("rotation_requested", "warning")
        (row,) = rig.audit.rows
        assert row == NewAccessEvent(
            occurred_at=AT,
            secret_type="api_secret",
            action="rotation_alert",
            actor="system",
            result="success",
            duration_ms=None,
            correlation_id=None,
            details={
                "alert": "rotation_requested",
                "source": "gsm_event",
                "eventType": "SECRET_ROTATE",
                "messageId": "m-9",
            },
        )


class TestSignals:
    async def test_signal_lines_keep_their_names_and_fields(self) -> None:
        """``signal.revoked``, ``signal.revocation_cleared``, ``signal.clear_not_stored``."""
        rig = Rig()
        revoked = await rig.logs_of(ServedVersionRevoked(API_SECRET, "1", "VERSION_DISABLED"))
        assert revoked == [
            {
                "event": "signal.revoked",
                "log_level": "warning",
                "secret_type": "api_secret",
                "version": "1",
                "code": "VERSION_DISABLED",
            }
        ]
        cleared = await rig.logs_of(RevocationCleared(API_SECRET))
        assert cleared == [
            {"event": "signal.revocation_cleared", "log_level": "info", "secret_type": "api_secret"}
        ]
        assert rig.alerts.resolved == [("active_version_revoked", "api_secret")]
        not_stored = await rig.logs_of(RevocationClearNotStored("DatabaseUnavailable"))
        assert not_stored == [
            {
                "event": "signal.clear_not_stored",
                "log_level": "warning",
                "error_type": "DatabaseUnavailable",
            }
        ]

    async def test_a_stored_signal_is_announced_and_candidates_set_the_gauge(self) -> None:
        """``gsm_signal`` to the other replicas; the candidate gauge per type, 1 or 0."""
        rig = Rig()
        await rig.bus.emit(SignalStored(API_SECRET))
        assert rig.published == ["gsm_signal"]
        await rig.bus.emit(CandidatesInstalled(((API_SECRET, True), (SecretType.API_KEY, False))))
        gauge = "omni_secret_rotation_candidate_available"
        assert rig.registry.get_sample_value(gauge, {"secret_type": "api_secret"}) == 1.0
        assert rig.registry.get_sample_value(gauge, {"secret_type": "api_key"}) == 0.0


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
    return found


def test_the_deciding_modules_import_no_logging_metrics_alerts_or_notifier() -> None:
    """Decide, then react: what follows an event lives in ``reactions.py`` only."""
    forbidden = ("structlog", "omni_secrets.observability", "omni_secrets.adapters")
    deciding = [
        Path(gsm_events_package.__file__).parent / "service.py",
        Path(gsm_events_package.__file__).parent / "signals.py",
        Path(refresh_package.__file__).parent / "service.py",
    ]
    for path in deciding:
        imported = _imported_modules(path)
        assert imported, path
        assert not [m for m in imported if m.startswith(forbidden)], path
