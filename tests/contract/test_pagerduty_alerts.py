"""GSM-failure alerts reach PagerDuty through the real app (design.md "Alerts", field notes).

The app runs with ``OMNI_PAGERDUTY_EVENTS_URL`` pointing at a :class:`FakePagerDutyServer` and an
obviously fake routing key; GSM failures are injected in the emulator and refreshes are driven
through the internal refresh endpoint or the cache. The sink's retry backoff sleep is recorded
instead of waited out (``Overrides.pagerduty_sleep``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from omni_secrets.bootstrap import Overrides
from omni_secrets.domain.catalog import SecretType
from omni_secrets.testing import FakePagerDutyServer
from tests.contract.conftest import CANARIES, OmniStack, StackFactory

FAKE_ROUTING_KEY = "fakepagerdutyroutingkey000000000"
DEDUP_KEY = "omni-secrets/test/gsm_failures/api_key"
REFRESH = "/internal/apex-omni/secrets/cache/refresh"
STATUS = "/ops/apex-omni/secrets/status"
# More injected failures than any test drives: every fetch fails until the faults are cleared,
# whoever runs it (a test's refresh or the cache's own background retry).
PERSISTENT = 1000


class SleepRecorder:
    """Stands in for asyncio.sleep in the PagerDuty sink: records the backoff, yields once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDutyServer]:
    with FakePagerDutyServer() as server:
        yield server


@pytest.fixture
def backoff() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def stack(
    omni_stack_factory: StackFactory, pagerduty: FakePagerDutyServer, backoff: SleepRecorder
) -> AsyncIterator[OmniStack]:
    assert len(FAKE_ROUTING_KEY) == 32
    built = await omni_stack_factory(
        OMNI_PAGERDUTY_EVENTS_URL=pagerduty.events_url,
        OMNI_PAGERDUTY_ROUTING_KEY=FAKE_ROUTING_KEY,
        overrides=Overrides(registry=CollectorRegistry(), pagerduty_sleep=backoff),
    )
    yield built
    pagerduty.release()  # never leave the app's shutdown waiting on a parked delivery


async def refresh_via_api(stack: OmniStack, *types: str) -> dict[str, Any]:
    """POST the internal refresh endpoint and poll until the request completed."""
    queued = await stack.request(
        "POST", REFRESH, json={"secretTypes": list(types)}, scopes=("omni-secrets:refresh",)
    )
    assert queued.status_code == 202
    request_id = queued.json()["requestId"]
    for _ in range(500):
        polled = await stack.request(
            "GET", f"{REFRESH}/{request_id}", scopes=("omni-secrets:refresh",)
        )
        body: dict[str, Any] = polled.json()
        if body["status"] not in ("queued", "running"):
            return body
        await asyncio.sleep(0.01)
    raise AssertionError("refresh request did not complete")


async def fail_api_key(stack: OmniStack, times: int) -> None:
    """Make every GSM access fail UNAVAILABLE and run ``times`` refreshes of api_key."""
    await stack.services.cache.stop()  # only these refreshes read GSM
    stack.emulator.fail_next("AccessSecretVersion", "UNAVAILABLE", PERSISTENT)
    for _ in range(times):
        outcome = await stack.services.cache.refresh([SecretType.API_KEY])
        assert not outcome[SecretType.API_KEY].ok


def alerts_sent(stack: OmniStack, action: str, result: str) -> float:
    value = stack.services.metrics.registry.get_sample_value(
        "omni_alerts_sent_total", {"alert": "gsm_failures", "action": action, "result": result}
    )
    return value or 0.0


def assert_no_canary(pagerduty: FakePagerDutyServer) -> None:
    raw = json.dumps([r.body for r in pagerduty.requests])
    for canary in CANARIES:
        assert canary not in raw


