"""The persistence ports' contract, run against the in-memory fake, SQLite and PostgreSQL.

One suite for all three keeps the fake honest: whatever a service test learns from the fake holds
on the real databases too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omni_secrets.domain.audit_chain import GENESIS_HASH, verify_chain
from omni_secrets.domain.catalog import RotationGroup, SecretType
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import ReplayDetected
from omni_secrets.domain.models import (
    BreakGlassOverrideRecord,
    NewAccessEvent,
    OmniSecretMetadata,
    PreviewCheckRecord,
    PreviewMemberRecord,
    RotationPreviewRecord,
)
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import VersionState

T0 = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
GROUPS = {
    SecretType.API_KEY: RotationGroup.API_CREDENTIALS,
    SecretType.API_SECRET: RotationGroup.API_CREDENTIALS,
    SecretType.API_PASSPHRASE: RotationGroup.API_CREDENTIALS,
    SecretType.ZK_SEEDS: RotationGroup.ZK_KEYS,
    SecretType.ZK_L2_KEY: RotationGroup.ZK_KEYS,
}


def metadata_row(secret_type: SecretType, **changes: Any) -> OmniSecretMetadata:
    values: dict[str, Any] = {
        "secret_type": secret_type,
        "gsm_secret_id": "apex-omni-" + secret_type.value.replace("_", "-"),
        "gsm_project_id": "omni-test",
        "required": GROUPS[secret_type] is RotationGroup.API_CREDENTIALS,
        "rotation_group": GROUPS[secret_type],
        "last_rotated_at": T0,
        "rotation_due_at": T0 + timedelta(days=365),
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(changes)
    return OmniSecretMetadata(**values)


def event(n: int = 0, **changes: Any) -> NewAccessEvent:
    values: dict[str, Any] = {
        "occurred_at": T0 + timedelta(seconds=n),
        "secret_type": "api_key",
        "action": "hydrate",
        "actor": "system",
        "result": "success",
        "duration_ms": n,
        "correlation_id": f"req-{n}",
        "details": {"version": str(n), "nested": {"b": [1, 2.5, None], "a": "é"}},
    }
    values.update(changes)
    return NewAccessEvent(**values)


def override(
    override_id: str = "ovr-1", nonce: str = "fake-nonce-1", **changes: Any
) -> BreakGlassOverrideRecord:
    values: dict[str, Any] = {
        "override_id": override_id,
        "secret_type": SecretType.API_SECRET,
        "key_id": "0123456789abcdef",
        "ciphertext": "ZmFrZS1jaXBoZXJ0ZXh0",
        "nonce": nonce,
        "actor": "alice",
        "reason": "GSM outage drill",
        "ticket": "INC-42",
        "activated_at": T0,
        "expires_at": T0 + timedelta(minutes=15),
    }
    values.update(changes)
    return BreakGlassOverrideRecord(**values)


def preview(preview_id: str = "prv-1") -> RotationPreviewRecord:
    return RotationPreviewRecord(
        preview_id=preview_id,
        rotation_group=RotationGroup.API_CREDENTIALS,
        actor="alice",
        created_at=T0,
        expires_at=T0 + timedelta(minutes=15),
        ready=False,
        members=(
            PreviewMemberRecord(
                secret_type=SecretType.API_KEY,
                current_version="3",
                candidate_version="4",
                candidate_state=VersionState.ENABLED,
            ),
            PreviewMemberRecord(
                secret_type=SecretType.API_SECRET,
                current_version=None,
                candidate_version="2",
                candidate_state=VersionState.DISABLED,
            ),
        ),
        checks=(
            PreviewCheckRecord(
                name="candidates_enabled", ok=False, detail="api_secret v2 is DISABLED"
            ),
            PreviewCheckRecord(name="candidates_differ", ok=True, detail="all differ"),
        ),
    )


async def seed_all(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.metadata.insert_missing(metadata_row(t) for t in SecretType)
        await uow.commit()


class TestUnitOfWork:
    async def test_commit_makes_changes_visible(self, uow_factory: UnitOfWorkFactory) -> None:
        """A committed change is seen by a later unit of work."""
        await seed_all(uow_factory)
        async with uow_factory() as uow:
            assert len(await uow.metadata.list_all()) == 5

    async def test_leaving_without_commit_rolls_back(self, uow_factory: UnitOfWorkFactory) -> None:
        """Changes not committed before the block ends are discarded."""
        async with uow_factory() as uow:
            await uow.metadata.insert_missing([metadata_row(SecretType.API_KEY)])
            await uow.audit.append(event())
        async with uow_factory() as uow:
            assert await uow.metadata.list_all() == []
            assert await uow.audit.recent(10) == []

    async def test_exception_rolls_back_and_propagates(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """An exception inside the block discards the transaction and reaches the caller."""

        async def insert_then_fail() -> None:
            async with uow_factory() as uow:
                await uow.metadata.insert_missing([metadata_row(SecretType.API_KEY)])
                raise LookupError("boom")

        with pytest.raises(LookupError, match="boom"):
            await insert_then_fail()
        async with uow_factory() as uow:
            assert await uow.metadata.get("api_key") is None

    async def test_rollback_discards_since_last_commit(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """rollback() drops what came after the last commit and the unit of work goes on."""
        async with uow_factory() as uow:
            await uow.metadata.insert_missing([metadata_row(SecretType.API_KEY)])
            await uow.commit()
            await uow.metadata.insert_missing([metadata_row(SecretType.API_SECRET)])
            await uow.rollback()
            await uow.metadata.insert_missing([metadata_row(SecretType.ZK_SEEDS)])
            await uow.commit()
        async with uow_factory() as uow:
            names = [row.secret_type for row in await uow.metadata.list_all()]
        assert names == [SecretType.API_KEY, SecretType.ZK_SEEDS]

    async def test_repositories_refuse_use_outside_block(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Using a repository before entering the block is a programming error."""
        uow = uow_factory()
        with pytest.raises(RuntimeError):
            await uow.audit.recent(1)


