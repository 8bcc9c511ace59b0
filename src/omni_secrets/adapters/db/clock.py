"""The database's clock (the :class:`~omni_secrets.domain.clock.ReferenceTime` port).

PostgreSQL: ``SELECT clock_timestamp()`` (the server's time when the statement runs, not the
transaction's start like ``now()``), one short autocommit statement on a pooled connection.
SQLite runs on this host's clock: there is no other clock to agree on, so :meth:`reference_now`
answers None and the offset is 0.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from omni_secrets.adapters.db.errors import translate_db_errors

_NOW = text("SELECT clock_timestamp()")


class SqlReferenceTime:
    """Reads the shared database's clock.

    Args:
        engine: the service's async engine.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._host_clock = engine.dialect.name != "postgresql"

    async def reference_now(self) -> datetime | None:
        """The database's time now (None on SQLite: this host's clock).

        Raises:
            DatabaseUnavailable: the database did not answer.
        """
        if self._host_clock:
            return None
        with translate_db_errors(doing="database clock"):
            async with self._engine.connect() as conn:
                moment = (await conn.execute(_NOW)).scalar_one()
        if not isinstance(moment, datetime):
            raise TypeError("clock_timestamp() did not return a timestamp")
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
