"""PagerDutySink and the alert dispatcher against a real local Events API v2 receiver."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from structlog.testing import capture_logs

from omni_secrets.adapters.pagerduty import PagerDutySink
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import AlertDeliveryFailed
from omni_secrets.observability.alerts import Alert, AlertDispatcher, AlertEvent, dedup_key
from omni_secrets.testing import FakePagerDutyServer

ROUTING_KEY = "fake-routing-key-000000000000000"
RAISED_AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ALERT = Alert(
    name="gsm_consecutive_failures",
    subject="api_secret",
    severity="error",
    summary="GSM reads of api_secret failed 3 times in a row",
    details={"consecutiveFailures": 3, "lastReason": "UNAVAILABLE"},
)
KEY = dedup_key("test", ALERT.name, ALERT.subject)


def _event(action: str = "trigger", alert: Alert = ALERT) -> AlertEvent:
    return AlertEvent(action, alert, KEY, "test", RAISED_AT)  # type: ignore[arg-type]


class Sleeps:
    """An injected backoff sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDutyServer]:
    with FakePagerDutyServer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def sink(pagerduty: FakePagerDutyServer, http: httpx.AsyncClient, sleeps: Sleeps) -> PagerDutySink:
    return PagerDutySink(
        ROUTING_KEY,
        pagerduty.events_url,
        http,
        "omni-secrets-test-host",
        max_attempts=3,
        sleep=sleeps,
    )


