"""Cluster-wide leadership for background jobs (the rotation monitor's ``LeaderLock`` port).

PostgreSQL: a session-level ``pg_try_advisory_lock(key)`` held on one dedicated connection. The
replica that holds it stays the leader for as long as that connection lives; PostgreSQL releases
the lock by itself when the session ends (process killed, network lost), and the next replica to
try takes over. Each call re-checks the connection (one ``SELECT 1``) so a leader whose session
died finds out and competes again. A per-round ``pg_try_advisory_xact_lock`` would not do: rounds
are short, so replicas whose timers are out of phase would each win their own round and every
one of them would alert.

SQLite is the embedded single-process mode: :class:`LocalLeaderLock` always grants leadership.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omni_secrets.adapters.db.errors import translate_db_errors

ROTATION_MONITOR_LOCK_KEY = 0x6F6D6E69726F746E
"""The advisory lock key of the rotation monitor (the ASCII bytes of ``omnirotn``)."""

DEFAULT_TIMEOUT_SECONDS = 5.0
"""The longest wait for one step of leader election, ping or release."""

_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")
_PING = text("SELECT 1")


class PostgresLeaderLock:
    """Leadership through a PostgreSQL session advisory lock (see the module docstring).

    Args:
        engine: the service's async engine; one of its connections is kept while leading.
        key: the advisory lock key (one per job).
        timeout_seconds: the longest wait for any one step (a partition does not fail a call
            on its own: the network just stays silent).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        key: int = ROTATION_MONITOR_LOCK_KEY,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._engine = engine
        self._key = key
        self._timeout = timeout_seconds
        self._conn: AsyncConnection | None = None
        self._mutex = asyncio.Lock()

    async def try_acquire(self) -> bool:
        """True while this process holds the lock (taking it when it is free).

        Raises:
            DatabaseUnavailable: no connection could be made to compete for the lock.
        """
        async with self._mutex:
            if self._conn is not None:
                try:
                    async with asyncio.timeout(self._timeout):
                        await self._conn.execute(_PING)
                    return True
                except Exception:
                    # The session is gone, and with it our lock: compete again below.
                    await self._discard()
            with translate_db_errors(doing="leader election"):
                async with asyncio.timeout(self._timeout):
                    conn = await self._engine.connect()
                try:
                    # Autocommit: the lock is session-level, and no transaction stays open.
                    async with asyncio.timeout(self._timeout):
                        await conn.execution_options(isolation_level="AUTOCOMMIT")
                        won = bool((await conn.execute(_TRY_LOCK, {"key": self._key})).scalar())
                except BaseException:
                    await _drop(conn)
                    raise
            if won:
                self._conn = conn
                return True
            await conn.close()
            return False

    async def release(self) -> None:
        """Unlock and return the connection; never raises."""
        async with self._mutex:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                async with asyncio.timeout(self._timeout):
                    await conn.execute(_UNLOCK, {"key": self._key})
                    await conn.close()
            except Exception:
                # A pooled session would keep the lock: make sure this one ends.
                await _drop(conn)

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _drop(conn)


async def _drop(conn: AsyncConnection) -> None:
    """End the connection's session for good (never back into the pool alive)."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


class LocalLeaderLock:
    """Always the leader: the embedded SQLite mode runs one process."""

    async def try_acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def leader_lock_for(engine: AsyncEngine) -> PostgresLeaderLock | LocalLeaderLock:
    """The leader lock that fits ``engine``'s database (PostgreSQL advisory lock, else local)."""
    if engine.dialect.name == "postgresql":
        return PostgresLeaderLock(engine)
    return LocalLeaderLock()
