"""The commit journal on real databases (contract section 15): MAC'd entries, claims and closes
as compare-and-sets, and a writer without the key cannot forge or reopen an entry."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update

from omni_secrets.adapters.db.engine import create_engine as create_async_engine
from omni_secrets.adapters.db.tables import commit_journal
from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
from omni_secrets.domain.integrity import IntegrityKeyring, IntegrityStatus
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.rotation.journal import JournalEntry, JournalMember
from tests.integration.db.test_integrity import FAKE_KEY, sync_engine

T0 = datetime(2026, 12, 7, 16, 0, 0, 123456, tzinfo=UTC)
MEMBERS = (
    JournalMember("api_key", "apex-omni-api-key", "1", None, "2", "1"),
    JournalMember("api_secret", "apex-omni-api-secret", None, None, "2", "1"),
)
ENTRY = JournalEntry(
    journal_id="j-1",
    kind="commit",
    rotation_group="api_credentials",
    lock_id="preview-1",
    actor="tester",
    owner_replica_id="r-dead",
    owner_host="host-a",
    owner_pid=4242,
    started_at=T0,
    members=MEMBERS,
    dates={"api_key": (T0, T0 + timedelta(days=365)), "api_secret": (T0, T0 + timedelta(days=365))},
)


FORGED_MEMBERS = json.dumps(
    [dict(MEMBERS[0].as_json(), oldVersion="9", newVersion="7")], separators=(",", ":")
)


def factory(url: str, keyring: IntegrityKeyring | None) -> UnitOfWorkFactory:
    return sql_unit_of_work_factory(create_async_engine(url), keyring=keyring)


@pytest.mark.asyncio
async def test_round_trip_claim_and_close(database_url: str) -> None:
    """An entry reads back as written and verified; one claimant wins; closing is once."""
    uows = factory(database_url, IntegrityKeyring([FAKE_KEY]))
    async with uows() as uow:
        await uow.journal.open(ENTRY)
        await uow.commit()
    async with uows() as uow:
        (read,) = await uow.journal.list_open()
        assert replace(read, integrity=IntegrityStatus.UNCHECKED) == ENTRY
        assert read.integrity is IntegrityStatus.VERIFIED
        assert await uow.journal.claim("j-1", "r-1", T0) is True
        assert await uow.journal.claim("j-1", "r-2", T0 + timedelta(seconds=5)) is False
        assert await uow.journal.claim("j-1", "r-2", T0 + timedelta(seconds=61)) is True
        assert await uow.journal.close("j-1", "recovered", T0, outcome="back") is True
        assert await uow.journal.close("j-1", "closed", T0) is False
        await uow.commit()
    async with uows() as uow:
        assert await uow.journal.list_open() == []
        closed = await uow.journal.get("j-1")
    assert closed is not None
    assert (closed.status, closed.outcome, closed.integrity) == (
        "recovered",
        "back",
        IntegrityStatus.VERIFIED,
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "forgery",
    [
        {"members": FORGED_MEMBERS},
        {"rotation_group": "zk_keys"},
        {"mac": None},
        {"members": "not json"},
    ],
)
async def test_an_edited_entry_does_not_verify(
    database_url: str, forgery: dict[str, object]
) -> None:
    """A writer without the key who edits an entry gets it refused (never acted on)."""
    uows = factory(database_url, IntegrityKeyring([FAKE_KEY]))
    async with uows() as uow:
        await uow.journal.open(ENTRY)
        await uow.commit()
    engine = sync_engine(database_url)
    with engine.begin() as conn:
        conn.execute(update(commit_journal).values(**forgery))
    engine.dispose()
    async with uows() as uow:
        (read,) = await uow.journal.list_open()
    assert not read.integrity.servable


@pytest.mark.asyncio
async def test_a_closed_entry_cannot_be_reopened_without_the_key(database_url: str) -> None:
    uows = factory(database_url, IntegrityKeyring([FAKE_KEY]))
    async with uows() as uow:
        await uow.journal.open(ENTRY)
        await uow.journal.close("j-1", "closed", T0)
        await uow.commit()
    engine = sync_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE omni_commit_journal SET status = 'open', closed_at = NULL"))
    engine.dispose()
    async with uows() as uow:
        (read,) = await uow.journal.list_open()
    assert read.integrity is IntegrityStatus.INVALID