class TestGsmFailureAlert:
    async def test_three_failures_trigger_once_and_recovery_resolves(
        self, stack: OmniStack, pagerduty: FakePagerDutyServer
    ) -> None:
        """3 consecutive failures → one trigger with the documented fields; recovery → resolve."""
        # Only the refreshes below read GSM: no background retry can straddle clear_faults().
        await stack.services.cache.stop()
        stack.emulator.fail_next("AccessSecretVersion", "UNAVAILABLE", PERSISTENT)
        for _ in range(5):
            result = await refresh_via_api(stack, "api_key")
            assert result["status"] == "failed"
            assert result["results"][0]["error"] == "UNAVAILABLE"
        await stack.services.alerts.flush()

        assert len(pagerduty.requests) == 1
        trigger = pagerduty.events[0]
        assert trigger["routing_key"] == FAKE_ROUTING_KEY
        assert trigger["event_action"] == "trigger"
        assert trigger["dedup_key"] == DEDUP_KEY
        payload = trigger["payload"]
        assert "api_key" in payload["summary"] and "UNAVAILABLE" in payload["summary"]
        assert payload["source"] == "omni-secrets/test/omni-test"
        assert payload["severity"] == "error"  # still served from the cache: not yet critical
        assert payload["component"] == "omni-secrets"
        assert payload["group"] == "test"
        assert payload["class"] == "gsm_failures"
        details = payload["custom_details"]
        assert details["secret_type"] == "api_key"
        assert details["reason"] == "UNAVAILABLE"
        assert details["consecutive_failures"] == 3  # sent when the threshold was reached
        assert details["still_serving"] is True
        assert payload["timestamp"].endswith("Z")
        assert pagerduty.requests[0].content_type == "application/json"

        stack.emulator.clear_faults()
        result = await refresh_via_api(stack, "api_key")
        assert result["status"] == "succeeded"
        await stack.services.alerts.flush()

        assert [e["event_action"] for e in pagerduty.events] == ["trigger", "resolve"]
        resolve = pagerduty.events[1]
        assert resolve["dedup_key"] == DEDUP_KEY
        assert resolve["routing_key"] == FAKE_ROUTING_KEY
        assert "payload" not in resolve
        assert alerts_sent(stack, "trigger", "success") == 1
        assert alerts_sent(stack, "resolve", "success") == 1
        assert_no_canary(pagerduty)

    async def test_two_failures_do_not_page(
        self, stack: OmniStack, pagerduty: FakePagerDutyServer
    ) -> None:
        """Below OMNI_ALERT_CONSECUTIVE_FAILURES nothing is sent, and a success resets the count."""
        # Exact fault counts: the cache's own background retries must not consume them.
        await stack.services.cache.stop()
        stack.emulator.fail_next("AccessSecretVersion", "UNAVAILABLE", 6)  # 2 fetches x 3 attempts
        for _ in range(2):
            assert (await refresh_via_api(stack, "api_key"))["status"] == "failed"
        assert (await refresh_via_api(stack, "api_key"))["status"] == "succeeded"
        stack.emulator.fail_next("AccessSecretVersion", "UNAVAILABLE", 6)
        for _ in range(2):
            assert (await refresh_via_api(stack, "api_key"))["status"] == "failed"
        await stack.services.alerts.flush()
        assert pagerduty.requests == []

    async def test_500_twice_then_delivered_on_the_third_try(
        self, stack: OmniStack, pagerduty: FakePagerDutyServer, backoff: SleepRecorder
    ) -> None:
        """PagerDuty answering 500 twice gets the same event a third time, after backoff."""
        pagerduty.respond_with(500, 500)
        await fail_api_key(stack, 3)
        await stack.services.alerts.flush()
        assert [r.status for r in pagerduty.requests] == [500, 500, 202]
        bodies = [r.body for r in pagerduty.requests]
        assert bodies[0] == bodies[1] == bodies[2]
        assert bodies[2]["event_action"] == "trigger"
        assert backoff.delays == [1.0, 2.0]
        assert alerts_sent(stack, "trigger", "success") == 1
        assert alerts_sent(stack, "trigger", "failure") == 0

    async def test_400_is_not_retried(
        self, stack: OmniStack, pagerduty: FakePagerDutyServer, backoff: SleepRecorder
    ) -> None:
        """A 400 (invalid event) is final: one request, no backoff, counted as a failure."""
        pagerduty.respond_with(400)
        await fail_api_key(stack, 3)
        await stack.services.alerts.flush()
        assert [r.status for r in pagerduty.requests] == [400]
        assert backoff.delays == []
        assert alerts_sent(stack, "trigger", "failure") == 1
        assert alerts_sent(stack, "trigger", "success") == 0

    async def test_request_path_not_slowed_while_pagerduty_hangs(
        self, stack: OmniStack, pagerduty: FakePagerDutyServer
    ) -> None:
        """With the receiver parked, status and refresh requests still complete at once."""
        pagerduty.hold()
        await fail_api_key(stack, 3)
        assert await pagerduty.wait_for_requests_async(1)
        # The receiver never answers until released: wait_for only guards against a hang.
        status = await asyncio.wait_for(stack.request("GET", STATUS), timeout=5)
        queued = await asyncio.wait_for(
            stack.request("POST", REFRESH, json={}, scopes=("omni-secrets:refresh",)), timeout=5
        )
        ready = await asyncio.wait_for(stack.client.get("/readyz"), timeout=5)
        assert status.status_code == 200
        assert queued.status_code == 202
        assert ready.status_code == 200  # the old value is still within its TTL
        assert len(pagerduty.requests) == 1  # the delivery is still parked
        pagerduty.release()
        await stack.services.alerts.flush()
        assert [e["event_action"] for e in pagerduty.events] == ["trigger"]
