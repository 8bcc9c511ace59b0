"""Fixtures shared by every test directory.

PostgreSQL: ``postgres_url`` creates one throwaway database per test session on the server named
by ``OMNI_TEST_DATABASE_URL`` and drops it at the end. Under ``CI=true`` a missing variable or an
unreachable server fails the run loudly instead of skipping the PostgreSQL tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

TEST_DATABASE_ENV = "OMNI_TEST_DATABASE_URL"

# gRPC reads this when its core starts: set it before any test creates a channel or server.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL (``postgresql+psycopg://``) of a fresh, empty database for this session."""
    base = os.environ.get(TEST_DATABASE_ENV)
    if not base:
        _postgres_unavailable(f"{TEST_DATABASE_ENV} is not set")
        raise AssertionError("unreachable")
    admin_url = make_url(base)
    name = f"omni_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the server is down or refuses us
        admin.dispose()
        _postgres_unavailable(f"cannot create a database on {admin_url.host}: {exc}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove every OMNI_*/GCP_* variable so Settings sees only what a test sets."""
    for key in list(os.environ):
        if key.startswith(("OMNI_", "GCP_")) and key != TEST_DATABASE_ENV:
            monkeypatch.delenv(key, raising=False)
    return monkeypatch


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of Google's Pub/Sub emulator, started once per session and always killed.

    Skips loudly where it is not installed; under ``CI=true`` that fails the run instead.
    """
    from tests.pubsub_emulator import PubSubEmulator, emulator_missing_reason

    reason = emulator_missing_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Pub/Sub emulator is required under CI=true: {reason}", pytrace=False)
        pytest.skip(f"PUB/SUB EMULATOR TESTS SKIPPED: {reason}")
    emulator = PubSubEmulator(tmp_path_factory.mktemp("pubsub"))
    emulator.start()
    try:
        yield emulator.host
    finally:
        emulator.stop()
