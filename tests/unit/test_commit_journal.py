"""The commit journal and its recovery (contract section 15), with the fake store and database.

A crash is a ``CancelledError`` raised out of an alias move: nothing after it runs (no move
back, no record), as when the process dies there. The entry is then this replica's own and no
longer in flight, so one recovery round resolves it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.integrity import IntegrityStatus
from omni_secrets.domain.rotation.journal import (
    JournalEntry,
    JournalMember,
    Resolution,
    claimable,
    decide,
    owner_is_dead,
)
from omni_secrets.domain.secret_store import SecretInfo
from omni_secrets.testing import FakeSecretStore
from tests.unit.test_rotation_service import API_IDS, V1, Rig, make_rig

T0 = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)


def entry(owner: str = "dead", started: datetime = T0, **changes: object) -> JournalEntry:
    members = tuple(
        JournalMember(t, f"apex-omni-{t}", "1", None, "2", "1") for t in ("a", "b", "c")
    )
    base = JournalEntry(
        journal_id="j1",
        kind="commit",
        rotation_group="api_credentials",
        lock_id="p1",
        actor="tester",
        owner_replica_id=owner,
        owner_host="h",
        owner_pid=1,
        started_at=started,
        members=members,
        dates={},
    )
    return JournalEntry(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})  # type: ignore[arg-type]


class TestRules:
    def test_forward_only_when_every_member_names_the_new_version(self) -> None:
        e = entry()
        assert decide(e, {"a": "2", "b": "2", "c": "2"}) is Resolution.FORWARD
        assert decide(e, {"a": "2", "b": "2", "c": "1"}) is Resolution.BACK
        assert decide(e, {"a": "1", "b": "1", "c": "1"}) is Resolution.BACK
        assert decide(e, {"a": "2", "b": "3", "c": "2"}) is Resolution.BACK  # someone else's
        assert decide(e, {"a": "2", "b": None, "c": "2"}) is Resolution.BACK

    def test_a_peer_waits_for_age_and_silence(self) -> None:
        e = entry(owner="r1")
        young = T0 + timedelta(seconds=1)
        old = T0 + timedelta(seconds=10)
        assert not owner_is_dead(e, live_replica_ids=frozenset(), now=young)
        assert not owner_is_dead(e, live_replica_ids=frozenset({"r1"}), now=old)
        assert owner_is_dead(e, live_replica_ids=frozenset({"r2"}), now=old)

    def test_a_claim_keeps_others_away_until_it_lapses(self) -> None:
        e = entry(claimed_by="r2", claimed_at=T0)
        assert claimable(e, replica_id="r2", now=T0)
        assert not claimable(e, replica_id="r3", now=T0 + timedelta(seconds=30))
        assert claimable(e, replica_id="r3", now=T0 + timedelta(seconds=61))


@pytest.fixture
async def rig(clean_env: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async for built in make_rig():
        yield built


def crash_after(store: FakeSecretStore, landed: int) -> None:
    """The process 'dies' at the alias move after ``landed`` moves (which do land)."""
    real = store.update_aliases
    calls = 0

    async def update(secret_id: str, aliases: Mapping[str, str], etag: str) -> SecretInfo:
        nonlocal calls
        calls += 1
        if calls > landed:
            raise asyncio.CancelledError
        info = await real(secret_id, aliases, etag)
        if calls == landed == len(API_IDS):
            raise asyncio.CancelledError  # every move landed, the record never ran
        return info

    store.update_aliases = update  # type: ignore[method-assign]
    store._restore_update = real  # type: ignore[attr-defined]


def heal(store: FakeSecretStore) -> None:
    store.update_aliases = store._restore_update  # type: ignore[attr-defined,method-assign]


async def aliases(store: FakeSecretStore) -> dict[str, dict[str, str]]:
    return {i: dict((await store.get_secret(i)).aliases) for i in API_IDS}


async def state(rig: Rig) -> tuple[dict[str, str | None], list[JournalEntry], list[str]]:
    async with rig.db() as uow:
        rows = await uow.metadata.list_all()
        journal = list(uow.state.journal.values())
        recovered = [e.action for e in uow.state.events if e.action == "rotation_recovered"]
    pins = {r.gsm_secret_id: r.active_version for r in rows if r.gsm_secret_id in API_IDS}
    return pins, journal, recovered


async def crashed_commit(rig: Rig, landed: int) -> str:
    rig.add_v2(API_IDS)
    preview_id = await rig.preview()
    crash_after(rig.store, landed)
    with pytest.raises(asyncio.CancelledError):
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)
    heal(rig.store)
    return preview_id


class TestRecovery:
    @pytest.mark.asyncio
    async def test_a_normal_commit_closes_its_entry(self, rig: Rig) -> None:
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)
        _pins, journal, _ = await state(rig)
        assert [(e.kind, e.status, e.lock_id) for e in journal] == [
            ("commit", "closed", preview_id)
        ]
        assert [m.new_version for m in journal[0].members] == ["2", "2", "2"]
        assert [m.old_version for m in journal[0].members] == [None, None, None]

    @pytest.mark.asyncio
    async def test_crash_between_moves_goes_back_whole(self, rig: Rig) -> None:
        """One member moved, the rest not: every member back to version 1, re-written."""
        preview_id = await crashed_commit(rig, landed=1)
        mixed = await aliases(rig.store)
        assert sorted(a.get("current", "1") for a in mixed.values()) == ["1", "1", "2"]
        pins, journal, _ = await state(rig)
        assert [e.status for e in journal] == ["open"]
        etags = {i: (await rig.store.get_secret(i)).etag for i in API_IDS}

        await rig.recovery.run_once()

        assert await aliases(rig.store) == {i: {} for i in API_IDS}
        after = {i: (await rig.store.get_secret(i)).etag for i in API_IDS}
        assert all(after[i] != etags[i] for i in API_IDS)
        pins, journal, recovered = await state(rig)
        assert set(pins.values()) == {"1"}
        assert [(e.status, e.outcome) for e in journal] == [("recovered", "back")]
        assert recovered == ["rotation_recovered"]
        assert await rig.lock_holder() == {None}
        async with rig.db() as uow:
            preview = await uow.previews.get(preview_id)
        assert preview is not None and preview.status == "cancelled"
        for secret_type in ("api_key", "api_secret", "api_passphrase"):
            assert rig.secrets.cache.get(SecretType(secret_type)).version == "1"

    @pytest.mark.asyncio
    async def test_every_move_landed_goes_forward(self, rig: Rig) -> None:
        """All moved, no record: the commit is finished (pins, dates, preview), then a rollback
        still finds the dates to restore in the recovery's audit row."""
        preview_id = await crashed_commit(rig, landed=len(API_IDS))
        pins, journal, _ = await state(rig)
        assert set(pins.values()) == {"1"} and [e.status for e in journal] == ["open"]

        await rig.recovery.run_once()

        assert await aliases(rig.store) == {i: {"current": "2", "previous": "1"} for i in API_IDS}
        pins, journal, _ = await state(rig)
        assert set(pins.values()) == {"2"}
        assert [(e.status, e.outcome) for e in journal] == [("recovered", "forward")]
        async with rig.db() as uow:
            preview = await uow.previews.get(preview_id)
            rows = await uow.metadata.list_all()
        assert preview is not None and preview.status == "committed"
        assert {r.last_rotated_at for r in rows if r.gsm_secret_id in API_IDS} == {
            journal[0].dates["api_key"][0]
        }
        rig.apex.accepted.add(V1["apex-omni-api-key"])
        await rig.service.rollback("api_key", actor="tester", correlation_id=None)
        assert await aliases(rig.store) == {i: {"current": "1", "previous": "2"} for i in API_IDS}

    @pytest.mark.asyncio
    async def test_a_live_owners_entry_is_left_alone(self, rig: Rig) -> None:
        """An entry whose owner is another, live replica is not touched."""
        await crashed_commit(rig, landed=1)
        async with rig.db() as uow:
            (open_entry,) = await uow.journal.list_open()
            uow.state.journal[open_entry.journal_id] = entry(
                owner="someone-else",
                started=open_entry.started_at,
                journal_id=open_entry.journal_id,
                members=open_entry.members,
                lock_id=open_entry.lock_id,
            )
            await uow.commit()
        rig.clock.advance(60)
        recovery = rig.recovery._recovery
        recovery._live_replicas = _returning(frozenset({"someone-else"}))
        assert (await recovery.recover_dead()).recovered == ()
        recovery._live_replicas = _returning(frozenset())
        result = await recovery.recover_dead()
        assert [outcome for _id, outcome in result.recovered] == [Resolution.BACK]


