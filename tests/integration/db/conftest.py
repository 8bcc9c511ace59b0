"""Database fixtures for the data-layer tests: every test runs on SQLite and on PostgreSQL.

- ``empty_database_url``: a fresh, never-migrated database (a tmp SQLite file, or a new
  PostgreSQL database on the server behind ``postgres_url``), dropped afterwards.
- ``database_url``: the same, already migrated to head — copied from a template migrated once
  per session (a file copy; ``CREATE DATABASE … TEMPLATE``), so tests stay isolated and cheap.
- ``uow_factory``: a unit-of-work factory over the in-memory fake, SQLite and PostgreSQL, for the
  shared repository contract suite.
- ``omni_cli``: runs the ``omni-secrets`` console entry point in-process with a clean environment.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from omni_secrets.adapters.db import migrate
from omni_secrets.adapters.db.engine import create_engine as create_async_engine
from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
from omni_secrets.cli import main
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.testing import InMemoryUnitOfWorkFactory

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


class PostgresDatabases:
    """Creates and drops throwaway databases on the test server (as its superuser)."""

    def __init__(self, session_url: str) -> None:
        self._base = make_url(session_url)
        self._admin = create_engine(self._base, isolation_level="AUTOCOMMIT")
        self._created: list[str] = []

    def create(self, *, template: str | None = None) -> str:
        name = f"omni_test_{uuid.uuid4().hex[:12]}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self._created.append(name)
        return self.url(name)

    def url(self, name: str) -> str:
        return self._base.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self._created:
            self._created.remove(name)

    def close(self) -> None:
        for name in list(self._created):
            self.drop(self.url(name))
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases(postgres_url: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_url)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(scope="session")
def postgres_template(postgres_databases: PostgresDatabases) -> str:
    """Name of a PostgreSQL database migrated to head, used only as a template."""
    url = postgres_databases.create()
    migrate.upgrade(url)
    name = make_url(url).database
    assert name is not None
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, copied by each test that needs a migrated database."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'omni.db'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.create()
    yield url
    databases.drop(url)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / "omni.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.create(template=request.getfixturevalue("postgres_template"))
    yield url
    databases.drop(url)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def uow_factory(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[UnitOfWorkFactory]:
    """A unit-of-work factory on a migrated, empty database of each kind."""
    if request.param == "memory":
        yield InMemoryUnitOfWorkFactory(clock=clock)
        return
    if request.param == "sqlite":
        path = tmp_path / "omni.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        url = databases.create(template=request.getfixturevalue("postgres_template"))
    engine = create_async_engine(url)
    try:
        yield sql_unit_of_work_factory(engine, clock=clock)
    finally:
        await engine.dispose()
        if request.param == "postgres":
            databases.drop(url)


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


class OmniCli:
    """Runs ``omni-secrets`` in-process through its console-script entry point ``main``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    def __call__(self, *args: str, **env: str) -> CliResult:
        for name, value in env.items():
            self._monkeypatch.setenv(name, value)
        self._capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(list(args))
        captured = self._capsys.readouterr()
        code = exit_info.value.code
        return CliResult(code if isinstance(code, int) else 1, captured.out, captured.err)


@pytest.fixture
def omni_cli(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> OmniCli:
    """``omni_cli("db", "seed", OMNI_DATABASE_URL=url)`` → exit code, stdout, stderr."""
    return OmniCli(clean_env, capsys)