class TestPagerDutySink:
    async def test_trigger_carries_the_documented_fields(
        self, sink: PagerDutySink, pagerduty: FakePagerDutyServer
    ) -> None:
        """A trigger posts routing key, action, dedup key and the full payload as JSON."""
        await sink.deliver(_event())
        [request] = pagerduty.requests
        assert (request.method, request.path, request.status) == ("POST", "/v2/enqueue", 202)
        assert request.content_type == "application/json"
        assert request.body == {
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": "omni-secrets/test/gsm_consecutive_failures/api_secret",
            "payload": {
                "summary": ALERT.summary,
                "source": "omni-secrets-test-host",
                "severity": "error",
                "component": "omni-secrets",
                "group": "test",
                "class": "gsm_consecutive_failures",
                "custom_details": {
                    "consecutiveFailures": 3,
                    "lastReason": "UNAVAILABLE",
                    "alert": "gsm_consecutive_failures",
                    "subject": "api_secret",
                    "environment": "test",
                },
                "timestamp": "2026-11-25T10:00:00Z",
            },
        }

    async def test_resolve_uses_the_same_dedup_key(
        self, sink: PagerDutySink, pagerduty: FakePagerDutyServer
    ) -> None:
        """A resolve carries the trigger's dedup key and no payload."""
        await sink.deliver(_event("trigger"))
        await sink.deliver(_event("resolve"))
        trigger, resolve = pagerduty.events
        assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": KEY}
        assert resolve["dedup_key"] == trigger["dedup_key"]

    async def test_long_summary_is_cut_to_1024(
        self, sink: PagerDutySink, pagerduty: FakePagerDutyServer
    ) -> None:
        """A summary over PagerDuty's limit is shortened so the event is not rejected."""
        long_alert = Alert(ALERT.name, ALERT.subject, "info", "x" * 5000)
        await sink.deliver(_event(alert=long_alert))
        [event] = pagerduty.events
        assert len(event["payload"]["summary"]) == 1024

    async def test_500_twice_then_delivered_on_the_third_try(
        self, sink: PagerDutySink, pagerduty: FakePagerDutyServer, sleeps: Sleeps
    ) -> None:
        """Two 500s are retried with exponential backoff and the third attempt succeeds."""
        pagerduty.respond_with(500, 500)
        await sink.deliver(_event())
        assert [r.status for r in pagerduty.requests] == [500, 500, 202]
        assert sleeps.delays == [1.0, 2.0]

    async def test_400_is_not_retried(
        self, sink: PagerDutySink, pagerduty: FakePagerDutyServer, sleeps: Sleeps
    ) -> None:
        """An invalid event fails after exactly one request."""
        pagerduty.respond_with(400)
        with pytest.raises(AlertDeliveryFailed) as caught:
            await sink.deliver(_event())
        assert len(pagerduty.requests) == 1
        assert sleeps.delays == []
        assert caught.value.details == {"httpStatus": 400, "attempts": 1, "error": None}

    async def test_429_and_network_errors_are_retried(
        self, sink: PagerDutySink, pagerduty: FakePagerDutyServer, sleeps: Sleeps
    ) -> None:
        """A throttle and a dropped connection are retried like 5xx."""
        pagerduty.respond_with(429, 0)
        await sink.deliver(_event())
        assert [r.status for r in pagerduty.requests] == [429, 0, 202]
        assert len(pagerduty.events) == 1

    async def test_gives_up_after_max_attempts(
        self, sink: PagerDutySink, pagerduty: FakePagerDutyServer, sleeps: Sleeps
    ) -> None:
        """Persistent 503s stop after max_attempts with a failure naming the last status."""
        pagerduty.respond_with(503, 503, 503, 503)
        with pytest.raises(AlertDeliveryFailed) as caught:
            await sink.deliver(_event())
        assert len(pagerduty.requests) == 3
        assert sleeps.delays == [1.0, 2.0]
        assert caught.value.details["attempts"] == 3
        assert caught.value.details["httpStatus"] == 503

    def test_backoff_is_bounded(self, sink: PagerDutySink) -> None:
        """The wait doubles per attempt up to the configured maximum."""
        assert [sink.backoff_seconds(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [
            1.0,
            2.0,
            4.0,
            8.0,
            16.0,
            30.0,
            30.0,
        ]

    async def test_routing_key_never_in_logs_errors_or_repr(
        self, sink: PagerDutySink, pagerduty: FakePagerDutyServer
    ) -> None:
        """Retry log lines, the final error and the sink's repr never show the routing key."""
        pagerduty.respond_with(502, 0, 503)
        with capture_logs() as logs, pytest.raises(AlertDeliveryFailed) as caught:
            await sink.deliver(_event())
        assert [entry["event"] for entry in logs] == ["pagerduty.retry_scheduled"] * 2
        texts = [repr(logs), str(caught.value), repr(caught.value.details), repr(sink)]
        assert all(ROUTING_KEY not in text for text in texts)
        assert caught.value.__context__ is None
        assert caught.value.__cause__ is None

    async def test_unreachable_receiver_fails_with_network_error(
        self, http: httpx.AsyncClient, sleeps: Sleeps
    ) -> None:
        """Nothing listening: every attempt fails with a connection error, then it gives up."""
        with FakePagerDutyServer() as gone:
            url = gone.events_url
        sink = PagerDutySink(ROUTING_KEY, url, http, "host", max_attempts=2, sleep=sleeps)
        with pytest.raises(AlertDeliveryFailed) as caught:
            await sink.deliver(_event())
        assert caught.value.details == {"httpStatus": None, "attempts": 2, "error": "ConnectError"}


class TestDispatcherWithPagerDuty:
    @pytest.fixture
    def outcomes(self) -> Counter[tuple[str, str, str]]:
        return Counter()

    @pytest.fixture
    async def dispatcher(
        self, sink: PagerDutySink, outcomes: Counter[tuple[str, str, str]]
    ) -> AsyncIterator[AlertDispatcher]:
        def count(alert: str, action: str, result: str) -> None:
            outcomes[(alert, action, result)] += 1

        dispatcher = AlertDispatcher(
            "test", [sink], ManualClock(RAISED_AT), count, drain_timeout_seconds=0
        )
        dispatcher.start()
        yield dispatcher
        await dispatcher.stop()

    async def test_trigger_returns_while_the_receiver_hangs(
        self,
        dispatcher: AlertDispatcher,
        pagerduty: FakePagerDutyServer,
        outcomes: Counter[tuple[str, str, str]],
    ) -> None:
        """trigger() is synchronous and returns while PagerDuty holds the request unanswered."""
        pagerduty.hold()
        assert dispatcher.trigger(ALERT) is True
        # The background task got as far as PagerDuty, which has not answered yet...
        assert await pagerduty.wait_for_requests_async(1)
        assert not outcomes
        assert KEY in dispatcher.active()
        # ...and finishes once it does.
        pagerduty.release()
        await dispatcher.flush()
        assert outcomes == {(ALERT.name, "trigger", "success"): 1}
        assert pagerduty.events[0]["dedup_key"] == KEY

    async def test_outcomes_are_counted(
        self,
        dispatcher: AlertDispatcher,
        pagerduty: FakePagerDutyServer,
        outcomes: Counter[tuple[str, str, str]],
    ) -> None:
        """Each handled event reports (alert, action, result) once: success, failure, retry."""
        other = Alert("audit_write_failed", "audit", "critical", "audit writes fail")
        dispatcher.trigger(ALERT)
        await dispatcher.flush()
        pagerduty.respond_with(400)
        dispatcher.trigger(other)
        await dispatcher.flush()
        dispatcher.resolve(ALERT.name, ALERT.subject)
        # The failed trigger is sent again on the next trigger call.
        dispatcher.trigger(other)
        await dispatcher.flush()
        assert outcomes == {
            ("gsm_consecutive_failures", "trigger", "success"): 1,
            ("gsm_consecutive_failures", "resolve", "success"): 1,
            ("audit_write_failed", "trigger", "failure"): 1,
            ("audit_write_failed", "trigger", "success"): 1,
        }
        assert [(e["event_action"], e["dedup_key"]) for e in pagerduty.events] == [
            ("trigger", KEY),
            ("resolve", KEY),
            ("trigger", "omni-secrets/test/audit_write_failed/audit"),
        ]
