"""Contract section 9 through the real app on PostgreSQL: rows written by someone without the
integrity key are never served, are counted in ``omni_integrity_violations_total`` and page."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, pool, text

from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.bootstrap import Overrides
from omni_secrets.domain.break_glass import seal_payload
from omni_secrets.testing import FakePagerDutyServer
from tests.contract.conftest import BreakGlassKeys, StackFactory
from tests.contract.test_breakglass_api import (
    BREAK_GLASS,
    SCOPE,
    STATUS,
    metric,
    sealed_request,
    status_of,
)
from tests.integration.db.conftest import PostgresDatabases

pytestmark = pytest.mark.postgres
FAKE_ROUTING_KEY = "fakepagerdutyroutingkey000000000"
FORGED_VALUE = "fake-forged-api-secret-5e1d"
NO_PERIODIC_RECONCILE = Overrides(reconcile_interval_seconds=3600)


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    databases = PostgresDatabases(postgres_url)
    try:
        yield databases.create()
    finally:
        databases.close()


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDutyServer]:
    with FakePagerDutyServer() as server:
        yield server


def integrity_pages(server: FakePagerDutyServer) -> list[dict[str, object]]:
    return [
        event
        for event in server.events
        if "/integrity_violation/" in str(event.get("dedup_key"))
        and event.get("event_action") == "trigger"
    ]


class TestForgedRowsAreNotServed:
    async def test_override_inserted_straight_into_the_table_is_ignored_and_pages(
        self,
        fresh_postgres_url: str,
        omni_stack_factory: StackFactory,
        break_glass_keys: BreakGlassKeys,
        integrity_key_file: str,
        pagerduty: FakePagerDutyServer,
    ) -> None:
        """A validly sealed override INSERTed by a database writer is never served."""
        stack = await omni_stack_factory(
            database_url=fresh_postgres_url,
            overrides=NO_PERIODIC_RECONCILE,
            OMNI_INTEGRITY_KEY_FILE=integrity_key_file,
            OMNI_PAGERDUTY_EVENTS_URL=pagerduty.events_url,
            OMNI_PAGERDUTY_ROUTING_KEY=FAKE_ROUTING_KEY,
            **break_glass_keys.env(),
        )
        now = datetime.now(UTC)
        ciphertext = seal_payload(
            break_glass_keys.public_key, secret_type="api_secret", value=FORGED_VALUE, issued_at=now
        )
        nonce = base64.b64encode(uuid.uuid4().bytes).decode()
        engine = create_engine(sync_url(fresh_postgres_url), poolclass=pool.NullPool)
        with engine.begin() as conn:  # the attacker: the table's public key is public
            conn.execute(
                text("INSERT INTO omni_break_glass_nonces (nonce, used_at) VALUES (:n, :t)"),
                {"n": nonce, "t": now},
            )
            conn.execute(
                text(
                    "INSERT INTO omni_break_glass_overrides (override_id, secret_type, key_id,"
                    " ciphertext, nonce, actor, reason, activated_at, expires_at) VALUES"
                    " ('forged-1', 'api_secret', :k, :c, :n, 'mallory', 'x', :a, :e)"
                ),
                {
                    "k": break_glass_keys.key_id,
                    "c": ciphertext,
                    "n": nonce,
                    "a": now,
                    "e": now + timedelta(minutes=29),
                },
            )
        engine.dispose()
        await stack.services.reconcile.reconcile_now()

        status = (await stack.request("GET", STATUS)).json()
        secret = status_of(status, "api_secret")
        assert secret["breakGlass"] == {"active": False}
        assert secret["cacheSource"] == "gsm"
        metrics = (await stack.client.get("/metrics")).text
        assert (
            metric(metrics, "omni_integrity_violations_total", table="omni_break_glass_overrides")
            == 1
        )
        assert metric(metrics, "omni_secret_break_glass_active", secret_type="api_secret") == 0
        assert await pagerduty.wait_for_requests_async(1)
        (page,) = integrity_pages(pagerduty)
        assert page["payload"]["severity"] == "critical"  # type: ignore[index]
        assert "forged-1" in str(page["dedup_key"])
        await stack.services.reconcile.reconcile_now()  # seen again: not counted or paged twice
        metrics = (await stack.client.get("/metrics")).text
        assert (
            metric(metrics, "omni_integrity_violations_total", table="omni_break_glass_overrides")
            == 1
        )

    async def test_forged_pin_fails_its_type_closed(
        self,
        fresh_postgres_url: str,
        omni_stack_factory: StackFactory,
        integrity_key_file: str,
        pagerduty: FakePagerDutyServer,
    ) -> None:
        """A pin edited in SQL drops its type: lastError INTEGRITY_VIOLATION, counted, paged."""
        stack = await omni_stack_factory(
            database_url=fresh_postgres_url,
            overrides=NO_PERIODIC_RECONCILE,
            OMNI_INTEGRITY_KEY_FILE=integrity_key_file,
            OMNI_PAGERDUTY_EVENTS_URL=pagerduty.events_url,
            OMNI_PAGERDUTY_ROUTING_KEY=FAKE_ROUTING_KEY,
        )
        before = status_of((await stack.request("GET", STATUS)).json(), "api_key")
        assert before["cacheSource"] == "gsm" and before["lastError"] is None
        engine = create_engine(sync_url(fresh_postgres_url), poolclass=pool.NullPool)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE omni_secret_metadata SET rotation_due_at = rotation_due_at"
                    " + interval '3650 days' WHERE secret_type = 'api_key'"
                )
            )
        engine.dispose()
        await stack.services.reconcile.reconcile_now()

        body = (await stack.request("GET", STATUS)).json()
        secret = status_of(body, "api_key")
        assert secret["cacheSource"] == "none"
        assert secret["lastError"]["code"] == "INTEGRITY_VIOLATION"
        assert body["cache"]["state"] == "degraded"
        assert status_of(body, "api_secret")["cacheSource"] == "gsm"
        metrics = (await stack.client.get("/metrics")).text
        assert metric(metrics, "omni_integrity_violations_total", table="omni_secret_metadata") == 1
        assert await pagerduty.wait_for_requests_async(1)
        assert any(
            "omni_secret_metadata/api_key" in str(p["dedup_key"])
            for p in integrity_pages(pagerduty)
        )

    async def test_override_activated_through_the_api_is_served_by_another_replica(
        self,
        fresh_postgres_url: str,
        omni_stack_factory: StackFactory,
        break_glass_keys: BreakGlassKeys,
        integrity_key_file: str,
    ) -> None:
        """A genuine activation is signed: a second replica with the same key serves it."""
        env = {"OMNI_INTEGRITY_KEY_FILE": integrity_key_file, **break_glass_keys.env()}
        first = await omni_stack_factory(
            database_url=fresh_postgres_url, overrides=NO_PERIODIC_RECONCILE, **env
        )
        second = await omni_stack_factory(
            database_url=fresh_postgres_url, overrides=NO_PERIODIC_RECONCILE, **env
        )
        response = await first.request(
            "POST", BREAK_GLASS, json=sealed_request(break_glass_keys), scopes=SCOPE
        )
        assert response.status_code == 201, response.text
        await second.services.reconcile.reconcile_now()
        secret = status_of((await second.request("GET", STATUS)).json(), "api_secret")
        assert secret["breakGlass"]["active"] is True
        assert secret["cacheSource"] == "break_glass"
        metrics = (await second.client.get("/metrics")).text
        assert (
            metric(metrics, "omni_integrity_violations_total", table="omni_break_glass_overrides")
            == 0
        )

    async def test_without_a_key_nothing_is_checked(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """Outside production with no key, unsigned pins are served (documented behaviour)."""
        stack = await omni_stack_factory(database_url=fresh_postgres_url)
        body = (await stack.request("GET", STATUS)).json()
        assert body["cache"]["state"] == "ready"
        metrics = (await stack.client.get("/metrics")).text
        assert metric(metrics, "omni_integrity_violations_total", table="omni_secret_metadata") == 0