def _returning(value: frozenset[str]):  # type: ignore[no-untyped-def]
    async def live() -> frozenset[str]:
        return value

    return live


class TestRollbackRecovery:
    async def _committed(self, rig: Rig) -> None:
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)
        rig.apex.accepted.add(V1["apex-omni-api-key"])

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("landed", "outcome", "served"), [(1, "back", "2"), (len(API_IDS), "forward", "1")]
    )
    async def test_a_crashed_rollback_ends_whole(
        self, rig: Rig, landed: int, outcome: str, served: str
    ) -> None:
        """A rollback killed after some swaps goes back to the commit; after every swap it is
        finished, with the dates before the commit restored."""
        dates_before = rig.secrets.metadata(SecretType.API_KEY)
        await self._committed(rig)
        crash_after(rig.store, landed)
        with pytest.raises(asyncio.CancelledError):
            await rig.service.rollback("api_key", actor="tester", correlation_id=None)
        heal(rig.store)

        await rig.recovery.run_once()

        pins, journal, _ = await state(rig)
        assert set(pins.values()) == {served}
        recovered = [e for e in journal if e.kind == "rollback"]
        assert [(e.status, e.outcome) for e in recovered] == [("recovered", outcome)]
        previous = "1" if served == "2" else "2"
        expected = {"current": served, "previous": previous}
        assert await aliases(rig.store) == {i: expected for i in API_IDS}
        assert await rig.lock_holder() == {None}
        if outcome == "forward":
            now = rig.secrets.metadata(SecretType.API_KEY)
            assert dates_before is not None and now is not None
            assert now.rotation_due_at == dates_before.rotation_due_at


