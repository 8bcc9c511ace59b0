"""``AuditLog.search`` in memory, the twin of the SQL query tested in
tests/integration/db/test_cli_audit.py (``audit list``, issue 26)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from omni_secrets.domain.models import NewAccessEvent
from omni_secrets.domain.repositories import AuditFilter
from omni_secrets.testing import InMemoryUnitOfWorkFactory

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def event(n: int, secret_type: str | None, actor: str) -> NewAccessEvent:
    return NewAccessEvent(
        occurred_at=T0 + timedelta(minutes=n),
        secret_type=secret_type,
        action="refresh" if n % 2 else "hydrate",
        actor=actor,
        result="success",
    )


async def test_newest_first_filtered_and_limited() -> None:
    factory = InMemoryUnitOfWorkFactory()
    async with factory() as uow:
        await uow.audit.append_many(
            [event(0, "api_key", "system"), event(1, "api_key", "ops"), event(2, None, "ops")]
        )
        await uow.commit()
    async with factory() as uow:

        async def ids(where: AuditFilter, limit: int = 10) -> list[int]:
            return [e.id for e in await uow.audit.search(where, limit)]

        assert await ids(AuditFilter()) == [3, 2, 1]
        assert await ids(AuditFilter(), 1) == [3]
        assert await ids(AuditFilter(secret_type="api_key")) == [2, 1]
        assert await ids(AuditFilter(actor="ops", action="refresh")) == [2]
        assert await ids(AuditFilter(since=T0 + timedelta(minutes=1))) == [3, 2]