class TestMetadataRepository:
    async def test_round_trip_keeps_every_field(self, uow_factory: UnitOfWorkFactory) -> None:
        """A row reads back equal, with aware UTC timestamps to the microsecond."""
        row = metadata_row(
            SecretType.API_KEY,
            active_version="7",
            preview_id="prv-9",
            preview_expires_at=T0 + timedelta(minutes=5),
            break_glass_activated_at=T0,
            break_glass_expires_at=T0 + timedelta(minutes=30),
        )
        async with uow_factory() as uow:
            assert await uow.metadata.insert_missing([row]) == 1
            await uow.commit()
        async with uow_factory() as uow:
            stored = await uow.metadata.get("api_key")
        assert stored == row
        assert stored is not None and stored.last_rotated_at.tzinfo is not None

    async def test_insert_missing_keeps_existing_rows(self, uow_factory: UnitOfWorkFactory) -> None:
        """A second seed inserts nothing and leaves the first values in place."""
        await seed_all(uow_factory)
        changed = metadata_row(SecretType.API_KEY, active_version="99", required=False)
        async with uow_factory() as uow:
            inserted = await uow.metadata.insert_missing([changed])
            await uow.commit()
        async with uow_factory() as uow:
            stored = await uow.metadata.get("api_key")
        assert inserted == 0
        assert stored == metadata_row(SecretType.API_KEY)

    async def test_list_all_orders_by_type_and_get_unknown_is_none(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """list_all is sorted by type name; an unseeded type reads as None."""
        await seed_all(uow_factory)
        async with uow_factory() as uow:
            names = [row.secret_type.value for row in await uow.metadata.list_all()]
            missing = await uow.metadata.get("nope")
        assert names == sorted(t.value for t in SecretType)
        assert missing is None

    async def test_pin_only_if_unpinned(
        self, uow_factory: UnitOfWorkFactory, clock: ManualClock
    ) -> None:
        """The first pin wins; a conditional second pin is refused; an unconditional one applies."""
        await seed_all(uow_factory)
        clock.advance(60)
        async with uow_factory() as uow:
            first = await uow.metadata.pin_active_version("api_key", "3", only_if_unpinned=True)
            second = await uow.metadata.pin_active_version("api_key", "4", only_if_unpinned=True)
            await uow.commit()
        async with uow_factory() as uow:
            after_conditional = await uow.metadata.get("api_key")
            forced = await uow.metadata.pin_active_version("api_key", "5", only_if_unpinned=False)
            unknown = await uow.metadata.pin_active_version("nope", "1", only_if_unpinned=False)
            await uow.commit()
            after_forced = await uow.metadata.get("api_key")
        assert (first, second, forced, unknown) == (True, False, True, False)
        assert after_conditional is not None and after_conditional.active_version == "3"
        assert after_conditional.updated_at == clock.now()
        assert after_forced is not None and after_forced.active_version == "5"

    async def test_pin_with_rotation_dates(
        self, uow_factory: UnitOfWorkFactory, clock: ManualClock
    ) -> None:
        """A first pin may carry the version's dates (seeded while GSM was unreachable)."""
        await seed_all(uow_factory)
        created = clock.now() - timedelta(days=200)
        due = created + timedelta(days=365)
        async with uow_factory() as uow:
            before = await uow.metadata.get("api_secret")
            pinned = await uow.metadata.pin_active_version(
                "api_key", "2", only_if_unpinned=True, rotation_dates=(created, due)
            )
            await uow.commit()
        async with uow_factory() as uow:
            row = await uow.metadata.get("api_key")
            untouched = await uow.metadata.get("api_secret")
        assert pinned
        assert row is not None and (
            row.active_version,
            row.last_rotated_at,
            row.rotation_due_at,
        ) == (
            "2",
            created,
            due,
        )
        assert untouched == before

    async def test_record_rotation_pins_stamps_and_unlocks_the_group(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A commit pins the given versions, dates every group row and clears the lock."""
        await seed_all(uow_factory)
        rotated, due = T0 + timedelta(days=1), T0 + timedelta(days=366)
        async with uow_factory() as uow:
            await uow.metadata.try_lock_group("api_credentials", "prv-1", T0 + timedelta(1), T0)
            await uow.metadata.record_rotation(
                "api_credentials", {"api_key": "4", "api_secret": "5"}, rotated, due
            )
            await uow.commit()
        async with uow_factory() as uow:
            rows = {row.secret_type.value: row for row in await uow.metadata.list_all()}
        assert rows["api_key"].active_version == "4"
        assert rows["api_secret"].active_version == "5"
        assert rows["api_passphrase"].active_version is None
        for name in ("api_key", "api_secret", "api_passphrase"):
            assert (rows[name].last_rotated_at, rows[name].rotation_due_at) == (rotated, due)
            assert (rows[name].preview_id, rows[name].preview_expires_at) == (None, None)
        assert rows["zk_seeds"].last_rotated_at == T0

    async def test_record_rotation_refuses_a_type_outside_the_group(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Pinning a type of another group is a programming error."""
        await seed_all(uow_factory)
        async with uow_factory() as uow:
            with pytest.raises(ValueError, match="zk_seeds"):
                await uow.metadata.record_rotation("api_credentials", {"zk_seeds": "2"}, T0, T0)

    async def test_lock_is_exclusive_renewable_and_expires(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """One preview holds the group; rivals see the holder until it lapses, then take over."""
        await seed_all(uow_factory)
        until = T0 + timedelta(minutes=15)
        async with uow_factory() as uow:
            first = await uow.metadata.try_lock_group("api_credentials", "prv-a", until, T0)
            await uow.commit()
        async with uow_factory() as uow:
            rival = await uow.metadata.try_lock_group(
                "api_credentials", "prv-b", until + timedelta(minutes=1), T0 + timedelta(minutes=1)
            )
            other_group = await uow.metadata.try_lock_group("zk_keys", "prv-z", until, T0)
            renewed = await uow.metadata.try_lock_group(
                "api_credentials", "prv-a", until + timedelta(minutes=5), T0 + timedelta(minutes=5)
            )
            await uow.commit()
        later = until + timedelta(minutes=5, seconds=1)
        async with uow_factory() as uow:
            takeover = await uow.metadata.try_lock_group(
                "api_credentials", "prv-c", later + timedelta(minutes=15), later
            )
            await uow.commit()
            rows = [
                r for r in await uow.metadata.list_all() if r.rotation_group == "api_credentials"
            ]
        assert (first.won, first.preview_id, first.expires_at) == (True, "prv-a", until)
        assert (rival.won, rival.preview_id, rival.expires_at) == (False, "prv-a", until)
        assert other_group.won
        assert renewed.won and renewed.expires_at == until + timedelta(minutes=5)
        assert takeover.won and takeover.preview_id == "prv-c"
        assert {(r.preview_id, r.preview_expires_at) for r in rows} == {
            ("prv-c", later + timedelta(minutes=15))
        }

    async def test_lock_of_an_unseeded_group_is_not_won(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A group without rows cannot be locked and names no holder."""
        async with uow_factory() as uow:
            lock = await uow.metadata.try_lock_group("api_credentials", "prv-a", T0, T0)
        assert (lock.won, lock.preview_id, lock.expires_at) == (False, None, None)

    async def test_release_only_by_the_holder(self, uow_factory: UnitOfWorkFactory) -> None:
        """Only the holding preview releases the lock; a stranger's release changes nothing."""
        await seed_all(uow_factory)
        until = T0 + timedelta(minutes=15)
        async with uow_factory() as uow:
            await uow.metadata.try_lock_group("api_credentials", "prv-a", until, T0)
            stranger = await uow.metadata.release_group("api_credentials", "prv-b")
            still_held = await uow.metadata.get("api_key")
            holder = await uow.metadata.release_group("api_credentials", "prv-a")
            again = await uow.metadata.release_group("api_credentials", "prv-a")
            await uow.commit()
            after = await uow.metadata.try_lock_group("api_credentials", "prv-b", until, T0)
        assert (stranger, holder, again) == (False, True, False)
        assert still_held is not None and still_held.preview_id == "prv-a"
        assert after.won

    async def test_break_glass_window_set_and_cleared(self, uow_factory: UnitOfWorkFactory) -> None:
        """The window is recorded and cleared as a pair; a half-set window is refused."""
        await seed_all(uow_factory)
        until = T0 + timedelta(minutes=30)
        async with uow_factory() as uow:
            assert await uow.metadata.set_break_glass("api_secret", T0, until)
            recorded = await uow.metadata.get("api_secret")
            assert await uow.metadata.set_break_glass("api_secret", None, None)
            cleared = await uow.metadata.get("api_secret")
            assert not await uow.metadata.set_break_glass("nope", T0, until)
            with pytest.raises(ValueError, match="together"):
                await uow.metadata.set_break_glass("api_secret", T0, None)
        assert recorded is not None
        assert (recorded.break_glass_activated_at, recorded.break_glass_expires_at) == (T0, until)
        assert cleared is not None and cleared.break_glass_expires_at is None


class TestAuditLog:
    async def test_appends_number_from_one_and_chain_from_genesis(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Ids run 1, 2, 3 and each row links to the previous row's hash."""
        async with uow_factory() as uow:
            stored = [await uow.audit.append(event(n)) for n in range(3)]
            await uow.commit()
        assert [e.id for e in stored] == [1, 2, 3]
        assert stored[0].prev_hash == GENESIS_HASH
        assert stored[1].prev_hash == stored[0].row_hash
        assert stored[2].prev_hash == stored[1].row_hash

    async def test_stored_rows_read_back_exactly(self, uow_factory: UnitOfWorkFactory) -> None:
        """What append returns is what the table gives back, and the chain verifies."""
        async with uow_factory() as uow:
            appended = [
                await uow.audit.append(event(0)),
                await uow.audit.append(
                    event(1, secret_type=None, duration_ms=None, correlation_id=None, details={})
                ),
                await uow.audit.append(event(2, details={"ünï": "€", "n": 10**15, "f": 0.1})),
            ]
            await uow.commit()
        async with uow_factory() as uow:
            read = list(await uow.audit.page(0, 100))
        assert read == appended
        assert verify_chain(read).ok

    async def test_rolled_back_append_leaves_no_gap(self, uow_factory: UnitOfWorkFactory) -> None:
        """An append whose transaction rolls back does not consume an id."""
        async with uow_factory() as uow:
            await uow.audit.append(event(0))
            await uow.commit()
        async with uow_factory() as uow:
            await uow.audit.append(event(1))
        async with uow_factory() as uow:
            second = await uow.audit.append(event(2))
            await uow.commit()
        async with uow_factory() as uow:
            ids = [e.id for e in await uow.audit.page(0, 10)]
        assert second.id == 2
        assert ids == [1, 2]

    async def test_recent_is_newest_first_and_page_ascends(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """recent() returns the newest rows first; page() continues after an id in order."""
        async with uow_factory() as uow:
            for n in range(5):
                await uow.audit.append(event(n))
            await uow.commit()
        async with uow_factory() as uow:
            recent = [e.id for e in await uow.audit.recent(2)]
            page = [e.id for e in await uow.audit.page(2, 2)]
            tail = [e.id for e in await uow.audit.page(5, 2)]
        assert (recent, page, tail) == ([5, 4], [3, 4], [])


class TestOverrideRepository:
    async def test_add_then_get(self, uow_factory: UnitOfWorkFactory) -> None:
        """A stored override reads back equal; an unknown id reads as None."""
        async with uow_factory() as uow:
            await uow.overrides.add(override())
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.overrides.get("ovr-1") == override()
            assert await uow.overrides.get("ovr-x") is None

    async def test_nonce_reuse_is_a_replay_even_after_the_override_ended(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A nonce is single-use forever, and the unit of work stays usable after the refusal."""
        async with uow_factory() as uow:
            await uow.overrides.add(override())
            await uow.overrides.end("ovr-1", T0 + timedelta(minutes=1), "revoked")
            await uow.commit()
        async with uow_factory() as uow:
            with pytest.raises(ReplayDetected):
                await uow.overrides.add(override("ovr-2", "fake-nonce-1"))
            rejected = await uow.audit.append(event(0, action="break_glass_rejected"))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.overrides.get("ovr-2") is None
            assert [e.id for e in await uow.audit.recent(5)] == [rejected.id]

    async def test_list_active_excludes_ended_and_expired(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Only overrides not ended and not yet expired are active, oldest first."""
        async with uow_factory() as uow:
            await uow.overrides.add(
                override("ovr-b", "fake-n-b", activated_at=T0 + timedelta(seconds=1))
            )
            await uow.overrides.add(override("ovr-a", "fake-n-a"))
            await uow.overrides.add(override("ovr-ended", "fake-n-e"))
            await uow.overrides.add(
                override("ovr-expired", "fake-n-x", expires_at=T0 + timedelta(minutes=1))
            )
            await uow.overrides.end("ovr-ended", T0 + timedelta(minutes=2), "revoked")
            await uow.commit()
        now = T0 + timedelta(minutes=1)
        async with uow_factory() as uow:
            active = [r.override_id for r in await uow.overrides.list_active(now)]
        assert active == ["ovr-a", "ovr-b"]

    async def test_end_once(self, uow_factory: UnitOfWorkFactory) -> None:
        """Ending records time and reason once; ending again or an unknown id is False."""
        ended_at = T0 + timedelta(minutes=3)
        async with uow_factory() as uow:
            await uow.overrides.add(override())
            first = await uow.overrides.end("ovr-1", ended_at, "expired")
            second = await uow.overrides.end("ovr-1", ended_at, "revoked")
            unknown = await uow.overrides.end("ovr-x", ended_at, "revoked")
            await uow.commit()
            stored = await uow.overrides.get("ovr-1")
        assert (first, second, unknown) == (True, False, False)
        assert stored is not None
        assert (stored.ended_at, stored.end_reason) == (ended_at, "expired")


class TestPreviewRepository:
    async def test_add_get_and_status(self, uow_factory: UnitOfWorkFactory) -> None:
        """A preview reads back equal; its status changes; unknown ids are reported."""
        async with uow_factory() as uow:
            await uow.previews.add(preview())
            await uow.commit()
        async with uow_factory() as uow:
            stored = await uow.previews.get("prv-1")
            changed = await uow.previews.set_status("prv-1", "committed")
            unknown = await uow.previews.set_status("prv-x", "cancelled")
            await uow.commit()
            after = await uow.previews.get("prv-1")
        assert stored == preview()
        assert (changed, unknown) == (True, False)
        assert after is not None and after.status == "committed"

    async def test_duplicate_id_is_refused(self, uow_factory: UnitOfWorkFactory) -> None:
        """A second preview with the same id is refused and the unit of work stays usable."""
        async with uow_factory() as uow:
            await uow.previews.add(preview())
            with pytest.raises(ValueError, match="prv-1"):
                await uow.previews.add(preview())
            await uow.audit.append(event(0, action="rotation_preview"))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.previews.get("prv-1") == preview()
