"""The emulator's GSM event messages for the section-15 events, as GSM shapes them.

A stub publisher records what would go to Pub/Sub; the data must parse back into the official
client's resource types, and no version payload may ever appear in it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud.secretmanager_v1.types import resources

from omni_secrets.emulator import GsmEmulator
from omni_secrets.emulator.events import PubSubEventPublisher

PROJECT = "omni-dev"
SECRET_ID = "apex-omni-api-key"
SECRET = f"projects/{PROJECT}/secrets/{SECRET_ID}"


class _Future:
    def add_done_callback(self, callback: Any) -> None:
        return None


class StubPublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, dict[str, str]]] = []

    def create_topic(self, request: dict[str, str]) -> None:
        return None

    def publish(self, topic: str, data: bytes, **attributes: str) -> _Future:
        self.messages.append((data, attributes))
        return _Future()


def make() -> tuple[GsmEmulator, StubPublisher, list[datetime]]:
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    stub = StubPublisher()
    publisher = PubSubEventPublisher(f"projects/{PROJECT}/topics/gsm-events", publisher=stub)
    emulator = GsmEmulator(now=lambda: now[0], events=publisher.publish)
    emulator.seed(PROJECT, {SECRET_ID: ["fake-v1", "fake-v2"]})
    stub.messages.clear()
    return emulator, stub, now


def test_secret_update_and_rotate_carry_the_secret() -> None:
    emulator, stub, now = make()
    due = now[0] + timedelta(hours=1)
    emulator.update_secret(
        resources.Secret(
            name=SECRET,
            version_aliases={"current": 2},
            topics=[{"name": f"projects/{PROJECT}/topics/gsm-events"}],
            rotation={"next_rotation_time": due, "rotation_period": timedelta(days=1)},
        ),
        ["version_aliases", "topics", "rotation"],
    )
    now[0] = due + timedelta(seconds=1)
    assert emulator.tick() == 1
    kinds = [attributes["eventType"] for _, attributes in stub.messages]
    assert kinds == ["SECRET_UPDATE", "SECRET_ROTATE"]
    for data, attributes in stub.messages:
        assert attributes["secretId"] == SECRET and "versionId" not in attributes
        assert attributes["dataFormat"] == "JSON_API_V1"
        secret = resources.Secret.from_json(data.decode())
        assert dict(secret.version_aliases) == {"current": 2}


def test_scheduled_destroy_carries_the_version_and_no_payload() -> None:
    emulator, stub, now = make()
    emulator.update_secret(
        resources.Secret(name=SECRET, version_destroy_ttl=timedelta(days=7)),
        ["version_destroy_ttl"],
    )
    emulator.destroy(PROJECT, SECRET_ID, 1)
    data, attributes = stub.messages[-1]
    assert attributes["eventType"] == "SECRET_VERSION_DESTROY_SCHEDULED"
    assert attributes["versionId"] == f"{SECRET}/versions/1"
    version = resources.SecretVersion.from_json(data.decode())
    assert version.scheduled_destroy_time == now[0] + timedelta(days=7)
    assert b"fake-v1" not in data
