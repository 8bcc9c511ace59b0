"""kill -9 between two alias moves of a commit, then recovery (contract section 15).

Real ``omni-secrets serve`` processes on a migrated, seeded database (SQLite and PostgreSQL),
the GSM emulator in this process over real gRPC (its call log says how each late call ended),
a fake ApeX over HTTP, and an integrity key (the journal and the pins are MAC'd). The emulator
holds the commit's second ``UpdateSecret`` (``delay_nth``) while the test kills the committing
replica, so GSM is left mixed: the first member moved, the second in flight, the third not.
Then either the same replica restarts (start-up recovery), or a live peer recovers within 30 s.
Either way the group ends whole on one generation, aliases == served versions == pins, the
late move fails its compare-and-set, and ``audit verify`` passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, pool, select

from omni_secrets.adapters import integrity_keys
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.tables import commit_journal, secret_access_events, secret_metadata
from omni_secrets.config import load_settings
from omni_secrets.emulator import GsmEmulator
from omni_secrets.testing import FakeApexServer
from tests.contract.conftest import (
    FAKE_VALUES,
    HS256_SECRET,
    PROJECT,
    prepare_database,
    seeded_credentials,
)
from tests.contract.test_rotation import NEW_API, new_credentials
from tests.integration.db.conftest import PostgresDatabases
from tests.integration.test_breakglass_restart import CLI, ServeProcess, token

API_TYPES = ("api_key", "api_secret", "api_passphrase")
PREVIEW = "/ops/apex-omni/secrets/rotation-preview"
ROTATE = "omni-secrets:rotate"


@pytest.fixture
def emulator() -> Iterator[GsmEmulator]:
    running = GsmEmulator(max_workers=32)
    running.start()
    running.seed(PROJECT, {k: [v] for k, v in FAKE_VALUES.items()})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def apex() -> Iterator[FakeApexServer]:
    server = FakeApexServer([seeded_credentials(), new_credentials()])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/omni.db"
        return
    databases = PostgresDatabases(request.getfixturevalue("postgres_url"))
    try:
        yield databases.create()
    finally:
        databases.close()


@pytest.fixture
def environment(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    emulator: GsmEmulator,
    apex: FakeApexServer,
    database_url: str,
) -> dict[str, str]:
    key_file = tmp_path / "integrity.key"
    integrity_keys.create_key_file(key_file)
    values = {
        "OMNI_ENVIRONMENT": "test",
        "GCP_PROJECT_ID": PROJECT,
        "OMNI_GSM_ENDPOINT": emulator.address,
        "OMNI_GSM_TIMEOUT_SECONDS": "5",
        "OMNI_DATABASE_URL": database_url,
        "OMNI_AUTH_HS256_SECRET": HS256_SECRET,
        "OMNI_APEX_BASE_URL": apex.base_url,
        "OMNI_INTEGRITY_KEY_FILE": str(key_file),
        "OMNI_LOG_FORMAT": "json",
    }
    asyncio.run(prepare_database(database_url, load_settings(**values), seed=True))
    # The candidates arrive after the seed (which pins version 1, as `db seed` would).
    for secret_id, value in NEW_API.items():
        emulator.add_version(PROJECT, secret_id, value)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
    env.update(values)
    return env


def preview_of(secret_type: str) -> dict[str, str]:
    return {"secretType": secret_type}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until true; the seconds it took. Fails after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def ready(replica: ServeProcess) -> None:
    replica.wait_ready()

    def answers() -> bool:
        try:
            return httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, 60, "readyz")


def currents(emulator: GsmEmulator) -> dict[str, dict[str, int]]:
    return {i: emulator.aliases(PROJECT, i) for i in NEW_API}


def rows(url: str, table: Any, *where: Any) -> list[dict[str, Any]]:
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table).where(*where))]
    finally:
        engine.dispose()


def start_commit_and_kill(replica: ServeProcess, emulator: GsmEmulator, hold: float) -> None:
    """Preview, then commit with the second alias move held ``hold`` s; kill -9 meanwhile."""
    headers = {"Authorization": f"Bearer {token(ROTATE)}"}
    opened = httpx.post(
        replica.url + PREVIEW, json=preview_of(API_TYPES[0]), headers=headers, timeout=30
    )
    assert opened.status_code == 200, opened.text
    assert opened.json()["ready"] is True, opened.json()["checks"]
    commit = f"{replica.url}/ops/apex-omni/secrets/rotations/{opened.json()['previewId']}/commit"
    moves_before = emulator.call_count("UpdateSecret")
    emulator.delay_nth("UpdateSecret", 2, hold)

    def call() -> None:
        with contextlib.suppress(httpx.TransportError):  # the replica dies under it
            httpx.post(commit, headers=headers, timeout=hold + 10)

    threading.Thread(target=call, daemon=True).start()
    wait_until(
        lambda: emulator.call_count("UpdateSecret") >= moves_before + 2,
        30,
        "the second alias move to reach GSM",
    )
    replica.kill()
    assert replica.proc.returncode == -signal.SIGKILL
    mixed = currents(emulator)
    assert sorted(a["current"] for a in mixed.values()) == [1, 1, 2], mixed


def assert_whole_on_generation(
    env: dict[str, str], replica: ServeProcess, emulator: GsmEmulator, version: int
) -> None:
    assert currents(emulator) == {i: {"current": version} for i in NEW_API}
    pins = {
        r["secret_type"]: r["active_version"]
        for r in rows(env["OMNI_DATABASE_URL"], secret_metadata)
    }
    for name in API_TYPES:
        status = replica.status(name)
        assert status["version"] == str(version), status
        assert status["activeVersion"] == str(version)
        assert status["rotation"]["aliasVersion"] == str(version)
        assert status["lastError"] is None
        assert pins[name] == str(version)


def assert_late_move_refused(emulator: GsmEmulator, hold: float) -> None:
    """The held move ran after recovery with the etag it carried: FAILED_PRECONDITION.

    It is the last ``UpdateSecret`` to finish (recovery's own writes finished before it).
    """

    def moves() -> list[str]:
        return [c.code for c in emulator.call_log if c.method == "UpdateSecret"]

    wait_until(
        lambda: len(moves()) == emulator.call_count("UpdateSecret"),
        hold + 10,
        "the late alias move to finish",
    )
    assert moves()[-1] == "FAILED_PRECONDITION", moves()
    assert currents(emulator) == {i: {"current": 1} for i in NEW_API}


def assert_recovered_and_verified(env: dict[str, str]) -> None:
    url = env["OMNI_DATABASE_URL"]
    entries = rows(url, commit_journal, commit_journal.c.status != "closed")
    assert [(e["kind"], e["status"], e["outcome"]) for e in entries] == [
        ("commit", "recovered", "back")
    ]
    audited = rows(url, secret_access_events, secret_access_events.c.action == "rotation_recovered")
    assert len(audited) == 1
    details = audited[0]["details"]
    assert audited[0]["actor"] == "system"
    assert details["outcome"] == "back"
    assert details["restoredVersions"] == dict.fromkeys(API_TYPES, "1")
    verified = subprocess.run(
        [CLI, "audit", "verify"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    log_text = Path(env["SERVE_LOG"]).read_bytes()
    for value in (*FAKE_VALUES.values(), *NEW_API.values()):
        assert value.encode() not in log_text


@pytest.fixture
def serve_env(environment: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**environment, "SERVE_LOG": str(tmp_path / "serve.log")}


class TestKillBetweenTwoAliasMoves:
    def test_the_restarted_replica_recovers_at_start_up(
        self, serve_env: dict[str, str], emulator: GsmEmulator, tmp_path: Path
    ) -> None:
        """kill -9 mid-commit, restart: back on the old generation whole before serving."""
        hold = 12.0
        log = Path(serve_env["SERVE_LOG"])
        first = ServeProcess(serve_env, log)
        second: ServeProcess | None = None
        try:
            ready(first)
            start_commit_and_kill(first, emulator, hold)
            second = ServeProcess(serve_env, log)
            ready(second)
            assert_whole_on_generation(serve_env, second, emulator, 1)
            assert_late_move_refused(emulator, hold)
            assert_whole_on_generation(serve_env, second, emulator, 1)
            # The group's lock went with the dead commit: a new rotation runs to the end.
            headers = {"Authorization": f"Bearer {token(ROTATE)}"}
            again = httpx.post(
                second.url + PREVIEW, json=preview_of(API_TYPES[1]), headers=headers, timeout=30
            )
            assert again.status_code == 200, again.text
            done = httpx.post(
                f"{second.url}/ops/apex-omni/secrets/rotations/{again.json()['previewId']}/commit",
                headers=headers,
                timeout=30,
            )
            assert done.status_code == 200, done.text
            assert currents(emulator) == {i: {"current": 2, "previous": 1} for i in NEW_API}
        finally:
            first.kill()
            if second is not None:
                second.kill()
        entries = rows(serve_env["OMNI_DATABASE_URL"], commit_journal)
        assert sorted((e["status"], e["outcome"]) for e in entries) == [
            ("closed", None),
            ("recovered", "back"),
        ]
        assert_recovered_and_verified(serve_env)

    def test_a_live_peer_recovers_within_30_seconds(
        self, serve_env: dict[str, str], emulator: GsmEmulator
    ) -> None:
        """kill -9 mid-commit with a second replica live: it recovers within 30 s."""
        hold = 35.0
        log = Path(serve_env["SERVE_LOG"])
        dying = ServeProcess(serve_env, log)
        peer = ServeProcess(serve_env, log)
        try:
            ready(dying)
            ready(peer)
            start_commit_and_kill(dying, emulator, hold)
            url = serve_env["OMNI_DATABASE_URL"]
            took = wait_until(
                lambda: [e["status"] for e in rows(url, commit_journal)] == ["recovered"],
                30,
                "the peer to recover the dead replica's commit",
            )
            assert took < 30
            print(f"peer recovered the dead replica's commit {took:.1f} s after the kill")
            wait_until(
                lambda: all(peer.status(t)["rotation"]["aliasVersion"] == "1" for t in API_TYPES),
                20,
                "the peer to re-read the aliases",
            )
            assert_whole_on_generation(serve_env, peer, emulator, 1)
            assert_late_move_refused(emulator, hold)
            assert_whole_on_generation(serve_env, peer, emulator, 1)
        finally:
            dying.kill()
            peer.kill()
        assert_recovered_and_verified(serve_env)
