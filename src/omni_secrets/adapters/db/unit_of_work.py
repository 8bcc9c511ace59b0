"""``SqlUnitOfWork``: one connection, one transaction, the five SQL repositories.

The transaction begins with the first statement (SQLAlchemy autobegin) and ends with
:meth:`SqlUnitOfWork.commit` or a rollback; leaving the ``async with`` block rolls back whatever
was not committed and returns the connection to the pool.
"""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omni_secrets.adapters.db.audit import SqlAuditLog
from omni_secrets.adapters.db.errors import translate_db_errors
from omni_secrets.adapters.db.journal import SqlCommitJournal
from omni_secrets.adapters.db.repository import (
    SqlMetadataRepository,
    SqlOverrideRepository,
    SqlPreviewRepository,
)
from omni_secrets.domain.clock import Clock, SystemClock
from omni_secrets.domain.integrity import IntegrityKeyring
from omni_secrets.domain.repositories import UnitOfWorkFactory

_T = TypeVar("_T")


class SqlUnitOfWork:
    """The :class:`~omni_secrets.domain.repositories.UnitOfWork` port over an async engine.

    Args:
        engine: from :func:`omni_secrets.adapters.db.engine.create_engine`.
        clock: stamps ``updated_at`` on metadata rows.
        keyring: the integrity keys (keyed audit chain, MACs on pins and overrides); None
            outside production when no key is configured.

    Raises:
        RuntimeError: a repository is used outside the ``async with`` block, or the block is
            entered twice.
    """

    def __init__(
        self, engine: AsyncEngine, *, clock: Clock, keyring: IntegrityKeyring | None = None
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._keyring = keyring
        self._conn: AsyncConnection | None = None
        self._metadata: SqlMetadataRepository | None = None
        self._audit: SqlAuditLog | None = None
        self._overrides: SqlOverrideRepository | None = None
        self._previews: SqlPreviewRepository | None = None
        self._journal: SqlCommitJournal | None = None

    @property
    def metadata(self) -> SqlMetadataRepository:
        return self._entered(self._metadata)

    @property
    def audit(self) -> SqlAuditLog:
        return self._entered(self._audit)

    @property
    def overrides(self) -> SqlOverrideRepository:
        return self._entered(self._overrides)

    @property
    def previews(self) -> SqlPreviewRepository:
        return self._entered(self._previews)

    @property
    def journal(self) -> SqlCommitJournal:
        return self._entered(self._journal)

    @property
    def connection(self) -> AsyncConnection:
        """The underlying connection (diagnostics and tests; repositories cover the service)."""
        return self._entered(self._conn)

    @staticmethod
    def _entered(value: _T | None) -> _T:
        if value is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return value

    async def __aenter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("unit of work entered twice")
        with translate_db_errors(doing="database connect"):
            conn = await self._engine.connect()
        self._conn = conn
        self._metadata = SqlMetadataRepository(conn, self._clock, self._keyring)
        self._audit = SqlAuditLog(conn, self._keyring)
        self._overrides = SqlOverrideRepository(conn, self._keyring)
        self._previews = SqlPreviewRepository(conn, self._keyring)
        self._journal = SqlCommitJournal(conn, self._keyring)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        self._metadata = None
        self._audit = None
        self._overrides = None
        self._previews = None
        self._journal = None
        if conn is None:
            return
        # Cleanup must not mask the error that ended the block: a broken connection cannot
        # roll back, and the pool discards it on close anyway.
        with contextlib.suppress(Exception):
            await conn.rollback()
        with contextlib.suppress(Exception):
            await conn.close()

    async def commit(self) -> None:
        conn = self._entered(self._conn)
        with translate_db_errors(doing="commit"):
            await conn.commit()

    async def rollback(self) -> None:
        conn = self._entered(self._conn)
        with translate_db_errors(doing="rollback"):
            await conn.rollback()


def sql_unit_of_work_factory(
    engine: AsyncEngine,
    *,
    clock: Clock | None = None,
    keyring: IntegrityKeyring | None = None,
) -> UnitOfWorkFactory:
    """A factory of :class:`SqlUnitOfWork` sharing ``engine`` (and its pool).

    Args:
        engine: the async engine; the caller owns and disposes it.
        clock: stamps ``updated_at`` (the system clock when omitted).
        keyring: the integrity keys (see :class:`SqlUnitOfWork`).
    """
    effective = clock or SystemClock()

    def make() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, clock=effective, keyring=keyring)

    return make
