"""Rollback of a rotation group to its ``previous`` versions (contract section 15), with fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from omni_secrets.domain.errors import RollbackNotPossible, RotationInProgress
from tests.unit.test_rotation_service import API_IDS, V1, Rig, make_rig

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def rig(clean_env: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async for built in make_rig():
        yield built


async def _rows(rig: Rig) -> dict[str, tuple[str | None, object, object]]:
    async with rig.db() as uow:
        rows = await uow.metadata.list_all()
    return {
        r.gsm_secret_id: (r.active_version, r.last_rotated_at, r.rotation_due_at)
        for r in rows
        if r.gsm_secret_id in API_IDS
    }


async def _committed(rig: Rig) -> None:
    rig.add_v2(API_IDS)
    preview_id = await rig.preview()
    rig.clock.advance(60)
    await rig.service.commit(preview_id, actor="tester", correlation_id=None)


async def test_rollback_swaps_aliases_and_restores_dates(rig: Rig) -> None:
    before = await _rows(rig)
    await _committed(rig)
    rig.apex.accepted.add(V1["apex-omni-api-key"])
    view = await rig.service.rollback("api_secret", actor="tester", correlation_id=None)
    assert {m.secret_type: m.active_version for m in view.members} == {
        "api_key": "1",
        "api_secret": "1",
        "api_passphrase": "1",
    }
    assert await _rows(rig) == before
    for secret_id in API_IDS:
        info = await rig.store.get_secret(secret_id)
        assert dict(info.aliases) == {"current": "1", "previous": "2"}
    rows = [e for e in rig.db.db.committed.events if e.action == "rotation_rollback"]
    assert [r.result for r in rows] == ["success"]
    assert rows[0].details["activeVersions"]["api_key"] == "1"
    assert await rig.lock_holder() == {None}
    # The previous key is what ApeX was asked about; the cache serves version 1 again.
    assert rig.apex.seen[-1] == V1["apex-omni-api-key"]


async def test_rollback_of_the_rollback_returns_to_the_commit(rig: Rig) -> None:
    await _committed(rig)
    after_commit = await _rows(rig)
    rig.apex.accepted.add(V1["apex-omni-api-key"])
    await rig.service.rollback("api_key", actor="tester", correlation_id=None)
    await rig.service.rollback("api_key", actor="tester", correlation_id=None)
    assert await _rows(rig) == after_commit


async def test_no_previous_is_not_possible(rig: Rig) -> None:
    before = await _rows(rig)
    with pytest.raises(RollbackNotPossible) as caught:
        await rig.service.rollback("api_key", actor="tester", correlation_id=None)
    assert caught.value.code == "ROLLBACK_NOT_POSSIBLE"
    assert await _rows(rig) == before
    assert await rig.lock_holder() == {None}
    failed = [e for e in rig.db.db.committed.events if e.action == "rotation_rollback"]
    assert failed == [] or all(e.result == "failure" for e in failed)


async def test_previous_disabled_changes_nothing(rig: Rig) -> None:
    await _committed(rig)
    before = await _rows(rig)
    rig.store.disable(API_IDS[1], "1")
    rig.apex.accepted.add(V1["apex-omni-api-key"])
    with pytest.raises(RollbackNotPossible) as caught:
        await rig.service.rollback("api_key", actor="tester", correlation_id=None)
    assert "DISABLED" in caught.value.message
    assert await _rows(rig) == before
    for secret_id in API_IDS:
        assert (await rig.store.get_secret(secret_id)).current == "2"


async def test_self_test_refusal_changes_nothing(rig: Rig) -> None:
    """ApeX refuses the previous key (revoked already): no rollback."""
    await _committed(rig)
    before = await _rows(rig)
    with pytest.raises(RollbackNotPossible) as caught:
        await rig.service.rollback("api_key", actor="tester", correlation_id=None)
    assert caught.value.details == {"check": "apex_self_test"}
    assert await _rows(rig) == before
    for secret_id in API_IDS:
        assert (await rig.store.get_secret(secret_id)).current == "2"
    assert await rig.lock_holder() == {None}


async def test_open_preview_blocks_rollback(rig: Rig) -> None:
    await _committed(rig)
    rig.store.add_version(API_IDS[0], "fake-api_key-v3")
    await rig.preview()
    with pytest.raises(RotationInProgress):
        await rig.service.rollback("api_key", actor="tester", correlation_id=None)
