"""Alerts: the Alert value, dedup keys, the log sink and the background dispatcher."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from omni_secrets.domain.clock import ManualClock
from omni_secrets.observability.alerts import (
    Alert,
    AlertDispatcher,
    AlertEvent,
    LogAlertSink,
    dedup_key,
)
from omni_secrets.testing import RecordingAlertSink

OVERDUE = Alert(
    name="rotation_overdue",
    subject="api_credentials",
    severity="critical",
    summary="ApeX API credentials are overdue for rotation",
    details={"daysOverdue": 3},
)


class Outcomes:
    """Counts on_outcome calls like omni_alerts_sent_total would."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def __call__(self, alert: str, action: str, result: str) -> None:
        self.counts[(alert, action, result)] += 1


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sink() -> RecordingAlertSink:
    return RecordingAlertSink()


@pytest.fixture
def outcomes() -> Outcomes:
    return Outcomes()


@pytest.fixture
async def dispatcher(
    sink: RecordingAlertSink, clock: ManualClock, outcomes: Outcomes
) -> AsyncIterator[AlertDispatcher]:
    dispatcher = AlertDispatcher("test", [sink], clock, outcomes)
    dispatcher.start()
    yield dispatcher
    sink.release()
    await dispatcher.stop()


async def _until_attempted(sink: RecordingAlertSink, count: int) -> None:
    # Yield to the dispatcher task until it has handed `count` events to the sink; bounded so a
    # bug fails the test instead of hanging it.
    for _ in range(1000):
        if len(sink.attempted) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"sink saw {len(sink.attempted)} events, expected {count}")


class TestAlert:
    def test_rejects_unknown_severity(self) -> None:
        """Only PagerDuty's four severities are accepted."""
        with pytest.raises(ValueError, match="severity"):
            Alert("x", "y", "fatal", "s")  # type: ignore[arg-type]

    def test_rejects_empty_name_or_subject(self) -> None:
        """The dedup key needs both a name and a subject."""
        with pytest.raises(ValueError, match="name and a subject"):
            Alert("", "y", "info", "s")
        with pytest.raises(ValueError, match="name and a subject"):
            Alert("x", "", "info", "s")

    def test_details_are_frozen_copies(self) -> None:
        """Mutating the caller's dict later does not change the alert, nor can the alert's."""
        details: dict[str, str | int | float | bool | None] = {"count": 3}
        alert = Alert("x", "y", "info", "s", details)
        details["count"] = 4
        assert alert.details["count"] == 3
        with pytest.raises(TypeError):
            alert.details["count"] = 5  # type: ignore[index]


class TestDedupKey:
    def test_format(self) -> None:
        """The key is omni-secrets/<env>/<name>/<subject>."""
        assert dedup_key("production", "rotation_overdue", "api_credentials") == (
            "omni-secrets/production/rotation_overdue/api_credentials"
        )

    def test_long_keys_are_shortened_stably_and_distinctly(self) -> None:
        """Keys over 255 characters are cut to 255 with a hash suffix that tells them apart."""
        first = dedup_key("test", "x" * 300, "a")
        again = dedup_key("test", "x" * 300, "a")
        other = dedup_key("test", "x" * 300, "b")
        assert len(first) == 255
        assert first == again
        assert first != other


class TestLogAlertSink:
    async def test_trigger_and_resolve_lines(self, clock: ManualClock) -> None:
        """A trigger logs alert.triggered at the severity's level, a resolve logs alert.resolved."""
        key = dedup_key("test", OVERDUE.name, OVERDUE.subject)
        sink = LogAlertSink()
        with capture_logs() as logs:
            await sink.deliver(AlertEvent("trigger", OVERDUE, key, "test", clock.now()))
            await sink.deliver(AlertEvent("resolve", OVERDUE, key, "test", clock.now()))
        triggered, resolved = logs
        assert triggered["event"] == "alert.triggered"
        assert triggered["log_level"] == "error"
        assert triggered["alert"] == "rotation_overdue"
        assert triggered["subject"] == "api_credentials"
        assert triggered["severity"] == "critical"
        assert triggered["dedup_key"] == key
        assert triggered["details"] == {"daysOverdue": 3}
        assert resolved["event"] == "alert.resolved"
        assert resolved["log_level"] == "info"


