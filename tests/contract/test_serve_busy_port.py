"""Contract section 18, start in order: ``serve`` binds its port before it touches anything, so
a port in use exits 3 within 2 s with no replica registered, no GSM call and no database change."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
from sqlalchemy import create_engine, pool, text

from omni_secrets.adapters import integrity_keys
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.emulator import GsmEmulator
from tests.contract.serving import CLI
from tests.contract.test_audit_pipeline import (
    database,  # noqa: F401  (fixture)
    emulator,  # noqa: F401  (fixture)
    migrate_and_seed,
    serve_env,
)

pytestmark = pytest.mark.postgres


def replica_rows(url: str) -> int:
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM omni_replicas")).scalar_one())
    finally:
        engine.dispose()


def test_a_busy_port_exits_3_at_once_having_touched_nothing(
    database: str,  # noqa: F811
    emulator: GsmEmulator,  # noqa: F811
    tmp_path: object,
) -> None:
    key_file = f"{tmp_path}/integrity.key"
    integrity_keys.create_key_file(__import__("pathlib").Path(key_file))
    env = serve_env(database, emulator, key_file)
    migrate_and_seed(env)
    emulator.reset_calls()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        began = time.monotonic()
        proc = subprocess.run(
            [CLI, "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        took = time.monotonic() - began
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert took < 2, took
    assert f"127.0.0.1:{port}" in proc.stderr + proc.stdout
    assert emulator.calls == {}, emulator.calls  # nothing hydrated
    assert replica_rows(database) == 0  # nothing registered
