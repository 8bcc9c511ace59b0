"""Following GSM's ``current`` aliases: adoption and drift (contract section 15), with fakes.

GSM is changed behind the service's back (the fake store's aliases), a refresh reads the aliases
as every refresh does, then one follower round decides.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.rotation.drift import DriftReason
from omni_secrets.service.rotation.adoption import FollowResult
from omni_secrets.service.views import SecretStatusView
from tests.unit.test_rotation_service import API_IDS, V1, V2, Rig, make_rig

API_TYPES = [SecretType.API_KEY, SecretType.API_SECRET, SecretType.API_PASSPHRASE]

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def rig(clean_env: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async for built in make_rig():
        yield built


def labels(secret_type: SecretType) -> dict[str, str]:
    return {"secret_type": secret_type.value}


async def gsm_moves(rig: Rig, ids: list[str], version: str = "2") -> None:
    """Someone sets ``current`` in GSM directly; this replica's refresh reads it."""
    for secret_id in ids:
        rig.store.set_aliases(secret_id, {"current": version, "previous": "1"})
    await rig.secrets.cache.refresh(API_TYPES, force_new=True)


def shown(rig: Rig) -> dict[str, SecretStatusView]:
    return {s.secret_type: s for s in rig.secrets.status_view().secrets}


async def pins(rig: Rig) -> dict[str, str | None]:
    async with rig.db() as uow:
        rows = await uow.metadata.list_all()
    return {r.secret_type: r.active_version for r in rows if r.gsm_secret_id in API_IDS}


async def adopted_rows(rig: Rig) -> list[dict[str, object]]:
    async with rig.db() as uow:
        return [
            {"actor": e.actor, **e.details}
            for e in uow.state.events
            if e.action == "rotation_adopted"
        ]


async def test_a_group_moved_whole_is_adopted(rig: Rig) -> None:
    """Every member names v2, the checks pass: pins, dates and served versions follow."""
    rig.add_v2(API_IDS)
    before = rig.secrets.metadata(SecretType.API_KEY)
    rig.clock.advance(86400)
    await gsm_moves(rig, API_IDS)
    assert {s.version for t, s in shown(rig).items() if t.startswith("api_")} == {"1"}

    result = await rig.follower.follow()

    assert result.adopted == ("api_credentials",)
    assert set((await pins(rig)).values()) == {"2"}
    rows = await adopted_rows(rig)
    assert len(rows) == 1 and rows[0]["actor"] == "gsm"
    assert rows[0]["activeVersions"] == dict.fromkeys(
        ["api_key", "api_secret", "api_passphrase"], "2"
    )
    after = rig.secrets.metadata(SecretType.API_KEY)
    assert before is not None and after is not None
    assert after.last_rotated_at == rig.clock.now() > before.last_rotated_at
    assert after.rotation_due_at == rig.clock.now() + timedelta(days=365)
    view = shown(rig)
    for name in ("api_key", "api_secret", "api_passphrase"):
        assert view[name].version == "2"
        assert view[name].rotation.drift is None
    assert "fake-" not in repr(rows)
    # A second round changes nothing: already in step.
    assert (await rig.follower.follow()).adopted == ()


async def test_a_partly_moved_group_drifts_and_stays_whole(rig: Rig) -> None:
    """Two of three moved: nothing adopted, the old generation served whole, drift shown; after
    ten minutes alert alias_drift; once the third moves the group is adopted and it resolves."""
    rig.add_v2(API_IDS)
    await gsm_moves(rig, API_IDS[:2])
    result = await rig.follower.follow()
    assert result.drifting == (("api_credentials", DriftReason.GROUP_INCOMPLETE),)
    view = shown(rig)
    for name in ("api_key", "api_secret", "api_passphrase"):
        assert view[name].version == "1"
        drift = view[name].rotation.drift
        assert drift is not None and drift.reason == "group_incomplete"
    assert set((await pins(rig)).values()) == {"1"}
    assert (
        rig.metrics.registry.get_sample_value("omni_secret_alias_drift", labels(API_TYPES[0])) == 1
    )
    since = view["api_key"].rotation.drift.since  # type: ignore[union-attr]

    rig.clock.advance(9 * 60)
    await rig.follower.follow()
    await asyncio.sleep(0.05)
    assert not [e for e in rig.sink.delivered if e.alert.name == "alias_drift"]
    rig.clock.advance(61)
    await rig.follower.follow()
    await asyncio.wait_for(_delivered(rig, "alias_drift"), 5)
    assert shown(rig)["api_key"].rotation.drift.since == since  # type: ignore[union-attr]

    await gsm_moves(rig, API_IDS)
    assert (await rig.follower.follow()).adopted == ("api_credentials",)
    assert shown(rig)["api_key"].rotation.drift is None
    await asyncio.wait_for(_delivered(rig, "alias_drift", action="resolve"), 5)
    assert (
        rig.metrics.registry.get_sample_value("omni_secret_alias_drift", labels(API_TYPES[0])) == 0
    )


