"""Commit as a compare-and-set in GSM (contract section 15), with the fake store."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from omni_secrets.domain.errors import CandidateChanged, GsmChanged, SecretStoreError
from omni_secrets.testing import FakeSecretStore
from tests.unit.test_rotation_service import API_IDS, Rig, make_rig

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def rig(clean_env: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async for built in make_rig():
        yield built


async def _aliases(store: FakeSecretStore) -> dict[str, dict[str, str]]:
    return {i: dict((await store.get_secret(i)).aliases) for i in API_IDS}


async def _pins(rig: Rig) -> dict[str, str | None]:
    async with rig.db() as uow:
        rows = await uow.metadata.list_all()
    return {r.gsm_secret_id: r.active_version for r in rows if r.gsm_secret_id in API_IDS}


async def test_commit_moves_every_alias(rig: Rig) -> None:
    """current = candidate, previous = the old current (the pinned version: no alias yet)."""
    rig.add_v2(API_IDS)
    preview_id = await rig.preview()
    await rig.service.commit(preview_id, actor="tester", correlation_id=None)
    assert await _aliases(rig.store) == {i: {"current": "2", "previous": "1"} for i in API_IDS}
    assert set((await _pins(rig)).values()) == {"2"}


async def test_other_aliases_are_kept(rig: Rig) -> None:
    for secret_id in API_IDS:
        rig.store.set_aliases(secret_id, {"current": "1", "canary": "1"})
    rig.add_v2(API_IDS)
    preview_id = await rig.preview()
    await rig.service.commit(preview_id, actor="tester", correlation_id=None)
    expected = {"current": "2", "previous": "1", "canary": "1"}
    assert await _aliases(rig.store) == {i: expected for i in API_IDS}


async def test_candidate_disabled_after_preview(rig: Rig) -> None:
    rig.add_v2(API_IDS)
    preview_id = await rig.preview()
    rig.store.disable(API_IDS[2], "2")
    with pytest.raises(CandidateChanged) as caught:
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)
    assert caught.value.code == "CANDIDATE_CHANGED"
    assert caught.value.details["secretType"] == "api_passphrase"
    assert await _aliases(rig.store) == {i: {} for i in API_IDS}
    assert set((await _pins(rig)).values()) == {"1"}
    assert await rig.lock_holder() == {preview_id}  # still open: cancel or let it lapse


async def test_candidate_payload_differs(rig: Rig) -> None:
    """The digest kept with the preview no longer matches what GSM returns."""
    rig.add_v2(API_IDS)
    preview_id = await rig.preview()
    async with rig.db() as uow:
        record = await uow.previews.get(preview_id)
    assert record is not None
    assert all(m.candidate_digest and len(m.candidate_digest) == 64 for m in record.members)
    assert all("fake-" not in (m.candidate_digest or "") for m in record.members)
    versions = rig.store._secrets[API_IDS[1]]  # GSM never allows this
    versions[1] = dataclasses.replace(versions[1], value="fake-api_secret-swapped")
    with pytest.raises(CandidateChanged):
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)
    assert await _aliases(rig.store) == {i: {} for i in API_IDS}


async def test_current_moved_by_someone_else(rig: Rig) -> None:
    rig.add_v2(API_IDS)
    preview_id = await rig.preview()
    rig.store.set_aliases(API_IDS[0], {"current": "2"})
    with pytest.raises(GsmChanged) as caught:
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)
    assert caught.value.code == "GSM_CHANGED"
    assert await _aliases(rig.store) == {API_IDS[0]: {"current": "2"}} | {
        i: {} for i in API_IDS[1:]
    }
    assert set((await _pins(rig)).values()) == {"1"}


async def test_change_between_read_and_move_moves_the_others_back(rig: Rig) -> None:
    """The third member changes after the re-read: the two moved members go back."""
    rig.add_v2(API_IDS)
    for secret_id in API_IDS:
        rig.store.set_aliases(secret_id, {"current": "1"})
    preview_id = await rig.preview()
    move = rig.store.update_aliases
    calls: list[str] = []

    async def racing(secret_id: str, aliases: Any, etag: str) -> Any:
        calls.append(secret_id)
        if secret_id == API_IDS[2] and calls.count(secret_id) == 1:
            rig.store.set_aliases(secret_id, {"current": "1", "someone": "1"})  # new etag
        return await move(secret_id, aliases, etag)

    rig.store.update_aliases = racing  # type: ignore[method-assign]
    with pytest.raises(GsmChanged) as caught:
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)
    assert caught.value.details == {"secretType": "api_passphrase"}
    assert calls == [API_IDS[0], API_IDS[1], API_IDS[2], API_IDS[1], API_IDS[0]]
    assert await _aliases(rig.store) == {
        API_IDS[0]: {"current": "1"},
        API_IDS[1]: {"current": "1"},
        API_IDS[2]: {"current": "1", "someone": "1"},
    }
    assert set((await _pins(rig)).values()) == {"1"}


async def test_outage_mid_move_moves_back_and_answers_unavailable(rig: Rig) -> None:
    rig.add_v2(API_IDS)
    preview_id = await rig.preview()
    move = rig.store.update_aliases
    count = 0

    async def failing_second(secret_id: str, aliases: Any, etag: str) -> Any:
        nonlocal count
        count += 1
        if count == 2:
            rig.store.fail_next("update_aliases", "UNAVAILABLE")
        return await move(secret_id, aliases, etag)

    rig.store.update_aliases = failing_second  # type: ignore[method-assign]
    with pytest.raises(SecretStoreError) as caught:
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)
    assert caught.value.reason == "UNAVAILABLE"
    assert await _aliases(rig.store) == {i: {} for i in API_IDS}
    assert set((await _pins(rig)).values()) == {"1"}


async def test_commit_row_keeps_the_dates_before(rig: Rig) -> None:
    async with rig.db() as uow:
        before = next(r for r in await uow.metadata.list_all() if r.gsm_secret_id == API_IDS[0])
    rig.add_v2(API_IDS)
    preview_id = await rig.preview()
    rig.clock.advance(60)
    await rig.service.commit(preview_id, actor="tester", correlation_id=None)
    row = next(e for e in rig.db.db.committed.events if e.action == "rotation_commit")
    kept = row.details["datesBefore"]["api_key"]
    assert kept["lastRotatedAt"].startswith(before.last_rotated_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert kept["dueAt"].startswith(before.rotation_due_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert set(row.details["datesBefore"]) == {"api_key", "api_secret", "api_passphrase"}
