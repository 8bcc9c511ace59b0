"""Fault injection through the real app (design.md "Reliability bars").

Each GSM error class, GSM latency past the deadline, checksum corruption, the database down (at
start and mid-run) and PagerDuty down: the service stays up, status answers 200, ``/readyz`` says
503 with a reason exactly when a required type or the database is missing, and nothing crashes.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omni_secrets.bootstrap import Overrides
from omni_secrets.catalog_seed import seed_catalog
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import ManualClock, SystemClock
from omni_secrets.testing import FakeSecretStore, InMemoryUnitOfWorkFactory
from tests.contract.conftest import CANARIES, FAKE_VALUES, OmniStack, StackFactory


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


STATUS = "/ops/apex-omni/secrets/status"
REFRESH = "/internal/apex-omni/secrets/cache/refresh"
ACCOUNT = "/apex-omni/account"
AUDIT_ALERT_KEY = "omni-secrets/test/audit_write_failures/audit"
PERSISTENT = 1000  # more faults than any test uses up; cleared explicitly
TRANSIENT = ["UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL"]
PERMANENT = ["PERMISSION_DENIED", "NOT_FOUND", "FAILED_PRECONDITION"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the socket is


async def seeded_in_memory_database() -> InMemoryUnitOfWorkFactory:
    factory = InMemoryUnitOfWorkFactory()
    await seed_catalog(
        factory,
        Catalog(),
        project_id="omni-test",
        store=None,
        clock=SystemClock(),
        rotation_period_days=365,
    )
    return factory


async def status_of(stack: OmniStack) -> dict[str, Any]:
    response = await stack.request("GET", STATUS)
    assert response.status_code == 200
    for canary in CANARIES:
        assert canary not in response.text
    body: dict[str, Any] = response.json()
    return body


def metric(stack: OmniStack, name: str, **labels: str) -> float:
    return stack.services.metrics.registry.get_sample_value(name, labels) or 0.0


class TestGsmFaults:
    @pytest.mark.parametrize("code", TRANSIENT)
    async def test_transient_error_keeps_serving(self, omni_stack: OmniStack, code: str) -> None:
        """A transient GSM error keeps the cached value: status ready, readyz 200, ApeX works."""
        await omni_stack.services.cache.stop()  # only the refresh below touches GSM
        omni_stack.emulator.fail_next("AccessSecretVersion", code, PERSISTENT)
        outcome = await omni_stack.services.cache.refresh([SecretType.API_KEY])
        assert outcome[SecretType.API_KEY].error is not None
        assert outcome[SecretType.API_KEY].error.code == code

        body = await status_of(omni_stack)
        api_key = body["secrets"][0]
        assert body["cache"]["state"] == "ready"
        assert api_key["cacheSource"] == "gsm"
        assert api_key["lastError"]["code"] == code
        assert (await omni_stack.client.get("/readyz")).status_code == 200
        assert (await omni_stack.request("GET", ACCOUNT)).status_code == 200
        assert (
            metric(
                omni_stack,
                "omni_secret_failures_total",
                secret_type="api_key",
                operation="refresh",
                reason=code,
            )
            == 1
        )

    @pytest.mark.parametrize("code", PERMANENT)
    async def test_permanent_error_fails_closed(self, omni_stack: OmniStack, code: str) -> None:
        """A permanent GSM error drops the type: degraded, readyz 503 naming it, ApeX 503."""
        await omni_stack.services.cache.stop()
        omni_stack.emulator.fail_next("AccessSecretVersion", code, PERSISTENT)
        await omni_stack.services.cache.refresh([SecretType.API_KEY])

        body = await status_of(omni_stack)
        assert body["cache"]["state"] == "degraded"
        assert body["secrets"][0]["cacheSource"] == "none"
        assert body["secrets"][0]["lastError"]["code"] == code
        ready = await omni_stack.client.get("/readyz")
        assert ready.status_code == 503
        assert "api_key" in ready.json()["reason"]
        account = await omni_stack.request("GET", ACCOUNT)
        assert account.status_code == 503
        assert account.json()["error"]["details"]["missing"] == ["api_key"]

        # The 503 kicked a background refresh (FR-012); let it fail before GSM recovers, so the
        # refresh below cannot join a fetch that started while the faults were still there.
        await omni_stack.services.cache.refresh([SecretType.API_KEY])
        omni_stack.emulator.clear_faults()
        await omni_stack.services.cache.refresh([SecretType.API_KEY])
        assert (await omni_stack.client.get("/readyz")).status_code == 200

    async def test_checksum_corruption_is_transient(self, omni_stack: OmniStack) -> None:
        """A corrupted payload checksum is refused and the previous value stays served."""
        await omni_stack.services.cache.stop()
        omni_stack.emulator.corrupt_checksum_next(PERSISTENT)
        outcome = await omni_stack.services.cache.refresh([SecretType.API_SECRET])
        assert not outcome[SecretType.API_SECRET].ok
        body = await status_of(omni_stack)
        assert body["secrets"][1]["lastError"]["code"] == "CHECKSUM_MISMATCH"
        assert body["secrets"][1]["cacheSource"] == "gsm"
        assert (await omni_stack.client.get("/readyz")).status_code == 200

    async def test_latency_past_the_deadline(self, omni_stack_factory: StackFactory) -> None:
        """GSM slower than the deadline: the refresh fails DEADLINE_EXCEEDED; requests go on."""
        stack = await omni_stack_factory(OMNI_GSM_TIMEOUT_SECONDS="0.2")
        await stack.services.cache.stop()
        stack.emulator.inject_latency("AccessSecretVersion", 1.0)
        queued = await stack.request("POST", REFRESH, json={"secretTypes": ["api_key"]})
        assert queued.status_code == 202
        request_id = queued.json()["requestId"]
        body = await status_of(stack)
        assert body["secrets"][0]["cacheSource"] == "gsm"
        # Status was answered while the refresh still hangs on GSM (3 attempts of 0.2 s).
        pending = (await stack.request("GET", f"{REFRESH}/{request_id}")).json()
        assert pending["status"] in ("queued", "running")

        result: dict[str, Any] = {}

        async def completed() -> bool:
            nonlocal result
            result = (await stack.request("GET", f"{REFRESH}/{request_id}")).json()
            return result["status"] not in ("queued", "running")

        for _ in range(300):
            if await completed():
                break
            await asyncio.sleep(0.02)
        assert result["status"] == "failed"
        assert result["results"][0]["error"] == "DEADLINE_EXCEEDED"
        assert (await stack.client.get("/readyz")).status_code == 200
        assert (
            metric(
                stack,
                "omni_gsm_request_duration_seconds_count",
                method="AccessSecretVersion",
                code="DEADLINE_EXCEEDED",
            )
            >= 1
        )
        stack.emulator.inject_latency("AccessSecretVersion", 0)


class TestDatabaseDown:
    async def test_down_mid_run(self, omni_stack_factory: StackFactory) -> None:
        """DB down: status 200, readyz 503 naming the DB; audit events are held in memory, not
        lost (contract section 10), and written in order when the database returns."""
        uow_factory = await seeded_in_memory_database()
        stack = await omni_stack_factory(overrides=Overrides(uow_factory=uow_factory))
        assert (await stack.client.get("/readyz")).status_code == 200
        await stack.wait_for(lambda: metric(stack, "omni_audit_queue_depth") == 0, what="idle")
        written_before = len(uow_factory.db.committed.events)

        uow_factory.db.unavailable = True
        body = await status_of(stack)
        assert body["cache"]["state"] == "ready"
        assert (await stack.request("GET", ACCOUNT)).status_code == 200
        refresh = await stack.request("POST", REFRESH, json={})
        assert refresh.status_code == 202
        await asyncio.sleep(1.05)  # /readyz reuses its database check for one second
        ready = await stack.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "unavailable"
        assert "database unavailable" in ready.json()["reason"]
        await stack.wait_for(
            lambda: metric(stack, "omni_audit_queue_depth") >= 2, what="events held"
        )
        assert metric(stack, "omni_audit_write_failures_total") == 0
        assert AUDIT_ALERT_KEY not in stack.services.alerts.active()

        uow_factory.db.unavailable = False
        await asyncio.sleep(1.05)
        assert (await stack.client.get("/readyz")).status_code == 200
        await stack.wait_for(
            lambda: metric(stack, "omni_audit_queue_depth") == 0, what="held events written"
        )
        actions = [e.action for e in uow_factory.db.committed.events[written_before:]]
        assert actions.index("status_view") < actions.index("cache_refresh_requested")
        assert metric(stack, "omni_audit_write_failures_total") == 0

    async def test_down_at_startup(self, omni_stack_factory: StackFactory) -> None:
        """DB down from the start: the app starts empty (fail closed), then heals on refresh."""
        uow_factory = await seeded_in_memory_database()
        uow_factory.db.unavailable = True
        stack = await omni_stack_factory(overrides=Overrides(uow_factory=uow_factory))
        await stack.services.cache.stop()  # the refreshes below are the only GSM reads

        body = await status_of(stack)
        assert body["cache"]["state"] == "empty"  # no pins, so nothing is approved to serve
        ready = await stack.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "unavailable", "cache": "empty"}
        account = await stack.request("GET", ACCOUNT)
        assert account.status_code == 503
        assert account.json()["error"]["code"] == "OMNI_SECRETS_UNAVAILABLE"

        await stack.services.cache.refresh()  # settles the refresh the 503 kicked off
        uow_factory.db.unavailable = False
        outcome = await stack.services.cache.refresh()
        assert all(o.ok for o in outcome.values())
        await asyncio.sleep(1.05)  # /readyz reuses its database check for one second
        assert (await stack.client.get("/readyz")).status_code == 200


class TestPagerDutyDown:
    async def test_closed_port(self, omni_stack_factory: StackFactory) -> None:
        """PagerDuty unreachable: the alert fails in the background, the service is unaffected."""
        delays: list[float] = []

        async def record(seconds: float) -> None:
            delays.append(seconds)

        stack = await omni_stack_factory(
            OMNI_PAGERDUTY_EVENTS_URL=f"http://127.0.0.1:{closed_port()}/v2/enqueue",
            OMNI_PAGERDUTY_ROUTING_KEY="fakepagerdutyroutingkey000000000",
            overrides=Overrides(pagerduty_sleep=record),
        )
        await stack.services.cache.stop()
        stack.emulator.fail_next("AccessSecretVersion", "UNAVAILABLE", PERSISTENT)
        for _ in range(3):
            await stack.services.cache.refresh([SecretType.API_KEY])
        assert (await stack.request("GET", STATUS)).status_code == 200
        assert (await stack.client.get("/readyz")).status_code == 200
        await stack.services.alerts.flush()
        assert delays == [1.0, 2.0, 4.0, 8.0]  # 5 attempts, bounded, never on a request
        labels = {"alert": "gsm_failures", "action": "trigger"}
        assert metric(stack, "omni_alerts_sent_total", **labels, result="failure") == 1
        assert metric(stack, "omni_alerts_sent_total", **labels, result="success") == 0
        assert (await stack.request("GET", STATUS)).status_code == 200


class TestSeededWithoutGsm:
    async def test_first_pin_takes_the_versions_create_time(
        self, omni_stack_factory: StackFactory
    ) -> None:
        """Seeded while GSM was unreachable (rotated "now"), the first pin records the version's
        create_time: a 200-day-old credential must not get a fresh 365 days."""
        created = datetime.now(UTC) - timedelta(days=200)
        store = FakeSecretStore(clock=ManualClock(created))
        store.seed({k: [v] for k, v in FAKE_VALUES.items()})
        uow_factory = await seeded_in_memory_database()
        stack = await omni_stack_factory(
            overrides=Overrides(uow_factory=uow_factory, secret_store=store)
        )
        body = await status_of(stack)
        for entry in body["secrets"]:
            assert entry["cacheSource"] == "gsm"
            rotation = entry["rotation"]
            assert parse_time(rotation["lastRotatedAt"]) == created
            assert parse_time(rotation["dueAt"]) == created + timedelta(days=365)
            assert rotation["daysUntilDue"] in (164, 165)
        async with uow_factory() as uow:
            rows = await uow.metadata.list_all()
        assert {row.active_version for row in rows} == {"1"}
        assert {row.last_rotated_at for row in rows} == {created}
