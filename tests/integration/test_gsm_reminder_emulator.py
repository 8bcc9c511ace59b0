"""GsmRotationReminder through the real adapter over gRPC to the emulator: the reminder it sets
makes the emulator publish ``SECRET_ROTATE`` (the Secret) when the time passes, as GSM does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud.secretmanager_v1.types import resources

from omni_secrets.adapters.gsm import GsmSecretManagerClient
from omni_secrets.adapters.retry import RetryPolicy
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import ManualClock
from omni_secrets.emulator import GsmEmulator
from omni_secrets.service.rotation.reminder import GsmRotationReminder, ReminderOutcome

from .conftest import GSM_PROJECT

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SECRET = f"projects/{GSM_PROJECT}/secrets/apex-omni-api-key"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def setup() -> AsyncIterator[tuple[GsmEmulator, Clock, list[tuple[str, Any]], Any]]:
    clock = Clock()
    events: list[tuple[str, Any]] = []
    server = GsmEmulator(now=clock, events=lambda kind, resource: events.append((kind, resource)))
    server.start()
    server.seed(GSM_PROJECT, {"apex-omni-api-key": ["fake-v1"], "apex-omni-api-secret": ["fake"]})
    server.update_secret(
        resources.Secret(name=SECRET, topics=[{"name": f"projects/{GSM_PROJECT}/topics/t-1"}]),
        ["topics"],
    )
    store = GsmSecretManagerClient(
        project_id=GSM_PROJECT, endpoint=server.address, timeout_seconds=5, retry=RetryPolicy()
    )
    events.clear()
    yield server, clock, events, store
    await store.aclose()
    server.stop()


async def test_reminder_makes_gsm_publish_secret_rotate(
    setup: tuple[GsmEmulator, Clock, list[tuple[str, Any]], Any],
) -> None:
    server, clock, events, store = setup
    reminder = GsmRotationReminder(
        catalog=Catalog("apex-omni-"), store=store, clock=ManualClock(START), warning_days=30
    )
    due = START + timedelta(days=40)
    results = await reminder.schedule(["api_key", "api_secret"], due)
    assert [r.outcome for r in results] == [ReminderOutcome.SET, ReminderOutcome.NO_TOPICS]
    info = await store.get_secret("apex-omni-api-key")
    assert info.next_rotation_time == START + timedelta(days=10)
    assert info.rotation_period == timedelta(days=1)
    # UpdateSecret is announced as GSM does (SECRET_UPDATE); nothing due yet.
    assert [kind for kind, _ in events] == ["SECRET_UPDATE"]
    assert server.tick() == 0

    clock.now = START + timedelta(days=10, seconds=1)
    assert server.tick() == 1
    kind, secret = events[-1]
    assert kind == "SECRET_ROTATE"
    assert secret.name == SECRET
    assert "payload" not in type(secret).to_json(secret)
    again = await store.get_secret("apex-omni-api-key")
    assert again.next_rotation_time == START + timedelta(days=11)  # every day until rotated
