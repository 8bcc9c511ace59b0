"""Contract section 17, items 1-3, through the real app: the rows of issue 27's table.

Each test runs on SQLite and on PostgreSQL; on PostgreSQL the service and the attacker both
connect as the least-privilege runtime role ``db grants`` creates (it may UPDATE pins,
overrides and previews, which is exactly the threat). Every forged or replayed row must be not
served (or not committed), counted in ``omni_integrity_violations_total{table}`` and paged.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, select, text, update
from sqlalchemy.engine import make_url

from omni_secrets.adapters import integrity_keys
from omni_secrets.adapters.db import migrate, roles
from omni_secrets.adapters.db.engine import create_engine as create_async_engine
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.tables import secret_metadata
from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
from omni_secrets.bootstrap import Overrides
from omni_secrets.catalog_seed import seed_catalog
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import SystemClock
from omni_secrets.domain.integrity import (
    PIN_FIELDS,
    PIN_PURPOSE,
    IntegrityKeyring,
)
from omni_secrets.testing import FakePagerDutyServer
from tests.contract.conftest import PROJECT, BreakGlassKeys, OmniStack, StackFactory
from tests.contract.test_breakglass_api import BREAK_GLASS, SCOPE, metric, sealed_request, status_of
from tests.contract.test_rotation import (
    NEW_API,
    ROTATE,
    STATUS,
    add_versions,
    audit_rows,
    commit_path,
    preview,
    ready_api_preview,
)
from tests.integration.db.conftest import PostgresDatabases

FAKE_ROUTING_KEY = "fakepagerdutyroutingkey000000000"
NO_PERIODIC_RECONCILE = Overrides(reconcile_interval_seconds=3600)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Database:
    """Where the stack's database is and how to reach it as the attacker (the runtime role)."""

    backend: str
    url: str | None  # None: the stack's own SQLite file (known once the stack exists)
    seed: bool

    def attacker_url(self, stack: OmniStack) -> str:
        return sync_url(self.url or stack.database_url).render_as_string(hide_password=False)


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDutyServer]:
    with FakePagerDutyServer() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime_database(backend: str, request: pytest.FixtureRequest) -> Iterator[Database]:
    """SQLite: the stack's own file. PostgreSQL: a fresh database migrated by its owner, the
    runtime role granted exactly what ``serve`` needs (``db grants``), the service as that role."""
    if backend == "sqlite":
        yield Database("sqlite", None, seed=True)
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    role = f"omni_rt_{uuid.uuid4().hex[:8]}"
    admin = create_engine(sync_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    databases = PostgresDatabases(postgres_url)
    try:
        owner_url = databases.create()
        migrate.upgrade(owner_url)
        roles.apply(owner_url, roles.grant_statements(role))
        runtime = make_url(owner_url).set(username=role, password=None)
        yield Database("postgres", str(runtime.render_as_string(hide_password=False)), seed=False)
    finally:
        databases.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


async def seed_as_owner(database: Database, key_files: str) -> None:
    """The owner seeds the catalog (``db seed``; pins adopted at the first fetch)."""
    if database.backend != "postgres" or database.url is None:
        return
    owner = make_url(database.url).set(username="postgres").render_as_string(False)
    engine = create_async_engine(owner)
    try:
        keyring = integrity_keys.load_keyring(key_files.split(","))
        await seed_catalog(
            sql_unit_of_work_factory(engine, keyring=keyring),
            Catalog("apex-omni-"),
            project_id=PROJECT,
            store=None,
            clock=SystemClock(),
            rotation_period_days=90,
        )
    finally:
        await engine.dispose()


async def start(
    factory: StackFactory,
    database: Database,
    key_files: str,
    pagerduty: FakePagerDutyServer,
    **env: str,
) -> OmniStack:
    await seed_as_owner(database, key_files)
    return await factory(
        database_url=database.url,
        seed=database.seed,
        overrides=NO_PERIODIC_RECONCILE,
        OMNI_INTEGRITY_KEY_FILE=key_files,
        OMNI_PAGERDUTY_EVENTS_URL=pagerduty.events_url,
        OMNI_PAGERDUTY_ROUTING_KEY=FAKE_ROUTING_KEY,
        **env,
    )


async def as_attacker(url: str, statement: str, **params: Any) -> int:
    """One statement as the runtime role (PostgreSQL) or on the file (SQLite); rows changed.

    In a thread: the app's loop must keep running (SQLite's write lock may be its own)."""
    return await asyncio.to_thread(_execute, url, statement, params)


def _execute(url: str, statement: str, params: dict[str, Any]) -> int:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            return conn.execute(text(statement), params).rowcount
    finally:
        engine.dispose()


async def fetch_row(url: str, statement: str, **params: Any) -> dict[str, Any]:
    return await asyncio.to_thread(_fetch, url, statement, params)


def _fetch(url: str, statement: str, params: dict[str, Any]) -> dict[str, Any]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(text(statement), params).one()
            return dict(row._mapping)
    finally:
        engine.dispose()


async def violations(stack: OmniStack, table: str) -> float:
    return metric(
        (await stack.client.get("/metrics")).text, "omni_integrity_violations_total", table=table
    )


async def paged(pagerduty: FakePagerDutyServer, needle: str, timeout: float = 10.0) -> bool:
    """Whether an ``integrity_violation`` page naming ``needle`` arrives (polled, deadline)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if any(
            "/integrity_violation/" in str(e.get("dedup_key"))
            and needle in str(e.get("dedup_key"))
            and e.get("event_action") == "trigger"
            for e in pagerduty.events
        ):
            return True
        await asyncio.sleep(0.05)
    return False


class TestForgedPreview:
    async def test_not_ready_preview_set_ready_with_other_candidates_is_not_committed(
        self,
        omni_stack_factory: StackFactory,
        runtime_database: Database,
        integrity_key_file: str,
        pagerduty: FakePagerDutyServer,
    ) -> None:
        """Issue 27 row 1: ready=true, checks all ok, api_passphrase's candidate back to v1 →
        409, nothing moved, violation counted and paged."""
        stack = await start(omni_stack_factory, runtime_database, integrity_key_file, pagerduty)
        add_versions(stack, NEW_API)  # ApeX does not know the new credentials: not ready
        body = await preview(stack)
        assert body["ready"] is False
        url = runtime_database.attacker_url(stack)
        row = await fetch_row(
            url,
            "SELECT members, checks FROM omni_rotation_previews WHERE preview_id = :p",
            p=body["previewId"],
        )
        members = row["members"] if isinstance(row["members"], list) else json.loads(row["members"])
        checks = row["checks"] if isinstance(row["checks"], list) else json.loads(row["checks"])
        for member in members:
            if member["secret_type"] == "api_passphrase":
                member["candidate_version"], member["candidate_digest"] = "1", None
        for check in checks:
            check["ok"] = True
        changed = await as_attacker(
            url,
            "UPDATE omni_rotation_previews SET ready = :t, members = :m, checks = :c"
            " WHERE preview_id = :p",
            t=True,
            m=json.dumps(members),
            c=json.dumps(checks),
            p=body["previewId"],
        )
        assert changed == 1

        response = await stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "PREVIEW_NOT_READY"
        assert "integrity" in response.json()["error"]["message"]
        status = (await stack.request("GET", STATUS)).json()
        assert {status_of(status, t)["version"] for t in ("api_key", "api_passphrase")} == {"1"}
        assert stack.emulator.aliases(PROJECT, "apex-omni-api-passphrase")["current"] == 1
        assert not [r for r in audit_rows(stack, "rotation_commit") if r["result"] == "success"]
        assert await violations(stack, "omni_rotation_previews") == 1
        assert await paged(pagerduty, body["previewId"])

    async def test_committed_preview_reopened_is_replayed(
        self,
        omni_stack_factory: StackFactory,
        runtime_database: Database,
        integrity_key_file: str,
        pagerduty: FakePagerDutyServer,
    ) -> None:
        """An honest commit works; its preview row restored to open (old MAC) is refused."""
        stack = await start(omni_stack_factory, runtime_database, integrity_key_file, pagerduty)
        body = await ready_api_preview(stack)
        url = runtime_database.attacker_url(stack)
        before = await fetch_row(
            url,
            "SELECT status, mac FROM omni_rotation_previews WHERE preview_id = :p",
            p=body["previewId"],
        )
        response = await stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 200, response.text
        assert await violations(stack, "omni_rotation_previews") == 0
        await as_attacker(
            url,
            "UPDATE omni_rotation_previews SET status = :s, mac = :m WHERE preview_id = :p",
            s=before["status"],
            m=before["mac"],
            p=body["previewId"],
        )
        await as_attacker(
            url,
            "UPDATE omni_secret_metadata SET preview_id = :p, preview_expires_at = :e"
            " WHERE rotation_group = 'api_credentials'",
            p=body["previewId"],
            e=body["expiresAt"],
        )
        again = await stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert again.status_code == 409, again.text
        assert "replayed" in again.json()["error"]["message"]
        assert await violations(stack, "omni_rotation_previews") == 1


class TestReplayedRows:
    async def test_revoked_override_restored_is_not_served(
        self,
        omni_stack_factory: StackFactory,
        runtime_database: Database,
        integrity_key_file: str,
        break_glass_keys: BreakGlassKeys,
        pagerduty: FakePagerDutyServer,
    ) -> None:
        """Issue 27 row 2: the pre-revoke ``ended_at``, ``end_reason``, ``mac`` restored."""
        stack = await start(
            omni_stack_factory,
            runtime_database,
            integrity_key_file,
            pagerduty,
            **break_glass_keys.env(),
        )
        activated = await stack.request(
            "POST", BREAK_GLASS, json=sealed_request(break_glass_keys), scopes=SCOPE
        )
        assert activated.status_code == 201, activated.text
        override_id = activated.json()["overrideId"]
        url = runtime_database.attacker_url(stack)
        before = await fetch_row(
            url,
            "SELECT ended_at, end_reason, mac FROM omni_break_glass_overrides"
            " WHERE override_id = :o",
            o=override_id,
        )
        assert before["ended_at"] is None
        revoked = await stack.request("DELETE", f"{BREAK_GLASS}/{override_id}", scopes=SCOPE)
        assert revoked.status_code in (200, 204), revoked.text
        assert (
            await as_attacker(
                url,
                "UPDATE omni_break_glass_overrides SET ended_at = NULL, end_reason = NULL, mac = :m"
                " WHERE override_id = :o",
                m=before["mac"],
                o=override_id,
            )
            == 1
        )
        await stack.services.reconcile.reconcile_now()

        secret = status_of((await stack.request("GET", STATUS)).json(), "api_secret")
        assert secret["breakGlass"] == {"active": False}
        assert secret["cacheSource"] == "gsm"
        assert await violations(stack, "omni_break_glass_overrides") == 1
        assert await paged(pagerduty, override_id)

    async def test_pin_restored_from_before_a_rotation_is_not_served(
        self,
        omni_stack_factory: StackFactory,
        runtime_database: Database,
        integrity_key_file: str,
        pagerduty: FakePagerDutyServer,
    ) -> None:
        """Issue 27 row 3: api_secret's pin row (with its MAC) from before a commit restored:
        not served (no mixed group), violation; GSM's ``current`` disagrees with it too."""
        stack = await start(omni_stack_factory, runtime_database, integrity_key_file, pagerduty)
        url = runtime_database.attacker_url(stack)
        before = await fetch_row(
            url,
            "SELECT active_version, last_rotated_at, rotation_due_at, pin_mac"
            " FROM omni_secret_metadata WHERE secret_type = 'api_secret'",
        )
        assert before["active_version"] == "1"
        body = await ready_api_preview(stack)
        response = await stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 200, response.text
        await as_attacker(
            url,
            "UPDATE omni_secret_metadata SET active_version = :v, last_rotated_at = :r,"
            " rotation_due_at = :d, pin_mac = :m WHERE secret_type = 'api_secret'",
            v=before["active_version"],
            r=before["last_rotated_at"],
            d=before["rotation_due_at"],
            m=before["pin_mac"],
        )
        await stack.services.reconcile.reconcile_now()

        status = (await stack.request("GET", STATUS)).json()
        secret = status_of(status, "api_secret")
        assert secret["cacheSource"] == "none"
        assert secret["lastError"]["code"] == "INTEGRITY_VIOLATION"
        assert "replayed" in secret["lastError"]["message"]
        assert status_of(status, "api_key")["version"] == "2"
        # Section 15's check agrees: GSM's current names the committed version, not the replay.
        assert stack.emulator.aliases(PROJECT, "apex-omni-api-secret")["current"] == 2
        assert await violations(stack, "omni_secret_metadata") == 1
        assert await paged(pagerduty, "omni_secret_metadata/api_secret")


def new_key_file(directory: Path, name: str) -> str:
    path = directory / name
    integrity_keys.create_key_file(path)
    return str(path)


def old_key_mac(key_file: str, fields: dict[str, Any]) -> str:
    """A pin MAC made with ``key_file`` alone (the attacker holds the retired key)."""
    return IntegrityKeyring([base64.b64decode(Path(key_file).read_text().strip())]).sign(
        PIN_PURPOSE, PIN_FIELDS, fields
    )


def forge_pin_with_retired_key(url: str, retired_key_file: str) -> None:
    """Push api_key's due date ten years out and sign the pin with the retired key."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            row = conn.execute(
                select(*(secret_metadata.c[name] for name in PIN_FIELDS)).where(
                    secret_metadata.c.secret_type == "api_key"
                )
            ).one()
            forged = {**row._mapping}
            forged["rotation_due_at"] += timedelta(days=3650)
            conn.execute(
                update(secret_metadata)
                .where(secret_metadata.c.secret_type == "api_key")
                .values(
                    rotation_due_at=forged["rotation_due_at"],
                    pin_mac=old_key_mac(retired_key_file, forged),
                )
            )
    finally:
        engine.dispose()


class TestRetiredKey:
    async def test_start_up_re_signs_live_state_and_a_row_signed_by_the_old_key_is_refused(
        self,
        omni_stack_factory: StackFactory,
        runtime_database: Database,
        tmp_path: Path,
        pagerduty: FakePagerDutyServer,
    ) -> None:
        """Issue 27 row 4. k1 signs; the service restarts with ``k2,k1``: the live pins are
        re-signed (audited ``integrity_rekeyed``) and served; a pin forged afterwards with the
        retired k1 (hiding the rotation due date) is not served, counted and paged."""
        k1 = new_key_file(tmp_path, "k1.key")
        k2 = new_key_file(tmp_path, "k2.key")
        first = await start(omni_stack_factory, runtime_database, k1, pagerduty)
        assert status_of((await first.request("GET", STATUS)).json(), "api_key")["version"] == "1"
        database = Database(
            runtime_database.backend, runtime_database.url or first.database_url, seed=False
        )
        second = await start(omni_stack_factory, database, f"{k2},{k1}", pagerduty)

        rekeyed = audit_rows(second, "integrity_rekeyed")
        assert len(rekeyed) == 1
        assert set(rekeyed[0]["details"]["pins"]) >= {"api_key", "api_secret"}
        new_keyring = integrity_keys.load_keyring((k2,))
        assert new_keyring is not None
        assert rekeyed[0]["details"]["keyId"] == new_keyring.signing_key_id
        status = (await second.request("GET", STATUS)).json()
        assert status_of(status, "api_key")["cacheSource"] == "gsm"
        assert await violations(second, "omni_secret_metadata") == 0

        url = database.attacker_url(second)
        await asyncio.to_thread(forge_pin_with_retired_key, url, k1)
        await second.services.reconcile.reconcile_now()
        body = (await second.request("GET", STATUS)).json()
        assert status_of(body, "api_key")["lastError"]["code"] == "INTEGRITY_VIOLATION"
        assert status_of(body, "api_key")["cacheSource"] == "none"
        assert await violations(second, "omni_secret_metadata") == 1
        assert await paged(pagerduty, "omni_secret_metadata/api_key")