@pytest.mark.asyncio
async def test_an_entry_failing_its_mac_is_never_acted_on(rig: Rig) -> None:
    """A journal entry whose MAC does not verify (forged or edited) moves nothing: it is
    reported as an integrity violation once, and stays open for a human."""
    await crashed_commit(rig, landed=1)
    mixed = await aliases(rig.store)
    async with rig.db() as uow:
        (open_entry,) = await uow.journal.list_open()
        uow.state.journal[open_entry.journal_id] = dataclasses.replace(
            open_entry, integrity=IntegrityStatus.INVALID
        )
        await uow.commit()
    for _ in range(2):
        await rig.recovery.run_once()
    assert await aliases(rig.store) == mixed
    _pins, journal, recovered = await state(rig)
    assert [e.status for e in journal] == ["open"] and recovered == []
    violations = rig.metrics.registry.get_sample_value(
        "omni_integrity_violations_total", {"table": "omni_commit_journal"}
    )
    assert violations == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(("host", "alive", "recovered"), [
    ("same", False, True),   # this host's previous process died: recovered before serving
    ("same", True, False),   # another process on this host still runs: its entry is its own
    ("other", False, False),  # another host: left to the owner-silence rule (periodic job)
])  # fmt: skip
async def test_start_up_recovers_what_this_hosts_previous_process_left(
    rig: Rig, host: str, alive: bool, recovered: bool
) -> None:
    await crashed_commit(rig, landed=1)
    recovery = rig.recovery._recovery
    me = recovery._writer.owner
    async with rig.db() as uow:
        (open_entry,) = await uow.journal.list_open()
        uow.state.journal[open_entry.journal_id] = dataclasses.replace(
            open_entry,
            owner_replica_id="previous-process",
            owner_host=me.host if host == "same" else "elsewhere",
            owner_pid=me.pid + 1,
        )
        await uow.commit()
    recovery._pid_alive = lambda _pid: alive
    result = await recovery.recover_at_startup()
    assert bool(result.recovered) is recovered


class TestOutdatedEntries:
    @pytest.mark.asyncio
    async def test_a_replayed_entry_of_a_finished_commit_moves_nothing(self, rig: Rig) -> None:
        """The open row of a commit that finished long ago (restored by a database writer, MAC
        and all): its lock is gone, so it is closed stale and GSM is not written."""
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)
        async with rig.db() as uow:
            (done,) = uow.state.journal.values()
            uow.state.journal[done.journal_id] = dataclasses.replace(
                done, status="open", closed_at=None, owner_replica_id="long-gone"
            )
            await uow.commit()
        etags = {i: (await rig.store.get_secret(i)).etag for i in API_IDS}
        rig.clock.advance(60)
        await rig.recovery.run_once()
        assert {i: (await rig.store.get_secret(i)).etag for i in API_IDS} == etags
        assert await aliases(rig.store) == {i: {"current": "2", "previous": "1"} for i in API_IDS}
        pins, journal, recovered = await state(rig)
        assert set(pins.values()) == {"2"}
        assert [(e.status, e.outcome) for e in journal] == [("recovered", "stale")]
        assert recovered == ["rotation_recovered"]

    @pytest.mark.asyncio
    async def test_a_member_on_a_third_version_is_not_moved(self, rig: Rig) -> None:
        """After the crash someone points one member at yet another version: the entry no
        longer describes the group; nothing is moved back or forward (the mix shows as drift)."""
        await crashed_commit(rig, landed=1)
        rig.store.add_version(API_IDS[2], "fake-api-passphrase-v3")
        info = await rig.store.get_secret(API_IDS[2])
        await rig.store.update_aliases(API_IDS[2], {"current": "3"}, info.etag)
        before = await aliases(rig.store)
        await rig.recovery.run_once()
        assert await aliases(rig.store) == before
        _pins, journal, _ = await state(rig)
        assert [(e.status, e.outcome) for e in journal] == [("recovered", "stale")]
        assert await rig.lock_holder() == {None}
