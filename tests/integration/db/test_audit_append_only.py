"""The database itself refuses UPDATE, DELETE and TRUNCATE on the audit table (raw SQL too)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, pool, text
from sqlalchemy.exc import DBAPIError

from omni_secrets.adapters.db.engine import create_engine as create_async_engine
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
from omni_secrets.domain.models import NewAccessEvent


@pytest.fixture
async def audited_url(database_url: str) -> str:
    """A migrated database holding three audit rows written through the repository."""
    engine = create_async_engine(database_url)
    try:
        async with sql_unit_of_work_factory(engine)() as uow:
            for n in range(3):
                await uow.audit.append(
                    NewAccessEvent(
                        occurred_at=datetime(2026, 11, 25, 10, n, tzinfo=UTC),
                        action="status_view",
                        actor="alice",
                        result="success",
                    )
                )
            await uow.commit()
    finally:
        await engine.dispose()
    return database_url


@pytest.fixture
def raw(audited_url: str) -> Iterator[Engine]:
    """A plain synchronous engine: SQL straight to the database, bypassing the repository."""
    engine = create_engine(sync_url(audited_url), poolclass=pool.NullPool)
    yield engine
    engine.dispose()


def rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(text("SELECT id, actor, row_hash FROM omni_secret_access_events"))
        ]


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            pytest.param(
                "UPDATE omni_secret_access_events SET actor = 'mallory' WHERE id = 2", id="update"
            ),
            pytest.param("DELETE FROM omni_secret_access_events WHERE id = 3", id="delete"),
            pytest.param("DELETE FROM omni_secret_access_events", id="delete-all"),
        ],
    )
    def test_update_and_delete_are_refused(self, raw: Engine, statement: str) -> None:
        """Raw UPDATE/DELETE fail at the database and leave every row as it was."""
        before = rows(raw)
        with pytest.raises(DBAPIError, match="append-only"), raw.begin() as conn:
            conn.execute(text(statement))
        assert rows(raw) == before
        assert len(before) == 3

    def test_insert_still_works(self, raw: Engine) -> None:
        """The triggers block changes, not appends."""
        with raw.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO omni_secret_access_events (id, occurred_at, action, actor, "
                    "result, details, prev_hash, row_hash) VALUES (4, '2026-11-25 10:09:00', "
                    "'status_view', 'alice', 'success', '{}', :h, :h)"
                ),
                {"h": "0" * 64},
            )
        assert len(rows(raw)) == 4

    @pytest.mark.parametrize("backend", ["postgres"], indirect=True)
    def test_truncate_is_refused(self, raw: Engine) -> None:
        """TRUNCATE (which skips row triggers) is refused by the statement trigger."""
        with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"), raw.begin() as conn:
            conn.execute(text("TRUNCATE omni_secret_access_events"))
        assert len(rows(raw)) == 3

    @pytest.mark.parametrize("backend", ["postgres"], indirect=True)
    def test_replica_role_does_not_bypass(self, raw: Engine) -> None:
        """session_replication_role = replica does not skip ENABLE ALWAYS triggers."""
        with raw.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text("DELETE FROM omni_secret_access_events"))
        with raw.connect() as conn:
            states = conn.execute(
                text(
                    "SELECT tgname, tgenabled FROM pg_trigger "
                    "WHERE tgrelid = 'omni_secret_access_events'::regclass ORDER BY tgname"
                )
            ).all()
        assert [tuple(s) for s in states] == [
            ("omni_secret_access_events_append_only", "A"),
            ("omni_secret_access_events_no_truncate", "A"),
        ]
        assert len(rows(raw)) == 3