class TestAlertDispatcher:
    async def test_trigger_is_delivered_with_its_dedup_key(
        self,
        dispatcher: AlertDispatcher,
        sink: RecordingAlertSink,
        clock: ManualClock,
        outcomes: Outcomes,
    ) -> None:
        """A trigger reaches the sink with the stable key, environment and raise time."""
        raised_at = clock.now()
        assert dispatcher.trigger(OVERDUE)
        clock.advance(60)
        await dispatcher.flush()
        [event] = sink.delivered
        assert event.action == "trigger"
        assert event.alert == OVERDUE
        assert event.dedup_key == "omni-secrets/test/rotation_overdue/api_credentials"
        assert event.environment == "test"
        assert event.occurred_at == raised_at
        assert outcomes.counts == {("rotation_overdue", "trigger", "success"): 1}

    async def test_log_sink_is_always_installed(self, clock: ManualClock) -> None:
        """With no remote sink, the alert still goes to the log."""
        dispatcher = AlertDispatcher("test", [], clock)
        dispatcher.start()
        with capture_logs() as logs:
            dispatcher.trigger(OVERDUE)
            await dispatcher.flush()
        await dispatcher.stop()
        assert [entry["event"] for entry in logs] == ["alert.triggered"]

    async def test_trigger_returns_before_delivery(
        self, dispatcher: AlertDispatcher, sink: RecordingAlertSink, outcomes: Outcomes
    ) -> None:
        """trigger() only enqueues: it returns while the sink is still parked."""
        sink.hold()
        assert dispatcher.trigger(OVERDUE)
        await _until_attempted(sink, 1)
        assert sink.delivered == []
        assert not outcomes.counts
        sink.release()
        await dispatcher.flush()
        assert len(sink.delivered) == 1

    async def test_repeated_trigger_at_same_severity_is_not_resent(
        self, dispatcher: AlertDispatcher, sink: RecordingAlertSink
    ) -> None:
        """An alert already active at the same severity is suppressed."""
        assert dispatcher.trigger(OVERDUE)
        assert not dispatcher.trigger(OVERDUE)
        await dispatcher.flush()
        assert len(sink.delivered) == 1

    async def test_severity_change_is_resent(
        self, dispatcher: AlertDispatcher, sink: RecordingAlertSink
    ) -> None:
        """Escalating an active alert's severity sends a new trigger on the same key."""
        warning = Alert(OVERDUE.name, OVERDUE.subject, "warning", "due soon")
        assert dispatcher.trigger(warning)
        assert dispatcher.trigger(OVERDUE)
        await dispatcher.flush()
        assert [e.alert.severity for e in sink.delivered] == ["warning", "critical"]
        assert len({e.dedup_key for e in sink.delivered}) == 1

    async def test_resolve_of_inactive_alert_is_not_sent(
        self, dispatcher: AlertDispatcher, sink: RecordingAlertSink, outcomes: Outcomes
    ) -> None:
        """A resolve for an alert never triggered sends nothing."""
        assert not dispatcher.resolve("rotation_overdue", "api_credentials")
        await dispatcher.flush()
        assert sink.attempted == []
        assert not outcomes.counts

    async def test_resolve_uses_the_trigger_dedup_key_once(
        self, dispatcher: AlertDispatcher, sink: RecordingAlertSink, outcomes: Outcomes
    ) -> None:
        """Trigger then resolve share the key; a second resolve is suppressed."""
        dispatcher.trigger(OVERDUE)
        assert dispatcher.resolve(OVERDUE.name, OVERDUE.subject)
        assert not dispatcher.resolve(OVERDUE.name, OVERDUE.subject)
        await dispatcher.flush()
        trigger, resolve = sink.delivered
        assert (trigger.action, resolve.action) == ("trigger", "resolve")
        assert trigger.dedup_key == resolve.dedup_key
        assert resolve.alert == OVERDUE
        assert dispatcher.active() == {}
        assert outcomes.counts == {
            ("rotation_overdue", "trigger", "success"): 1,
            ("rotation_overdue", "resolve", "success"): 1,
        }

    async def test_failed_trigger_is_resent_on_the_next_trigger(
        self, dispatcher: AlertDispatcher, sink: RecordingAlertSink, outcomes: Outcomes
    ) -> None:
        """After a failed delivery the same trigger is sent again instead of suppressed."""
        sink.fail_next()
        dispatcher.trigger(OVERDUE)
        await dispatcher.flush()
        assert dispatcher.trigger(OVERDUE)
        assert not dispatcher.trigger(OVERDUE)
        await dispatcher.flush()
        assert len(sink.attempted) == 2
        assert len(sink.delivered) == 1
        assert outcomes.counts == {
            ("rotation_overdue", "trigger", "failure"): 1,
            ("rotation_overdue", "trigger", "success"): 1,
        }

    async def test_failed_resolve_is_resent_on_the_next_resolve(
        self, dispatcher: AlertDispatcher, sink: RecordingAlertSink
    ) -> None:
        """A resolve that failed is sent again by the next resolve call, then suppressed."""
        dispatcher.trigger(OVERDUE)
        await dispatcher.flush()
        sink.fail_next()
        dispatcher.resolve(OVERDUE.name, OVERDUE.subject)
        await dispatcher.flush()
        assert dispatcher.resolve(OVERDUE.name, OVERDUE.subject)
        await dispatcher.flush()
        assert not dispatcher.resolve(OVERDUE.name, OVERDUE.subject)
        assert [e.action for e in sink.delivered] == ["trigger", "resolve"]

    async def test_full_queue_drops_with_log_and_outcome(
        self, sink: RecordingAlertSink, clock: ManualClock, outcomes: Outcomes
    ) -> None:
        """A full queue drops the event: logged, counted, and not marked active."""
        dispatcher = AlertDispatcher("test", [sink], clock, outcomes, queue_size=1)
        dispatcher.start()
        sink.hold()
        first = Alert("audit_write_failed", "audit", "critical", "audit down")
        second = Alert("break_glass_active", "api_secret", "warning", "override on")
        dispatcher.trigger(first)
        await _until_attempted(sink, 1)
        assert dispatcher.trigger(second)
        with capture_logs() as logs:
            assert not dispatcher.trigger(OVERDUE)
        [dropped] = [entry for entry in logs if entry["event"] == "alert.dropped"]
        assert (dropped["alert"], dropped["why"]) == ("rotation_overdue", "queue_full")
        assert outcomes.counts[("rotation_overdue", "trigger", "dropped")] == 1
        assert OVERDUE.name not in str(dispatcher.active())
        sink.release()
        await dispatcher.flush()
        # Not marked active, so the next trigger goes out.
        assert dispatcher.trigger(OVERDUE)
        await dispatcher.flush()
        assert [e.alert.name for e in sink.delivered] == [
            "audit_write_failed",
            "break_glass_active",
            "rotation_overdue",
        ]
        await dispatcher.stop()

    async def test_stop_drains_the_queue(
        self, sink: RecordingAlertSink, clock: ManualClock, outcomes: Outcomes
    ) -> None:
        """Events queued before stop() are still delivered within the drain timeout."""
        dispatcher = AlertDispatcher("test", [sink], clock, outcomes)
        dispatcher.start()
        dispatcher.trigger(OVERDUE)
        dispatcher.resolve(OVERDUE.name, OVERDUE.subject)
        await dispatcher.stop()
        assert [e.action for e in sink.delivered] == ["trigger", "resolve"]

    async def test_stop_without_drain_reports_undelivered_as_dropped(
        self, sink: RecordingAlertSink, clock: ManualClock, outcomes: Outcomes
    ) -> None:
        """With a parked sink and no drain time, in-flight and queued events count as dropped."""
        dispatcher = AlertDispatcher("test", [sink], clock, outcomes, drain_timeout_seconds=0)
        dispatcher.start()
        sink.hold()
        dispatcher.trigger(OVERDUE)
        await _until_attempted(sink, 1)
        dispatcher.resolve(OVERDUE.name, OVERDUE.subject)
        await dispatcher.stop()
        assert sink.delivered == []
        assert outcomes.counts == {
            ("rotation_overdue", "trigger", "dropped"): 1,
            ("rotation_overdue", "resolve", "dropped"): 1,
        }
        assert not dispatcher.trigger(OVERDUE)
        assert outcomes.counts[("rotation_overdue", "trigger", "dropped")] == 2

    async def test_broken_sink_and_hook_do_not_stop_delivery(
        self, sink: RecordingAlertSink, clock: ManualClock
    ) -> None:
        """A sink raising a bug and a failing outcome hook leave the other sinks working."""

        class BrokenSink:
            async def deliver(self, event: AlertEvent) -> None:
                raise KeyError("fake-bug")

        def broken_hook(alert: str, action: str, result: str) -> None:
            raise RuntimeError("metrics down")

        dispatcher = AlertDispatcher("test", [BrokenSink(), sink], clock, broken_hook)
        dispatcher.start()
        with capture_logs() as logs:
            dispatcher.trigger(OVERDUE)
            await dispatcher.flush()
        await dispatcher.stop()
        assert len(sink.delivered) == 1
        [failed] = [entry for entry in logs if entry["event"] == "alert.delivery_failed"]
        assert (failed["sink"], failed["error"]) == ("BrokenSink", "KeyError")
        assert "fake-bug" not in repr(logs)
        assert any(entry["event"] == "alert.outcome_hook_failed" for entry in logs)

    async def test_lifecycle_misuse_raises(self, clock: ManualClock) -> None:
        """flush() before start() and a second start() are programming errors."""
        dispatcher = AlertDispatcher("test", [], clock)
        with pytest.raises(RuntimeError, match="not running"):
            await dispatcher.flush()
        dispatcher.start()
        with pytest.raises(RuntimeError, match="started once"):
            dispatcher.start()
        await dispatcher.stop()
