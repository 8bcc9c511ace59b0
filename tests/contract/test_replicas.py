"""Contract section 12 on two app instances sharing ONE throwaway PostgreSQL database.

Replica registry and status ``replica``; cluster-wide refresh (request and per-replica results in
the database, any replica answers); GSM events handed to one replica's event service (the
Pub/Sub transport itself is covered end to end in ``tests/integration/test_pubsub_e2e.py``).
The periodic reconcile is an hour, so only the notifier can explain the other replica catching
up. Each stack has its own GSM emulator, seeded alike (so both hold version 1 of every secret).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from omni_secrets.bootstrap import Overrides
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.gsm_events import RawGsmMessage
from tests.contract.conftest import PROJECT, OmniStack, StackFactory
from tests.integration.db.conftest import PostgresDatabases

pytestmark = pytest.mark.postgres
REFRESH = "/internal/apex-omni/secrets/cache/refresh"
STATUS = "/ops/apex-omni/secrets/status"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/omni-gsm-events"
SECRET_ID = "apex-omni-api-secret"


class IdleSubscriber:
    """Stands in for the Pub/Sub subscriber: the tests hand messages to the service directly."""

    def __init__(self, **kwargs: Any) -> None:
        self.on_connected = kwargs["on_connected"]

    def start(self) -> None:
        self.on_connected(True)

    async def stop(self) -> None:
        self.on_connected(False)


OVERRIDES = Overrides(
    reconcile_interval_seconds=3600,
    heartbeat_interval_seconds=0.2,
    pubsub_subscriber_factory=IdleSubscriber,  # type: ignore[arg-type]
)


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    databases = PostgresDatabases(postgres_url)
    try:
        yield databases.create()
    finally:
        databases.close()


async def two_replicas(factory: StackFactory, url: str) -> tuple[OmniStack, OmniStack]:
    env = {"OMNI_PUBSUB_SUBSCRIPTION": SUBSCRIPTION}
    a = await factory(database_url=url, overrides=OVERRIDES, **env)
    b = await factory(database_url=url, overrides=OVERRIDES, **env)
    await a.wait_for(lambda: peers(a) == 1, timeout=5, what="A sees B")
    return a, b


def peers(stack: OmniStack) -> int:
    replicas = stack.services.replicas
    assert replicas is not None
    return replicas.peers


def gsm_message(event_type: str, version: str | None, message_id: str) -> RawGsmMessage:
    secret = f"projects/{PROJECT}/secrets/{SECRET_ID}"
    attrs = {"eventType": event_type, "secretId": secret, "dataFormat": "JSON_API_V1"}
    name = secret
    if version is not None:
        name = attrs["versionId"] = f"{secret}/versions/{version}"
    data = json.dumps({"name": name}).encode()
    return RawGsmMessage(message_id=message_id, attributes=attrs, data=data)


async def deliver(stack: OmniStack, message: RawGsmMessage) -> str:
    events = stack.services.gsm_events
    assert events is not None
    handled = await events.handle(message)
    return handled.result


async def secret_status(
    stack: OmniStack, secret_type: str = SecretType.API_SECRET.value
) -> dict[str, Any]:
    response = await stack.request("GET", STATUS, scopes=("omni-secrets:read",))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return next(s for s in body["secrets"] if s["secretType"] == secret_type)


class TestReplicaRegistry:
    async def test_status_names_the_replica_and_counts_its_peers(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """Each replica has its own id and counts the other as a peer; events shows the feed."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url)
        body_a = (await a.request("GET", STATUS)).json()
        body_b = (await b.request("GET", STATUS)).json()
        assert body_a["replica"]["peers"] == 1
        assert body_b["replica"]["peers"] == 1
        assert body_a["replica"]["id"] != body_b["replica"]["id"]
        assert body_a["events"]["subscription"] == SUBSCRIPTION
        assert body_a["events"]["connected"] is True
        assert body_a["events"]["lastEventAt"] is None


