"""Two roles on PostgreSQL: ``db grants`` gives a non-owner runtime role exactly what ``serve``
needs, the audit table refuses it UPDATE/DELETE/TRUNCATE, and production refuses the owner."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from omni_secrets.adapters import integrity_keys
from omni_secrets.adapters.db import roles
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.api.auth import mint_hs256_token
from omni_secrets.emulator import GsmEmulator
from tests.contract.conftest import FAKE_VALUES, HS256_SECRET, PROJECT
from tests.contract.serving import CLI
from tests.contract.test_audit_pipeline import Served, migrate_and_seed, serve_env
from tests.integration.db.conftest import PostgresDatabases
from tests.ports import free_port

pytestmark = pytest.mark.postgres
AUDIT = "omni_secret_access_events"


@pytest.fixture
def runtime_role(postgres_url: str) -> Iterator[str]:
    """A fresh LOGIN role that owns nothing; dropped after this test's database is gone."""
    role = f"omni_rt_{uuid.uuid4().hex[:8]}"
    admin = create_engine(sync_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    try:
        yield role
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


@pytest.fixture
def database(postgres_url: str, runtime_role: str) -> Iterator[str]:
    # Depends on runtime_role so that it is dropped first: the role's grants live in it.
    databases = PostgresDatabases(postgres_url)
    try:
        yield databases.create()
    finally:
        databases.close()


def as_role(url: str, role: str) -> str:
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


class TestGrants:
    def test_dry_run_prints_exact_privileges(self, database: str, runtime_role: str) -> None:
        """The dry run prints SELECT/INSERT on the audit table and no UPDATE/DELETE/TRUNCATE."""
        env = {**os.environ, "OMNI_DATABASE_URL": database}
        assert cli(env, "db", "upgrade").returncode == 0
        result = cli(env, "db", "grants", "--role", runtime_role)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert f'GRANT SELECT, INSERT ON TABLE {AUDIT} TO "{runtime_role}";' in lines
        audit_lines = [line for line in lines if AUDIT in line and line.startswith("GRANT")]
        assert len(audit_lines) == 1
        assert not any(word in audit_lines[0] for word in ("UPDATE", "DELETE", "TRUNCATE"))
        assert not any("TRUNCATE" in line for line in lines)
        # Only the section 12 housekeeping tables (replica departures, the retention sweep) may
        # lose rows; pins, overrides, nonces, previews and the audit chain never.
        deletable = {"omni_replicas", "omni_refresh_requests", "omni_refresh_results"}
        for line in lines:
            if line.startswith("GRANT") and "DELETE" in line:
                assert line.split(" ON TABLE ")[1].split(" ")[0] in deletable, line

    def test_the_owner_cannot_be_the_runtime_role(self, database: str) -> None:
        """--role naming the tables' owner is refused (it would revoke the owner's rights)."""
        env = {**os.environ, "OMNI_DATABASE_URL": database}
        assert cli(env, "db", "upgrade").returncode == 0
        refused = cli(env, "db", "grants", "--role", "postgres", "--apply")
        assert refused.returncode == 2 and "owns the tables" in refused.stderr

    def test_bad_role_name_and_sqlite_are_one_line(self, tmp_path: Path) -> None:
        """A role name that is not an identifier, or a SQLite URL: exit 2, one line."""
        env = {**os.environ, "OMNI_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
        sqlite = cli(env, "db", "grants", "--role", "app")
        assert sqlite.returncode == 2 and "PostgreSQL" in sqlite.stderr
        assert len(sqlite.stderr.strip().splitlines()) == 1

    def test_runtime_role_serves_and_cannot_rewrite_the_audit_trail(
        self, database: str, runtime_role: str, tmp_path: Path
    ) -> None:
        """serve as the granted non-owner role works; UPDATE/DELETE/TRUNCATE and disabling the
        triggers on the audit table are refused to it by PostgreSQL."""
        gsm = GsmEmulator()
        gsm.start()
        gsm.seed(PROJECT, {k: [v] for k, v in FAKE_VALUES.items()})
        key = tmp_path / "integrity.key"
        integrity_keys.create_key_file(key)
        try:
            owner_env = serve_env(database, gsm, str(key))
            migrate_and_seed(owner_env)
            applied = cli(owner_env, "db", "grants", "--role", runtime_role, "--apply")
            assert applied.returncode == 0, applied.stderr
            runtime_url = as_role(database, runtime_role)
            user, owner = roles.runs_as_audit_owner(runtime_url)
            assert (user, owner) == (runtime_role, False)

            served = Served({**owner_env, "OMNI_DATABASE_URL": runtime_url})
            try:
                served.wait_ready()
                token = mint_hs256_token(
                    secret=HS256_SECRET,
                    scopes=("omni-secrets:read", "omni-secrets:rotate", "omni-secrets:refresh"),
                    subject="runtime",
                    audience="omni-secrets",
                    now=datetime.now(UTC),
                    ttl=timedelta(minutes=10),
                )
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=served.url, headers=headers, timeout=30) as http:
                    assert http.get("/ops/apex-omni/secrets/status").status_code == 200
                    refresh = http.post("/internal/apex-omni/secrets/cache/refresh", json={})
                    assert refresh.status_code == 202
                    gsm.add_version(PROJECT, "apex-omni-zk-seeds", "fake-zk-seeds-v2")
                    gsm.add_version(PROJECT, "apex-omni-zk-l2-key", "fake-zk-l2-key-v2")
                    preview = http.post(
                        "/ops/apex-omni/secrets/rotation-preview", json={"secretType": "zk_seeds"}
                    )
                    assert preview.status_code == 200, preview.text
                    committed = http.post(
                        f"/ops/apex-omni/secrets/rotations/{preview.json()['previewId']}/commit"
                    )
                    assert committed.status_code == 200, committed.text
                assert served.metric("omni_audit_write_failures_total") == 0
                code, _ = served.terminate()
                assert code == 0
            finally:
                served.kill()
            assert cli(owner_env, "audit", "verify").returncode == 0

            engine = create_engine(sync_url(runtime_url), poolclass=pool.NullPool)
            try:
                for statement in (
                    "UPDATE omni_secret_access_events SET actor = 'mallory' WHERE id = 1",
                    "DELETE FROM omni_secret_access_events WHERE id = 1",
                    "TRUNCATE omni_secret_access_events",
                    "ALTER TABLE omni_secret_access_events "
                    "DISABLE TRIGGER omni_secret_access_events_append_only",
                ):
                    with (
                        pytest.raises(ProgrammingError, match=r"permission denied|must be owner"),
                        engine.begin() as conn,
                    ):
                        conn.execute(text(statement))
            finally:
                engine.dispose()
        finally:
            gsm.stop()


class TestProductionRefusals:
    def test_serve_refuses_the_table_owner_in_production(
        self, database: str, tmp_path: Path
    ) -> None:
        """production serve as the owner (here: postgres) exits with one line, nothing served."""
        key = tmp_path / "integrity.key"
        integrity_keys.create_key_file(key)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
        env.update(
            OMNI_DATABASE_URL=database,
            OMNI_ENVIRONMENT="production",
            GCP_PROJECT_ID="acme-prod",
            OMNI_AUTH_JWKS_URL="https://idp.example.test/jwks.json",
            OMNI_AUTH_ISSUER="https://idp.example.test",
            OMNI_INTEGRITY_KEY_FILE=str(key),
        )
        assert cli(env, "db", "upgrade").returncode == 0
        port = free_port()
        refused = cli(env, "serve", "--port", str(port))
        assert refused.returncode != 0
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "OMNI_ALLOW_TABLE_OWNER" in lines[0]
        assert "Traceback" not in refused.stderr

    def test_production_downgrade_needs_force(self, database: str) -> None:
        """db downgrade with OMNI_ENVIRONMENT=production: exit 2 without --force; runs with it."""
        env = {**os.environ, "OMNI_DATABASE_URL": database, "OMNI_ENVIRONMENT": "production"}
        assert cli(env, "db", "upgrade").returncode == 0
        refused = cli(env, "db", "downgrade", "0004")
        assert refused.returncode == 2 and "--force" in refused.stderr
        assert cli(env, "db", "current").stdout.startswith("0009")
        forced = cli(env, "db", "downgrade", "0004", "--force")
        assert forced.returncode == 0, forced.stderr
        assert cli(env, "db", "current").stdout.strip() == "0004"
