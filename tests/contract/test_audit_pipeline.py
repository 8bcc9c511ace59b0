"""Contract section 10 against the real ``omni-secrets serve`` process on PostgreSQL: under 16
concurrent clients no ``status_view`` event is lost, an outage of the database loses nothing
either, and SIGTERM drains and exits 0."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

from omni_secrets.adapters import integrity_keys
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.api.auth import mint_hs256_token
from omni_secrets.emulator import GsmEmulator
from tests.contract.conftest import FAKE_VALUES, HS256_SECRET, PROJECT
from tests.contract.serving import CLI
from tests.integration.db.conftest import PostgresDatabases
from tests.ports import free_port

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]
LOAD_SECONDS = 20
CLIENTS = 16


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    databases = PostgresDatabases(postgres_url)
    try:
        yield databases.create()
    finally:
        databases.close()


@pytest.fixture
def emulator() -> Iterator[GsmEmulator]:
    gsm = GsmEmulator()
    gsm.start()
    gsm.seed(PROJECT, {k: [v] for k, v in FAKE_VALUES.items()})
    try:
        yield gsm
    finally:
        gsm.stop()


class Served:
    """One ``omni-secrets serve`` process with its output collected."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [CLI, "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace"))

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("serve exited early:\n" + "".join(self.lines))
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail("serve did not become ready:\n" + "".join(self.lines))

    def metric(self, name: str) -> float:
        body = httpx.get(f"{self.url}/metrics", timeout=10).text
        match = re.search(rf"^{name} (\S+)$", body, re.MULTILINE)
        assert match, name
        return float(match.group(1))

    def terminate(self) -> tuple[int, float]:
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        return code, time.monotonic() - began

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def serve_env(database: str, emulator: GsmEmulator, key_file: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
    env.update(
        OMNI_ENVIRONMENT="test",
        GCP_PROJECT_ID=PROJECT,
        OMNI_GSM_ENDPOINT=emulator.address,
        OMNI_DATABASE_URL=database,
        OMNI_AUTH_HS256_SECRET=HS256_SECRET,
        OMNI_INTEGRITY_KEY_FILE=key_file,
        OMNI_APEX_BASE_URL="http://127.0.0.1:9",
        OMNI_LOG_FORMAT="json",
    )
    return env


def migrate_and_seed(env: dict[str, str]) -> None:
    for args in (["db", "upgrade"], ["db", "seed"]):
        proc = subprocess.run(
            [CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr


def run_load(url: str, seconds: float) -> dict[str, object]:
    token = mint_hs256_token(
        secret=HS256_SECRET,
        scopes=("omni-secrets:read",),
        subject="load",
        audience="omni-secrets",
        now=datetime.now(UTC),
        ttl=timedelta(hours=1),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.contract.load_clients", url, token, str(seconds), "16"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def status_views(database: str) -> list[str]:
    engine = create_engine(sync_url(database), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT correlation_id FROM omni_secret_access_events "
                    "WHERE action = 'status_view' ORDER BY id"
                )
            )
            return [str(r[0]) for r in rows]
    finally:
        engine.dispose()


def audit_verify(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def in_order_per_client(ids: list[str]) -> bool:
    last: dict[str, int] = {}
    for request_id in ids:
        client, n = request_id.split("-")
        if int(n) <= last.get(client, -1):
            return False
        last[client] = int(n)
    return True


class OutageOf:
    """Makes one PostgreSQL database unreachable for the service (new connections refused,
    existing ones terminated), then reachable again — as superuser on the server."""

    def __init__(self, database: str) -> None:
        url = make_url(sync_url(database))
        self.name = url.database
        self.admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def begin(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            )

    def end(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))
        self.admin.dispose()


class TestAuditPipelineUnderLoad:
    def test_sixteen_clients_lose_no_status_view_and_sigterm_exits_0(
        self, database: str, emulator: GsmEmulator, tmp_path: Path
    ) -> None:
        """Every 200 has its status_view row; no write failure; SIGTERM drains, exits 0."""
        key = tmp_path / "integrity.key"
        integrity_keys.create_key_file(key)
        env = serve_env(database, emulator, str(key))
        migrate_and_seed(env)
        served = Served(env)
        try:
            served.wait_ready()
            load = run_load(served.url, LOAD_SECONDS)
            ok = load["ok"]
            assert isinstance(ok, list) and len(ok) > 100, load["other"]
            assert load["other"] == {} and load["errors"] == 0
            assert served.metric("omni_audit_write_failures_total") == 0
            code, took = served.terminate()
        finally:
            served.kill()
        output = "".join(served.lines)
        assert code == 0, output[-3000:]
        assert took < 15
        assert "Traceback" not in output and "CancelledError" not in output
        rows = status_views(database)
        assert sorted(rows) == sorted(ok)
        assert in_order_per_client(rows)
        verify = audit_verify(env)
        assert verify.returncode == 0, verify.stderr
        assert f"{len(rows)} keyed" in verify.stdout or "keyed" in verify.stdout

    def test_database_outage_mid_run_loses_nothing(
        self, database: str, emulator: GsmEmulator, tmp_path: Path
    ) -> None:
        """DB unreachable for a few seconds under load: status keeps answering, every event is
        written afterwards in order, the chain verifies, nothing is counted as lost."""
        key = tmp_path / "integrity.key"
        integrity_keys.create_key_file(key)
        env = serve_env(database, emulator, str(key))
        migrate_and_seed(env)
        served = Served(env)
        outage = OutageOf(database)
        try:
            served.wait_ready()
            timer = threading.Timer(4.0, outage.begin)
            heal = threading.Timer(9.0, outage.end)
            timer.start()
            heal.start()
            load = run_load(served.url, 14)
            timer.join()
            heal.join()
            ok = load["ok"]
            assert isinstance(ok, list) and len(ok) > 50
            assert load["other"] == {} and load["errors"] == 0
            deadline = time.monotonic() + 30
            while served.metric("omni_audit_queue_depth") > 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert served.metric("omni_audit_queue_depth") == 0
            assert served.metric("omni_audit_write_failures_total") == 0
            code, _ = served.terminate()
        finally:
            served.kill()
        output = "".join(served.lines)
        assert code == 0, output[-3000:]
        assert "audit.writer_waiting" in output  # the outage really happened
        rows = status_views(database)
        assert sorted(rows) == sorted(ok)
        assert in_order_per_client(rows)
        verify = audit_verify(env)
        assert verify.returncode == 0, verify.stderr
