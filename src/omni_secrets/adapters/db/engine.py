"""The async engine factory and the URL rules shared with the migrations.

Accepted URLs (``OMNI_DATABASE_URL``): ``sqlite:///path`` (also ``sqlite+aiosqlite://``) and
``postgresql://`` / ``postgresql+psycopg://`` (also ``postgres://``). The async engine uses
aiosqlite or psycopg 3; Alembic gets the matching synchronous URL (:func:`sync_url`).

SQLite connections run with foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` for every
transaction: the write lock is taken up front, so a transaction that reads and then writes (an
audit append reads the last row first) never fails half-way with "database is locked"; the cost
is that SQLite transactions run one at a time, which suits the embedded single-process mode.
PostgreSQL connections run in READ COMMITTED, which the audit append relies on (each statement
sees rows committed before it, in particular after the append lock was granted).

Deadlines (``OMNI_DATABASE_TIMEOUT_SECONDS``, default 5; contract section 18): on PostgreSQL the
connection attempt (``connect_timeout``), every statement (``statement_timeout``), every lock wait
(``lock_timeout``) and the pool checkout (``pool_timeout``); on SQLite the busy timeout (the wait
for the write lock; there is no network to stall). Pooled connections are pinged before use
(``pool_pre_ping``) so a connection cut by a database restart fails over to a new one. The
server-side timeouts cannot fire when the network itself stalls (a partition: nothing reaches the
server); callers that must answer in time (readiness, the audit writer, the stop steps) also
bound their own wait (``asyncio.timeout``).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_TIMEOUT_SECONDS = 5.0
"""``OMNI_DATABASE_TIMEOUT_SECONDS``'s default."""
DEFAULT_SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
"""The write-lock wait of offline schema migrations (``db upgrade``) on SQLite."""

_SQLITE_NAMES = frozenset({"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"})
_POSTGRES_NAMES = frozenset(
    {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg_async"}
)


def _parse(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            "database URL is not a valid SQLAlchemy URL (expected sqlite:///path or "
            "postgresql+psycopg://user@host/db)"
        ) from None
    if parsed.drivername not in _SQLITE_NAMES | _POSTGRES_NAMES:
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///path or "
            "postgresql+psycopg://user@host/db"
        )
    return parsed


def is_sqlite(url: str | URL) -> bool:
    """True for a SQLite URL.

    Raises:
        ValueError: not a supported database URL.
    """
    return _parse(url).drivername in _SQLITE_NAMES


def async_url(url: str | URL) -> URL:
    """The URL for the async engine: ``sqlite+aiosqlite`` or ``postgresql+psycopg``.

    Raises:
        ValueError: not a supported database URL (the message never shows a password).
    """
    parsed = _parse(url)
    if parsed.drivername in _SQLITE_NAMES:
        return parsed.set(drivername="sqlite+aiosqlite")
    return parsed.set(drivername="postgresql+psycopg")


def sync_url(url: str | URL) -> URL:
    """The synchronous URL of the same database (for Alembic): ``sqlite`` or ``postgresql+psycopg``.

    Raises:
        ValueError: not a supported database URL.
    """
    parsed = _parse(url)
    if parsed.drivername in _SQLITE_NAMES:
        return parsed.set(drivername="sqlite")
    return parsed.set(drivername="postgresql+psycopg")


def redacted(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 5,
    max_overflow: int = 10,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> AsyncEngine:
    """Create the async engine for ``url`` (no connection is opened yet).

    Args:
        url: ``OMNI_DATABASE_URL`` (module docstring lists the accepted forms).
        echo: log every SQL statement (debugging only: parameters are logged too).
        pool_size: PostgreSQL connections kept open.
        max_overflow: extra PostgreSQL connections allowed under load.
        timeout_seconds: the deadline of each connection attempt, statement, lock wait and pool
            checkout (PostgreSQL); of the wait for the write lock (SQLite).

    Returns:
        The engine; the caller disposes it (``await engine.dispose()``).

    Raises:
        ValueError: not a supported database URL.
    """
    target = async_url(url)
    if target.drivername == "sqlite+aiosqlite":
        engine = create_async_engine(target, echo=echo, connect_args={"timeout": timeout_seconds})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        target,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeout_seconds,
        pool_pre_ping=True,
        isolation_level="READ COMMITTED",
        connect_args=postgres_connect_args(timeout_seconds),
    )


def postgres_connect_args(timeout_seconds: float) -> dict[str, Any]:
    """libpq options bounding the connection attempt, each statement and each lock wait."""
    millis = max(1, int(timeout_seconds * 1000))
    return {
        "connect_timeout": max(1, math.ceil(timeout_seconds)),
        "options": f"-c statement_timeout={millis} -c lock_timeout={millis}",
    }


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so _on_begin decides how BEGIN looks.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
