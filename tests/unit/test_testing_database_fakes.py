"""The in-memory database fake's own rules (its port behaviour is in the contract suite)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from omni_secrets.domain.errors import AuditUnavailable, DatabaseUnavailable
from omni_secrets.domain.models import NewAccessEvent
from omni_secrets.testing import InMemoryUnitOfWorkFactory

EVENT = NewAccessEvent(
    occurred_at=datetime(2026, 11, 25, tzinfo=UTC),
    action="hydrate",
    actor="system",
    result="success",
)


class TestInMemoryUnitOfWork:
    async def test_nested_unit_of_work_in_one_task_is_refused(self) -> None:
        """Opening a second unit of work inside the first raises instead of hanging."""
        factory = InMemoryUnitOfWorkFactory()
        async with factory():
            with pytest.raises(RuntimeError, match="already open"):
                await factory().__aenter__()

    async def test_units_of_work_run_one_at_a_time(self) -> None:
        """A second task waits for the first unit of work and then sees its commit."""
        factory = InMemoryUnitOfWorkFactory()
        seen: list[int] = []

        async def first() -> None:
            async with factory() as uow:
                await uow.audit.append(EVENT)
                await asyncio.sleep(0)
                await uow.commit()

        async def second() -> None:
            async with factory() as uow:
                seen.append(len(await uow.audit.recent(10)))

        await asyncio.gather(first(), second())
        assert seen == [1]
        assert factory.db.commits == 1

    async def test_unavailable_database_refuses_to_open(self) -> None:
        """With ``unavailable`` set, entering fails like a dead database."""
        factory = InMemoryUnitOfWorkFactory()
        factory.db.unavailable = True
        with pytest.raises(DatabaseUnavailable):
            await factory().__aenter__()

    async def test_audit_failure_injection(self) -> None:
        """With ``fail_audit_appends`` set, appends raise AuditUnavailable and store nothing."""
        factory = InMemoryUnitOfWorkFactory()
        factory.db.fail_audit_appends = True
        async with factory() as uow:
            with pytest.raises(AuditUnavailable):
                await uow.audit.append(EVENT)
            await uow.commit()
        assert factory.db.committed.events == []
