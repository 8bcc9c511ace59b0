"""The database as ``serve`` and the CLI reach it: URLs, keys, units of work, schema, roles.

Every command that touches the database (``db …``, ``audit verify``, ``rotation check``, the
start-up checks of ``serve``, ``dev``'s migrate-and-seed) gets it from here, through the same SQL
adapter and the same unit-of-work factory the running service uses (:func:`units_of_work`); no
CLI module creates an engine or a unit of work itself.

Light on purpose: it imports SQLAlchemy and the SQL adapter, not the service stack that
``bootstrap.services`` composes (a ``db current`` should not pay for GSM, httpx and the metrics),
and Alembic only inside the functions that migrate (``serve`` reads the revision without it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from omni_secrets.adapters import integrity_keys
from omni_secrets.adapters.db import engine as db_engine
from omni_secrets.adapters.db import migrate, roles

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from omni_secrets.adapters.db.unit_of_work import SqlUnitOfWork
    from omni_secrets.config import Settings
    from omni_secrets.domain.clock import Clock
    from omni_secrets.domain.integrity import IntegrityKeyring
    from omni_secrets.domain.repositories import UnitOfWorkFactory

# --- URLs ------------------------------------------------------------------------------------


def check_database_url(url: str) -> None:
    """Raise ``ValueError`` (the reason, never the password) unless ``url`` names a supported
    database (SQLite or PostgreSQL with a driver this package ships)."""
    db_engine.sync_url(url)


def is_sqlite(url: str) -> bool:
    """Whether ``url`` is an SQLite database (one embedded process: no roles, no LISTEN)."""
    return db_engine.is_sqlite(url)


def redacted(url: str) -> str:
    """``url`` with its password masked, for messages."""
    return db_engine.redacted(url)


def sqlite_file(url: str) -> str | None:
    """The file an SQLite ``url`` names, as written in it (None: not SQLite, or in memory)."""
    if not db_engine.is_sqlite(url):
        return None
    from sqlalchemy.engine import make_url

    path = make_url(url).database
    return path if path and path != ":memory:" else None


# --- integrity keys --------------------------------------------------------------------------


def load_integrity_keyring(settings: Settings) -> IntegrityKeyring | None:
    """The integrity keys of ``OMNI_INTEGRITY_KEY_FILE`` (None when it is unset).

    Raises:
        IntegrityKeyInvalid: a key file is missing, unreadable or shorter than 32 bytes.
    """
    return integrity_keys.load_keyring(settings.integrity_key_files)


def create_integrity_key_file(path: Path) -> None:
    """Write a new random integrity key to ``path`` (mode 0600) unless the file exists."""
    integrity_keys.create_key_file(path)


# --- units of work ---------------------------------------------------------------------------


def create_database_engine(
    url: str, *, timeout_seconds: float = db_engine.DEFAULT_TIMEOUT_SECONDS
) -> AsyncEngine:
    """The async engine (and its pool) for ``url``, every operation bounded by
    ``timeout_seconds`` (``OMNI_DATABASE_TIMEOUT_SECONDS``); the caller disposes it."""
    return db_engine.create_engine(url, timeout_seconds=timeout_seconds)


def units_of_work(
    engine: AsyncEngine, *, clock: Clock | None = None, keyring: IntegrityKeyring | None = None
) -> UnitOfWorkFactory:
    """Units of work over ``engine``; with ``keyring`` rows are signed and checked."""
    # Here: the repositories load the pydantic domain models, which `db current` does not need.
    from omni_secrets.adapters.db import unit_of_work

    return unit_of_work.sql_unit_of_work_factory(engine, clock=clock, keyring=keyring)


@contextlib.asynccontextmanager
async def open_database(
    url: str, *, clock: Clock | None = None, keyring: IntegrityKeyring | None = None
) -> AsyncIterator[UnitOfWorkFactory]:
    """Units of work over the database at ``url``, for one CLI command; the engine is disposed on
    exit. Opening connects nothing: the first unit of work does. With ``keyring`` rows are signed
    and checked with the integrity keys.
    """
    engine = create_database_engine(url)
    try:
        yield units_of_work(engine, clock=clock, keyring=keyring)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def open_sql_unit_of_work(
    url: str, *, keyring: IntegrityKeyring | None, clock: Clock | None = None
) -> AsyncIterator[SqlUnitOfWork]:
    """One entered unit of work of the SQL adapter itself, for the maintenance only it offers
    (listing and signing pins whose integrity MAC is missing: ``db sign-pins``, ``dev``). Not
    committed unless the caller commits; the engine is disposed on exit."""
    from omni_secrets.adapters.db.unit_of_work import SqlUnitOfWork
    from omni_secrets.domain.clock import SystemClock

    engine = create_database_engine(url)
    try:
        async with SqlUnitOfWork(engine, clock=clock or SystemClock(), keyring=keyring) as uow:
            yield uow
    finally:
        await engine.dispose()


# --- schema ----------------------------------------------------------------------------------


def schema_revision(url: str) -> str | None:
    """The migration the database is at (None: never migrated, or an SQLite file that does not
    exist: reading it never creates it, so a refused start leaves no empty database behind).

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    path = sqlite_file(url)
    if path is not None and not Path(path).exists():
        return None
    return migrate.current(url)


def head_revision() -> str:
    """The newest migration this version ships."""
    return migrate.head()


def upgrade_schema(url: str, revision: str = "head") -> None:
    """Migrate up to ``revision`` (creates an SQLite file that does not exist)."""
    migrate.upgrade(url, revision)


def downgrade_schema(url: str, revision: str) -> None:
    """Migrate down to ``revision`` (destructive: see ``omni-secrets db downgrade``)."""
    migrate.downgrade(url, revision)


# --- the runtime role (PostgreSQL) -----------------------------------------------------------


def check_role_name(role: str) -> None:
    """Raise ``ValueError`` unless ``role`` is a plain PostgreSQL role name."""
    roles.quote_role(role)


def runtime_grants(url: str, role: str) -> list[str]:
    """The statements that give ``role`` exactly the privileges ``serve`` needs on the tables
    that exist at ``url`` (each table's privileges revoked first, so re-running converges)."""
    return roles.grant_statements(role, roles.existing_tables(url))


def role_exists(url: str, role: str) -> bool:
    return roles.role_exists(url, role)


def audit_table_owner(url: str) -> str | None:
    """The role that owns the audit table (None when it does not exist)."""
    return roles.audit_table_owner(url)


def apply_grants(url: str, statements: Sequence[str]) -> None:
    """Run ``statements`` in one transaction."""
    roles.apply(url, statements)


def runs_as_audit_owner(url: str) -> tuple[str, bool]:
    """``(user, owns)``: the role ``url`` connects as, and whether it owns the audit table or is
    a superuser (either could disable the append-only triggers).

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    return roles.runs_as_audit_owner(url)