async def test_failed_checks_keep_the_old_generation(rig: Rig) -> None:
    """A new set ApeX refuses is not adopted: checks_failed, v1 still served."""
    for secret_id in API_IDS:
        rig.store.add_version(secret_id, V2[secret_id] + "-refused")
    rig.apex.accepted.discard(V2["apex-omni-api-key"])
    await gsm_moves(rig, API_IDS)
    result = await rig.follower.follow()
    assert result.drifting == (("api_credentials", DriftReason.CHECKS_FAILED),)
    assert set((await pins(rig)).values()) == {"1"}
    assert {shown(rig)[t.value].version for t in API_TYPES} == {"1"}
    assert await adopted_rows(rig) == []


async def test_a_rotation_in_progress_is_left_alone(rig: Rig) -> None:
    """While a preview holds the group's lock, the follower does not judge the group."""
    rig.add_v2(API_IDS)
    await rig.preview()
    await gsm_moves(rig, API_IDS)
    assert await rig.follower.follow() == FollowResult()
    assert set((await pins(rig)).values()) == {"1"}


async def test_adopted_group_can_be_rolled_back(rig: Rig) -> None:
    """The adoption's audit row keeps the dates before it, as a commit's does."""
    rig.add_v2(API_IDS)
    before = rig.secrets.metadata(SecretType.API_SECRET)
    await gsm_moves(rig, API_IDS)
    await rig.follower.follow()
    rig.apex.accepted.add(V1["apex-omni-api-key"])
    await rig.service.rollback("api_key", actor="tester", correlation_id=None)
    after = rig.secrets.metadata(SecretType.API_SECRET)
    assert before is not None and after is not None
    assert (after.active_version, after.rotation_due_at) == ("1", before.rotation_due_at)


async def _delivered(rig: Rig, name: str, action: str = "trigger") -> None:
    while not [e for e in rig.sink.delivered if e.alert.name == name and e.action == action]:
        await asyncio.sleep(0.01)


async def test_a_stale_alias_view_never_undoes_a_commit(rig: Rig) -> None:
    """After a commit, an alias view older than the pin (its refresh's alias read failed) says
    ``current`` = 1: GSM is asked again, says 2, nothing is adopted, nothing drifts."""
    rig.add_v2(API_IDS)
    preview_id = await rig.preview()
    await rig.service.commit(preview_id, actor="tester", correlation_id=None)
    pins_ = rig.secrets.pins
    for secret_type in API_TYPES:
        view = pins_.aliases(secret_type)
        assert view is not None
        pins_._aliases[secret_type] = dataclasses.replace(
            view, aliases={"current": "1"}, enabled=frozenset({"1", "2"})
        )
    rig.apex.accepted.add(V1["apex-omni-api-key"])
    assert await rig.follower.follow() == FollowResult()
    assert set((await pins(rig)).values()) == {"2"}
    assert await adopted_rows(rig) == []


async def test_the_hit_path_never_asks_gsm_about_aliases(rig: Rig) -> None:
    """While a group drifts, serving (cache hits) and status make no GSM call at all."""
    rig.add_v2(API_IDS)
    await gsm_moves(rig, API_IDS[:1])
    await rig.follower.follow()
    methods = ("get_secret", "list_versions", "access", "get_version")
    before = {m: rig.store.call_count(m) for m in methods}
    for _ in range(1000):
        for secret_type in API_TYPES:
            assert rig.secrets.cache.get(secret_type).version == "1"
    rig.secrets.status_view()
    assert {m: rig.store.call_count(m) for m in methods} == before
