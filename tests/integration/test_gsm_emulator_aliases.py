"""The emulator's UpdateSecret, version aliases, delayed destruction and GSM's own reminder.

Through the official async client over gRPC, as the adapter and gcloud reach real GSM: what is
checked here is what real Secret Manager answers (contract section 15), event shapes included.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.api_core import exceptions as core_exceptions
from google.cloud.secretmanager_v1 import SecretManagerServiceAsyncClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcAsyncIOTransport,
)
from google.cloud.secretmanager_v1.types import resources

from omni_secrets.emulator import GsmEmulator

from .conftest import GSM_PROJECT

SECRET_ID = "apex-omni-api-key"
SECRET = f"projects/{GSM_PROJECT}/secrets/{SECRET_ID}"
NO_RETRY: dict[str, Any] = {"retry": None, "timeout": 5}
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
State = resources.SecretVersion.State


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def events() -> list[tuple[str, Any]]:
    return []


@pytest.fixture
def emulator(clock: Clock, events: list[tuple[str, Any]]) -> Iterator[GsmEmulator]:
    server = GsmEmulator(now=clock, events=lambda kind, resource: events.append((kind, resource)))
    server.start()
    server.seed(GSM_PROJECT, {SECRET_ID: ["fake-v1", "fake-v2", "fake-v3"]})
    events.clear()
    yield server
    server.stop()


@pytest.fixture
async def client(emulator: GsmEmulator) -> Any:
    channel = grpc.aio.insecure_channel(emulator.address)
    sm = SecretManagerServiceAsyncClient(
        transport=SecretManagerServiceGrpcAsyncIOTransport(channel=channel)
    )
    yield sm
    await sm.transport.close()


async def update(client: Any, mask: list[str], **fields: Any) -> Any:
    return await client.update_secret(
        request={"secret": {"name": SECRET, **fields}, "update_mask": {"paths": mask}}, **NO_RETRY
    )


class TestUpdateSecret:
    async def test_aliases_etag_and_get_secret(self, client: Any) -> None:
        """UpdateSecret sets aliases under the etag read; the etag changes; GetSecret shows it."""
        before = await client.get_secret(name=SECRET, **NO_RETRY)
        updated = await update(
            client,
            ["version_aliases", "annotations"],
            etag=before.etag,
            version_aliases={"current": 2, "previous": 1},
            annotations={"omni-secrets/audit": "fake-anchor"},
        )
        assert updated.etag != before.etag and updated.etag.startswith('"')
        got = await client.get_secret(name=SECRET, **NO_RETRY)
        assert dict(got.version_aliases) == {"current": 2, "previous": 1}
        assert dict(got.annotations) == {"omni-secrets/audit": "fake-anchor"}
        assert got.etag == updated.etag

    async def test_stale_etag_is_failed_precondition_and_changes_nothing(self, client: Any) -> None:
        """A compare-and-set with an outdated etag fails FAILED_PRECONDITION, aliases unchanged."""
        first = await client.get_secret(name=SECRET, **NO_RETRY)
        await update(client, ["version_aliases"], version_aliases={"current": 1})
        with pytest.raises(core_exceptions.FailedPrecondition):
            await update(
                client, ["version_aliases"], etag=first.etag, version_aliases={"current": 3}
            )
        got = await client.get_secret(name=SECRET, **NO_RETRY)
        assert dict(got.version_aliases) == {"current": 1}

    async def test_mask_names_what_changes(self, client: Any) -> None:
        """Only masked fields change; a masked field left empty is cleared."""
        await update(
            client, ["version_aliases", "labels"], version_aliases={"current": 1}, labels={"a": "b"}
        )
        await update(client, ["labels"], version_aliases={"current": 3})
        got = await client.get_secret(name=SECRET, **NO_RETRY)
        assert dict(got.version_aliases) == {"current": 1}
        assert dict(got.labels) == {}

    @pytest.mark.parametrize(
        ("mask", "fields", "error"),
        [
            ([], {"labels": {"a": "b"}}, core_exceptions.InvalidArgument),
            (["replication"], {}, core_exceptions.InvalidArgument),
            (
                ["version_aliases"],
                {"version_aliases": {"latest": 1}},
                core_exceptions.InvalidArgument,
            ),
            (["version_aliases"], {"version_aliases": {"7": 1}}, core_exceptions.InvalidArgument),
            (["version_aliases"], {"version_aliases": {"current": 9}}, core_exceptions.NotFound),
        ],
    )
    async def test_bad_updates_refused(
        self, client: Any, mask: list[str], fields: dict[str, Any], error: type[Exception]
    ) -> None:
        """No mask, an unsupported path, a reserved or numeric alias, a missing target."""
        before = await client.get_secret(name=SECRET, **NO_RETRY)
        with pytest.raises(error):
            await update(client, mask, **fields)
        assert (await client.get_secret(name=SECRET, **NO_RETRY)).etag == before.etag

    async def test_alias_on_destroyed_version_refused(
        self, client: Any, emulator: GsmEmulator
    ) -> None:
        """An alias may not name a DESTROYED version."""
        emulator.destroy(GSM_PROJECT, SECRET_ID, 1)
        with pytest.raises(core_exceptions.FailedPrecondition):
            await update(client, ["version_aliases"], version_aliases={"previous": 1})

    async def test_rotation_needs_topics(self, client: Any) -> None:
        """A rotation schedule without topics is INVALID_ARGUMENT, as GSM answers."""
        with pytest.raises(core_exceptions.InvalidArgument):
            await update(
                client, ["rotation"], rotation={"next_rotation_time": START + timedelta(days=1)}
            )

    async def test_publishes_secret_update(
        self, client: Any, events: list[tuple[str, Any]]
    ) -> None:
        """SECRET_UPDATE carries the updated Secret (aliases and new etag)."""
        updated = await update(client, ["version_aliases"], version_aliases={"current": 2})
        assert [kind for kind, _ in events] == ["SECRET_UPDATE"]
        resource = events[0][1]
        assert isinstance(resource, resources.Secret)
        assert resource.etag == updated.etag and dict(resource.version_aliases) == {"current": 2}


class TestAccessByAlias:
    async def test_access_and_get_version_by_alias(
        self, client: Any, emulator: GsmEmulator
    ) -> None:
        """versions/current resolves to the aliased number, for access and GetSecretVersion."""
        emulator.set_aliases(GSM_PROJECT, SECRET_ID, {"current": 2})
        accessed = await client.access_secret_version(name=f"{SECRET}/versions/current", **NO_RETRY)
        assert accessed.name == f"{SECRET}/versions/2"
        assert accessed.payload.data == b"fake-v2"
        version = await client.get_secret_version(name=f"{SECRET}/versions/current", **NO_RETRY)
        assert version.name == f"{SECRET}/versions/2"

    async def test_unknown_alias_not_found(self, client: Any) -> None:
        with pytest.raises(core_exceptions.NotFound):
            await client.access_secret_version(name=f"{SECRET}/versions/previous", **NO_RETRY)

    async def test_alias_on_disabled_version_fails_access(
        self, client: Any, emulator: GsmEmulator
    ) -> None:
        """An alias naming a DISABLED version answers FAILED_PRECONDITION, as the number would."""
        emulator.set_aliases(GSM_PROJECT, SECRET_ID, {"current": 2})
        emulator.disable(GSM_PROJECT, SECRET_ID, 2)
        with pytest.raises(core_exceptions.FailedPrecondition):
            await client.access_secret_version(name=f"{SECRET}/versions/current", **NO_RETRY)


class TestDelayedDestruction:
    async def test_destroy_with_ttl_is_scheduled_then_done(
        self, client: Any, emulator: GsmEmulator, clock: Clock, events: list[tuple[str, Any]]
    ) -> None:
        """With version_destroy_ttl a destroy disables and schedules; the tick destroys later."""
        await update(client, ["version_destroy_ttl"], version_destroy_ttl=timedelta(days=7))
        events.clear()
        scheduled = await client.destroy_secret_version(name=f"{SECRET}/versions/1", **NO_RETRY)
        assert scheduled.state == State.DISABLED
        assert scheduled.scheduled_destroy_time == START + timedelta(days=7)
        assert [kind for kind, _ in events] == ["SECRET_VERSION_DESTROY_SCHEDULED"]
        clock.now = START + timedelta(days=7, seconds=1)
        assert emulator.tick() == 1
        version = await client.get_secret_version(name=f"{SECRET}/versions/1", **NO_RETRY)
        assert version.state == State.DESTROYED
        assert "scheduled_destroy_time" not in version
        assert [kind for kind, _ in events][-1] == "SECRET_VERSION_DESTROY"

    async def test_enable_cancels_a_scheduled_destruction(
        self, client: Any, emulator: GsmEmulator, clock: Clock
    ) -> None:
        await update(client, ["version_destroy_ttl"], version_destroy_ttl=timedelta(days=1))
        await client.destroy_secret_version(name=f"{SECRET}/versions/1", **NO_RETRY)
        enabled = await client.enable_secret_version(name=f"{SECRET}/versions/1", **NO_RETRY)
        assert "scheduled_destroy_time" not in enabled
        clock.now = START + timedelta(days=2)
        emulator.tick()
        assert emulator.version_state(GSM_PROJECT, SECRET_ID, 1) == "ENABLED"

    async def test_without_ttl_destroy_is_immediate(
        self, client: Any, events: list[tuple[str, Any]]
    ) -> None:
        destroyed = await client.destroy_secret_version(name=f"{SECRET}/versions/1", **NO_RETRY)
        assert destroyed.state == State.DESTROYED
        assert [kind for kind, _ in events] == ["SECRET_VERSION_DESTROY"]

    async def test_stale_version_etag_on_destroy(self, client: Any) -> None:
        version = await client.get_secret_version(name=f"{SECRET}/versions/1", **NO_RETRY)
        await client.disable_secret_version(name=version.name, **NO_RETRY)
        with pytest.raises(core_exceptions.FailedPrecondition):
            await client.destroy_secret_version(
                request={"name": version.name, "etag": version.etag}, **NO_RETRY
            )


class TestRotationReminder:
    async def test_secret_rotate_when_next_rotation_time_passes(
        self, client: Any, emulator: GsmEmulator, clock: Clock, events: list[tuple[str, Any]]
    ) -> None:
        """SECRET_ROTATE once the time passes; next_rotation_time moves on by the period."""
        due = START + timedelta(hours=1)
        await update(
            client,
            ["topics", "rotation"],
            topics=[{"name": f"projects/{GSM_PROJECT}/topics/gsm-events"}],
            rotation={"next_rotation_time": due, "rotation_period": timedelta(days=1)},
        )
        events.clear()
        assert emulator.tick() == 0
        clock.now = due + timedelta(seconds=1)
        await client.get_secret(name=SECRET, **NO_RETRY)  # any RPC does what is due first
        assert [kind for kind, _ in events] == ["SECRET_ROTATE"]
        assert events[0][1].rotation.next_rotation_time == due
        got = await client.get_secret(name=SECRET, **NO_RETRY)
        assert got.rotation.next_rotation_time == due + timedelta(days=1)
        assert emulator.tick() == 0
