"""A database that is down or drops the connection surfaces as domain errors, not driver ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from omni_secrets.adapters.db.engine import create_engine
from omni_secrets.adapters.db.unit_of_work import SqlUnitOfWork, sql_unit_of_work_factory
from omni_secrets.domain.errors import AuditUnavailable, DatabaseUnavailable
from omni_secrets.domain.models import NewAccessEvent

EVENT = NewAccessEvent(
    occurred_at=datetime(2026, 11, 25, tzinfo=UTC),
    action="break_glass_activate",
    actor="alice",
    result="success",
)


class TestDatabaseUnavailable:
    async def test_unreachable_server_fails_on_enter(self) -> None:
        """Opening a unit of work against a closed port raises DatabaseUnavailable."""
        engine = create_engine("postgresql+psycopg://omni@127.0.0.1:1/omni")
        try:
            with pytest.raises(DatabaseUnavailable, match="unreachable"):
                await sql_unit_of_work_factory(engine)().__aenter__()
        finally:
            await engine.dispose()

    @pytest.mark.parametrize("backend", ["postgres"], indirect=True)
    async def test_connection_killed_mid_transaction(self, database_url: str) -> None:
        """A connection killed under an append raises AuditUnavailable; the next one works."""
        engine = create_engine(database_url, pool_size=1, max_overflow=0)
        admin = create_engine(database_url)
        uow_factory = sql_unit_of_work_factory(engine)
        try:
            uow = uow_factory()
            assert isinstance(uow, SqlUnitOfWork)
            async with uow:
                pid = (await uow.connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                async with admin.connect() as conn:
                    await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                with pytest.raises(AuditUnavailable):
                    await uow.audit.append(EVENT)
            async with uow_factory() as fresh:
                stored = await fresh.audit.append(EVENT)
                await fresh.commit()
        finally:
            await engine.dispose()
            await admin.dispose()
        assert stored.id == 1
