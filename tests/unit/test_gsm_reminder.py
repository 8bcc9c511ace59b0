"""GsmRotationReminder: GSM's own rotation reminder follows ``dueAt`` (contract section 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.secret_store import SecretInfo
from omni_secrets.service.rotation.reminder import (
    MIN_LEAD,
    REMINDER_PERIOD,
    GsmRotationReminder,
    ReminderOutcome,
)
from omni_secrets.testing import FakeSecretStore

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
API = ("api_key", "api_secret", "api_passphrase")


def reminder_for(store: FakeSecretStore) -> GsmRotationReminder:
    return GsmRotationReminder(
        catalog=Catalog("apex-omni-"), store=store, clock=ManualClock(NOW), warning_days=30
    )


def seeded() -> FakeSecretStore:
    store = FakeSecretStore()
    store.seed({f"apex-omni-{t.replace('_', '-')}": ["fake-v1"] for t in API})
    return store


class TestGsmRotationReminder:
    async def test_sets_due_minus_warning_with_a_daily_period(self) -> None:
        """Each member with topics gets next_rotation_time = dueAt - 30 days, period 1 day."""
        store = seeded()
        for t in API:
            store.set_topics(f"apex-omni-{t.replace('_', '-')}")
        due = NOW + timedelta(days=365)
        results = await reminder_for(store).schedule(API, due)
        assert [r.outcome for r in results] == [ReminderOutcome.SET] * 3
        info = await store.get_secret("apex-omni-api-secret")
        assert info.next_rotation_time == due - timedelta(days=30)
        assert info.rotation_period == REMINDER_PERIOD == timedelta(days=1)

    async def test_secrets_without_topics_are_left_alone(self) -> None:
        """GSM refuses a schedule without topics: such a secret is skipped, never written."""
        store = seeded()
        store.set_topics("apex-omni-api-key")
        results = await reminder_for(store).schedule(API, NOW + timedelta(days=365))
        assert [r.outcome for r in results] == [
            ReminderOutcome.SET,
            ReminderOutcome.NO_TOPICS,
            ReminderOutcome.NO_TOPICS,
        ]
        assert store.call_count("update_rotation") == 1
        assert (await store.get_secret("apex-omni-api-secret")).next_rotation_time is None

    async def test_a_time_already_past_is_set_an_hour_ahead(self) -> None:
        """A rollback to a generation due soon: GSM refuses a past time, so it fires soon."""
        store = seeded()
        store.set_topics("apex-omni-api-key")
        (result,) = await reminder_for(store).schedule(["api_key"], NOW + timedelta(days=3))
        assert result.next_rotation_time == NOW + MIN_LEAD
        info = await store.get_secret("apex-omni-api-key")
        assert info.next_rotation_time == NOW + MIN_LEAD

    async def test_rerun_is_unchanged_and_writes_nothing(self) -> None:
        store = seeded()
        store.set_topics("apex-omni-api-key")
        due = NOW + timedelta(days=200)
        await reminder_for(store).schedule(["api_key"], due)
        (again,) = await reminder_for(store).schedule(["api_key"], due)
        assert again.outcome is ReminderOutcome.UNCHANGED
        assert store.call_count("update_rotation") == 1

    async def test_a_secret_changed_meanwhile_is_read_again(self) -> None:
        """The write is a compare-and-set: a concurrent change costs one more read, not the
        reminder, and the aliases written meanwhile are kept."""

        class Racing(FakeSecretStore):
            raced = False

            async def get_secret(self, secret_id: str) -> SecretInfo:
                info = await super().get_secret(secret_id)
                if not self.raced:
                    self.raced = True
                    self.set_aliases(secret_id, {"current": "1"})  # gcloud, meanwhile
                return info

        store = Racing()
        store.seed({"apex-omni-api-key": ["fake-v1"]})
        store.set_topics("apex-omni-api-key")
        (result,) = await reminder_for(store).schedule(["api_key"], NOW + timedelta(days=90))
        assert result.outcome is ReminderOutcome.SET
        assert store.call_count("get_secret") == 2
        info = await store.get_secret("apex-omni-api-key")
        assert info.aliases == {"current": "1"}
        assert info.next_rotation_time == NOW + timedelta(days=60)

    async def test_gsm_refusing_one_secret_does_not_stop_the_others(self) -> None:
        store = seeded()
        for t in API:
            store.set_topics(f"apex-omni-{t.replace('_', '-')}")
        store.fail_next("update_rotation", "PERMISSION_DENIED")
        results = await reminder_for(store).schedule(API, NOW + timedelta(days=365))
        assert [(r.outcome, r.reason) for r in results] == [
            (ReminderOutcome.FAILED, "PERMISSION_DENIED"),
            (ReminderOutcome.SET, None),
            (ReminderOutcome.SET, None),
        ]