class TestClusterRefresh:
    async def test_a_refresh_on_one_replica_runs_on_both_and_either_answers(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """POST on A refreshes B too; GET on B shows both replicas' results and succeeded."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url)
        before_b = b.services.cache.describe(SecretType.API_KEY).last_fetched_at
        posted = await a.request("POST", REFRESH, json={"secretTypes": ["api_key"]})
        assert posted.status_code == 202
        request_id = posted.json()["requestId"]

        deadline = time.monotonic() + 5
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = (await b.request("GET", f"{REFRESH}/{request_id}")).json()
            if body["status"] not in ("queued", "running"):
                break
        assert body["status"] == "succeeded", body
        ids = {r["replicaId"] for r in body["replicas"]}
        assert ids == {a.services.replicas.replica_id, b.services.replicas.replica_id}  # type: ignore[union-attr]
        assert all(r["status"] == "succeeded" for r in body["replicas"])
        assert body["results"] == [
            {"secretType": "api_key", "ok": True, "version": "1", "error": None}
        ]
        assert body["completedAt"] is not None
        after_b = b.services.cache.describe(SecretType.API_KEY).last_fetched_at
        assert before_b is not None and after_b is not None and after_b > before_b

    async def test_succeeded_only_when_every_live_replica_succeeded(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """With B's GSM down, A succeeds and B fails: the aggregate is partial, not succeeded."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url)
        b.emulator.fail_next("AccessSecretVersion", "PERMISSION_DENIED", count=100)
        posted = await a.request("POST", REFRESH, json={"secretTypes": ["api_key"]})
        request_id = posted.json()["requestId"]
        deadline = time.monotonic() + 5
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = (await a.request("GET", f"{REFRESH}/{request_id}")).json()
            if body["status"] not in ("queued", "running"):
                break
        assert body["status"] == "partial", body
        by_replica = {r["replicaId"]: r for r in body["replicas"]}
        assert by_replica[b.services.replicas.replica_id]["status"] == "failed"  # type: ignore[union-attr]
        assert by_replica[b.services.replicas.replica_id]["results"][0]["error"] == (  # type: ignore[union-attr]
            "PERMISSION_DENIED"
        )
        assert body["results"][0]["ok"] is False

    async def test_unknown_request_is_404_on_any_replica(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """An id no replica issued is 404 NOT_FOUND."""
        _, b = await two_replicas(omni_stack_factory, fresh_postgres_url)
        response = await b.request("GET", f"{REFRESH}/no-such-request")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"


class TestGsmEvents:
    async def test_a_confirmed_disable_stops_both_replicas_within_a_second(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """DISABLE of the active version, confirmed by GSM: A and B stop serving it at once."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url)
        a.emulator.disable(PROJECT, SECRET_ID, 1)
        b.emulator.disable(PROJECT, SECRET_ID, 1)
        started = time.perf_counter()
        assert await deliver(a, gsm_message("SECRET_VERSION_DISABLE", "1", "m-1")) == "applied"
        assert a.services.cache.get(SecretType.API_SECRET) is None
        await b.wait_for(
            lambda: b.services.cache.get(SecretType.API_SECRET) is None,
            timeout=1.0,
            what="B stops serving",
        )
        print(f"B stopped serving {1000 * (time.perf_counter() - started):.0f} ms after")
        for stack in (a, b):
            status = await secret_status(stack)
            assert status["cacheSource"] == "none"
            assert status["lastError"]["code"] == "VERSION_DISABLED"
        alerts = a.services.alerts.active()
        assert any(key.endswith("/active_version_revoked/api_secret") for key in alerts)
        account = await a.request("GET", "/apex-omni/account", scopes=("apex-omni:read",))
        assert account.status_code == 503
        assert "api_secret" in account.json()["error"]["details"]["missing"]

        # Re-enabled in GSM: ENABLE refreshes on both replicas, and both serve again.
        a.emulator.enable(PROJECT, SECRET_ID, 1)
        b.emulator.enable(PROJECT, SECRET_ID, 1)
        assert await deliver(a, gsm_message("SECRET_VERSION_ENABLE", "1", "m-2")) == "applied"
        for stack in (a, b):
            await stack.wait_for(
                lambda s=stack: s.services.cache.get(SecretType.API_SECRET) is not None,  # type: ignore[misc]
                timeout=3.0,
                what="serving again",
            )
        assert not any(
            k.endswith("/active_version_revoked/api_secret") for k in a.services.alerts.active()
        )

    async def test_an_event_gsm_contradicts_changes_nothing(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """A forged DISABLE (GSM says ENABLED) is unconfirmed: both replicas keep serving."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url)
        assert await deliver(a, gsm_message("SECRET_VERSION_DISABLE", "1", "m-1")) == "unconfirmed"
        assert a.services.cache.get(SecretType.API_SECRET) is not None
        assert b.services.cache.get(SecretType.API_SECRET) is not None
        assert (await secret_status(a))["lastError"] is None

    async def test_gsm_unreachable_fails_closed_and_says_so(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """DISABLE while GSM cannot be asked: fail closed, lastError says it was not confirmed."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url)
        a.emulator.fail_next("ListSecretVersions", "UNAVAILABLE", count=100)
        assert await deliver(a, gsm_message("SECRET_VERSION_DISABLE", "1", "m-1")) == "applied"
        await b.wait_for(
            lambda: b.services.cache.get(SecretType.API_SECRET) is None, timeout=1.0, what="B"
        )
        error = (await secret_status(a))["lastError"]
        assert error["code"] == "VERSION_DISABLED"
        assert "not confirmed" in error["message"]

    async def test_version_add_shows_the_candidate_on_both_replicas(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """SECRET_VERSION_ADD: rotation.candidateVersion and the gauge on A and B; still v1."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url)
        a.emulator.add_version(PROJECT, "apex-omni-api-secret", "fake-api-secret-candidate-v2")
        assert await deliver(a, gsm_message("SECRET_VERSION_ADD", "2", "m-1")) == "applied"
        assert await deliver(a, gsm_message("SECRET_VERSION_ADD", "2", "m-1")) == "duplicate"
        for stack in (a, b):
            await stack.wait_for(
                lambda s=stack: (
                    s.services.signals.candidate_version(SecretType.API_SECRET)  # type: ignore[misc,union-attr]
                    == "2"
                ),
                timeout=1.0,
                what="candidate",
            )
            status = await secret_status(stack)
            assert status["rotation"]["candidateVersion"] == "2"
            assert status["version"] == "1"
            metrics = (await stack.client.get("/metrics")).text
            assert (
                'omni_secret_rotation_candidate_available{secret_type="api_secret"} 1.0' in metrics
            )
        metrics = (await a.client.get("/metrics")).text
        assert (
            'omni_gsm_events_total{event_type="SECRET_VERSION_ADD",result="applied"} 1.0' in metrics
        )
        assert (
            'omni_gsm_events_total{event_type="SECRET_VERSION_ADD",result="duplicate"} 1.0'
            in metrics
        )

    async def test_break_glass_still_wins_over_a_revocation(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory, break_glass_keys: Any
    ) -> None:
        """An active override keeps being served after the GSM version is revoked."""
        from tests.contract.test_breakglass_api import BREAK_GLASS, SCOPE, sealed_request

        env = {"OMNI_PUBSUB_SUBSCRIPTION": SUBSCRIPTION, **break_glass_keys.env()}
        a = await omni_stack_factory(database_url=fresh_postgres_url, overrides=OVERRIDES, **env)
        activated = await a.request(
            "POST", BREAK_GLASS, scopes=SCOPE, json=sealed_request(break_glass_keys)
        )
        assert activated.status_code == 201
        a.emulator.disable(PROJECT, SECRET_ID, 1)
        assert await deliver(a, gsm_message("SECRET_VERSION_DISABLE", "1", "m-1")) == "applied"
        served = a.services.cache.get(SecretType.API_SECRET)
        assert served is not None and served.source.value == "break_glass"
        status = await secret_status(a)
        assert status["cacheSource"] == "break_glass"
        assert status["lastError"]["code"] == "VERSION_DISABLED"

    async def test_rotate_alerts_and_audits(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """SECRET_ROTATE: alert rotation_requested (warning) and a rotation_alert audit row."""
        a, _ = await two_replicas(omni_stack_factory, fresh_postgres_url)
        assert await deliver(a, gsm_message("SECRET_ROTATE", None, "m-1")) == "applied"
        alerts = a.services.alerts.active()
        key = next(k for k in alerts if k.endswith("/rotation_requested/api_secret"))
        assert alerts[key].severity == "warning"

        async def audited() -> bool:
            async with a.services.uow_factory() as uow:
                rows = await uow.audit.recent(50)
            return any(r.action == "rotation_alert" and r.secret_type == "api_secret" for r in rows)

        deadline = time.monotonic() + 5
        while not await audited():
            assert time.monotonic() < deadline, "no rotation_alert audit row"
            await a.wait_for(lambda: True)
