"""One contract for the SecretStore port, run on FakeSecretStore and on the emulator-backed adapter.

If the fake drifts from what the real adapter does against GSM semantics, these tests fail for
one of the two backends: that keeps every test built on the fake honest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest
from google.cloud.secretmanager_v1.types import resources

from omni_secrets.adapters.gsm import GsmSecretManagerClient
from omni_secrets.domain.errors import ChecksumMismatch, SecretStoreError
from omni_secrets.domain.secret_store import SecretChanged, SecretStore, VersionState
from omni_secrets.emulator import GsmEmulator
from omni_secrets.testing import FakeSecretStore

from .conftest import FAST_RETRY, GSM_PROJECT

KEY = "apex-omni-api-secret"


class Backend(Protocol):
    """What the contract needs to arrange a case on either implementation."""

    store: SecretStore

    def add(self, secret_id: str, value: str) -> str: ...
    def disable(self, secret_id: str, version: str) -> None: ...
    def destroy(self, secret_id: str, version: str) -> None: ...
    def fail_access(self, reason: str) -> None: ...
    def corrupt_access(self) -> None: ...
    def access_calls(self) -> int: ...
    def set_aliases(self, secret_id: str, aliases: Mapping[str, str]) -> None: ...
    def set_topics(self, secret_id: str) -> None: ...


class FakeBackend:
    def __init__(self) -> None:
        self.fake = FakeSecretStore()
        self.store: SecretStore = self.fake

    def add(self, secret_id: str, value: str) -> str:
        return self.fake.add_version(secret_id, value)

    def disable(self, secret_id: str, version: str) -> None:
        self.fake.disable(secret_id, version)

    def destroy(self, secret_id: str, version: str) -> None:
        self.fake.destroy(secret_id, version)

    def fail_access(self, reason: str) -> None:
        self.fake.fail_next("access", reason, 100)

    def corrupt_access(self) -> None:
        self.fake.corrupt_checksum_next(100)

    def access_calls(self) -> int:
        return self.fake.call_count("access")

    def set_aliases(self, secret_id: str, aliases: Mapping[str, str]) -> None:
        self.fake.set_aliases(secret_id, aliases)

    def set_topics(self, secret_id: str) -> None:
        self.fake.set_topics(secret_id)


class EmulatorBackend:
    def __init__(self, emulator: GsmEmulator, client: GsmSecretManagerClient) -> None:
        self.emulator = emulator
        self.store: SecretStore = client

    def add(self, secret_id: str, value: str) -> str:
        self.emulator.seed(GSM_PROJECT, {secret_id: []})
        return str(self.emulator.add_version(GSM_PROJECT, secret_id, value))

    def disable(self, secret_id: str, version: str) -> None:
        self.emulator.disable(GSM_PROJECT, secret_id, version)

    def destroy(self, secret_id: str, version: str) -> None:
        self.emulator.destroy(GSM_PROJECT, secret_id, version)

    def fail_access(self, reason: str) -> None:
        self.emulator.fail_next("AccessSecretVersion", reason, 100)

    def corrupt_access(self) -> None:
        self.emulator.corrupt_checksum_next(100)

    def access_calls(self) -> int:
        return self.emulator.call_count("AccessSecretVersion")

    def set_aliases(self, secret_id: str, aliases: Mapping[str, str]) -> None:
        numbers = {alias: int(version) for alias, version in aliases.items()}
        self.emulator.set_aliases(GSM_PROJECT, secret_id, numbers)

    def set_topics(self, secret_id: str) -> None:
        topic = resources.Topic(name=f"projects/{GSM_PROJECT}/topics/gsm-events")
        secret = resources.Secret(
            name=f"projects/{GSM_PROJECT}/secrets/{secret_id}", topics=[topic]
        )
        self.emulator.update_secret(secret, ["topics"])


@pytest.fixture
def emulator() -> Iterator[GsmEmulator]:
    server = GsmEmulator()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["fake", "gsm-emulator"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """The same port behind the in-memory fake, then behind the adapter + emulator."""
    if request.param == "fake":
        yield FakeBackend()
        return
    server: GsmEmulator = request.getfixturevalue("emulator")
    client = GsmSecretManagerClient(
        project_id=GSM_PROJECT, endpoint=server.address, timeout_seconds=2.0, retry=FAST_RETRY
    )
    try:
        yield EmulatorBackend(server, client)
    finally:
        await client.aclose()


async def failure(
    backend: Backend, secret_id: str = KEY, version: str = "latest"
) -> SecretStoreError:
    with pytest.raises(SecretStoreError) as raised:
        await backend.store.access(secret_id, version)
    return raised.value


class TestSecretStoreContract:
    async def test_versions_numbered_from_one(self, backend: Backend) -> None:
        """The first versions of a secret are 1, 2, 3."""
        assert [backend.add(KEY, f"fake-{i}") for i in range(3)] == ["1", "2", "3"]

    async def test_latest_is_the_newest_version_resolved(self, backend: Backend) -> None:
        """latest returns the newest value and its number, never the word latest."""
        backend.add(KEY, "fake-v1")
        backend.add(KEY, "fake-v2")
        accessed = await backend.store.access(KEY)
        assert (accessed.secret_id, accessed.version) == (KEY, "2")
        assert accessed.value.reveal() == "fake-v2"

    async def test_pinned_version(self, backend: Backend) -> None:
        """A pinned version number returns that version."""
        backend.add(KEY, "fake-v1")
        backend.add(KEY, "fake-v2")
        accessed = await backend.store.access(KEY, "1")
        assert (accessed.version, accessed.value.reveal()) == ("1", "fake-v1")

    async def test_value_is_redacted(self, backend: Backend) -> None:
        """The accessed secret's repr never shows the value."""
        backend.add(KEY, "fake-redact-me")
        assert "fake-redact-me" not in repr(await backend.store.access(KEY))

    async def test_unknown_secret_and_version_are_not_found(self, backend: Backend) -> None:
        """Unknown secrets and versions are permanent NOT_FOUND."""
        missing_secret = await failure(backend, "apex-omni-missing")
        backend.add(KEY, "fake-v1")
        missing_version = await failure(backend, KEY, "7")
        for error in (missing_secret, missing_version):
            assert (error.reason, error.transient) == ("NOT_FOUND", False)
        with pytest.raises(SecretStoreError) as listed:
            await backend.store.list_versions("apex-omni-missing")
        assert listed.value.reason == "NOT_FOUND"

    async def test_disabled_newest_fails_latest_but_not_older(self, backend: Backend) -> None:
        """A disabled newest version makes latest FAILED_PRECONDITION; version 1 still reads."""
        backend.add(KEY, "fake-v1")
        backend.add(KEY, "fake-v2")
        backend.disable(KEY, "2")
        error = await failure(backend)
        assert (error.reason, error.transient) == ("FAILED_PRECONDITION", False)
        assert (await backend.store.access(KEY, "1")).value.reveal() == "fake-v1"

    async def test_destroyed_version_fails(self, backend: Backend) -> None:
        """A destroyed version is FAILED_PRECONDITION, pinned or as latest."""
        backend.add(KEY, "fake-v1")
        backend.destroy(KEY, "1")
        for version in ("1", "latest"):
            error = await failure(backend, KEY, version)
            assert (error.reason, error.transient) == ("FAILED_PRECONDITION", False)

    async def test_list_versions_newest_first(self, backend: Backend) -> None:
        """list_versions returns every version newest first with its state and an aware time."""
        for i in range(1, 4):
            backend.add(KEY, f"fake-v{i}")
        backend.disable(KEY, "2")
        backend.destroy(KEY, "1")
        versions = await backend.store.list_versions(KEY)
        assert [(v.version, v.state) for v in versions] == [
            ("3", VersionState.ENABLED),
            ("2", VersionState.DISABLED),
            ("1", VersionState.DESTROYED),
        ]
        assert all(v.create_time.tzinfo is not None for v in versions)

    @pytest.mark.parametrize(
        ("secret_id", "version"), [("a/b", "latest"), (KEY, "1.5"), (KEY, "-1")]
    )
    async def test_malformed_ids_are_invalid_argument(
        self, backend: Backend, secret_id: str, version: str
    ) -> None:
        """A malformed secret id or version is a permanent INVALID_ARGUMENT."""
        backend.add(KEY, "fake-v1")
        error = await failure(backend, secret_id, version)
        assert (error.reason, error.transient) == ("INVALID_ARGUMENT", False)

    @pytest.mark.parametrize(
        ("reason", "transient"),
        [
            ("UNAVAILABLE", True),
            ("DEADLINE_EXCEEDED", True),
            ("RESOURCE_EXHAUSTED", True),
            ("INTERNAL", True),
            ("PERMISSION_DENIED", False),
            ("UNAUTHENTICATED", False),
        ],
    )
    async def test_outage_reasons_and_transience(
        self, backend: Backend, reason: str, transient: bool
    ) -> None:
        """A lasting failure surfaces with its gRPC code name and the agreed transience."""
        backend.add(KEY, "fake-v1")
        backend.fail_access(reason)
        error = await failure(backend)
        assert (error.reason, error.transient) == (reason, transient)
        assert backend.access_calls() >= 1

    async def test_lasting_checksum_corruption(self, backend: Backend) -> None:
        """Payloads that never pass the CRC32C check end as a transient ChecksumMismatch."""
        backend.add(KEY, "fake-v1")
        backend.corrupt_access()
        with pytest.raises(ChecksumMismatch) as raised:
            await backend.store.access(KEY)
        assert raised.value.transient is True


class TestSecretMetadataContract:
    """Aliases, etag and annotations (contract section 15): the same on the fake and on GSM."""

    async def test_new_secret_has_no_alias(self, backend: Backend) -> None:
        backend.add(KEY, "fake-v1")
        info = await backend.store.get_secret(KEY)
        assert (info.secret_id, info.current, info.previous) == (KEY, None, None)
        assert dict(info.aliases) == {} and info.etag
        assert (info.next_rotation_time, info.has_topics) == (None, False)

    async def test_compare_and_set_moves_aliases(self, backend: Backend) -> None:
        """update_aliases under the etag read replaces the map and returns a new etag."""
        for i in range(1, 4):
            backend.add(KEY, f"fake-v{i}")
        read = await backend.store.get_secret(KEY)
        moved = await backend.store.update_aliases(
            KEY, {"current": "2", "previous": "1"}, read.etag
        )
        assert (moved.current, moved.previous) == ("2", "1") and moved.etag != read.etag
        again = await backend.store.get_secret(KEY)
        assert dict(again.aliases) == {"current": "2", "previous": "1"}
        assert again.etag == moved.etag

    async def test_stale_etag_is_secret_changed_and_changes_nothing(self, backend: Backend) -> None:
        """Someone else moved an alias since the read: SecretChanged, permanent, nothing moved."""
        backend.add(KEY, "fake-v1")
        backend.add(KEY, "fake-v2")
        read = await backend.store.get_secret(KEY)
        backend.set_aliases(KEY, {"current": "1"})
        with pytest.raises(SecretChanged) as raised:
            await backend.store.update_aliases(KEY, {"current": "2"}, read.etag)
        assert (raised.value.reason, raised.value.transient) == ("FAILED_PRECONDITION", False)
        assert (await backend.store.get_secret(KEY)).current == "1"

    async def test_access_and_get_version_by_alias(self, backend: Backend) -> None:
        """access(current) answers the aliased version, resolved to its number."""
        backend.add(KEY, "fake-v1")
        backend.add(KEY, "fake-v2")
        backend.set_aliases(KEY, {"current": "1"})
        accessed = await backend.store.access(KEY, "current")
        assert (accessed.version, accessed.value.reveal()) == ("1", "fake-v1")
        assert (await backend.store.get_version(KEY, "current")).version == "1"
        missing = await failure(backend, KEY, "previous")
        assert (missing.reason, missing.transient) == ("NOT_FOUND", False)

    async def test_alias_on_disabled_version_fails_access(self, backend: Backend) -> None:
        backend.add(KEY, "fake-v1")
        backend.set_aliases(KEY, {"current": "1"})
        backend.disable(KEY, "1")
        error = await failure(backend, KEY, "current")
        assert error.reason == "FAILED_PRECONDITION"

    async def test_bad_alias_targets_refused(self, backend: Backend) -> None:
        """A missing target is NOT_FOUND, a destroyed one SecretChanged, a bad name invalid."""
        backend.add(KEY, "fake-v1")
        backend.add(KEY, "fake-v2")
        backend.destroy(KEY, "1")
        etag = (await backend.store.get_secret(KEY)).etag
        with pytest.raises(SecretStoreError) as missing:
            await backend.store.update_aliases(KEY, {"current": "9"}, etag)
        assert missing.value.reason == "NOT_FOUND"
        with pytest.raises(SecretChanged):
            await backend.store.update_aliases(KEY, {"current": "1"}, etag)
        for bad in ({"latest": "2"}, {"7": "2"}, {"current": "two"}):
            with pytest.raises(SecretStoreError) as invalid:
                await backend.store.update_aliases(KEY, bad, etag)
            assert invalid.value.reason == "INVALID_ARGUMENT"
        assert (await backend.store.get_secret(KEY)).etag == etag

    async def test_annotations_under_etag(self, backend: Backend) -> None:
        backend.add(KEY, "fake-v1")
        read = await backend.store.get_secret(KEY)
        updated = await backend.store.update_annotations(
            KEY, {"omni-secrets/audit-anchor": "fake-anchor"}, read.etag
        )
        assert dict(updated.annotations) == {"omni-secrets/audit-anchor": "fake-anchor"}
        with pytest.raises(SecretChanged):
            await backend.store.update_annotations(KEY, {}, read.etag)

    async def test_rotation_reminder_needs_topics(self, backend: Backend) -> None:
        """A reminder is refused without topics, set with them, and cleared with None."""
        backend.add(KEY, "fake-v1")
        due = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)
        read = await backend.store.get_secret(KEY)
        with pytest.raises(SecretStoreError) as refused:
            await backend.store.update_rotation(KEY, due, timedelta(days=1), read.etag)
        assert refused.value.reason == "INVALID_ARGUMENT"
        backend.set_topics(KEY)
        read = await backend.store.get_secret(KEY)
        assert read.has_topics
        scheduled = await backend.store.update_rotation(KEY, due, timedelta(days=1), read.etag)
        assert (scheduled.next_rotation_time, scheduled.rotation_period) == (
            due,
            timedelta(days=1),
        )
        cleared = await backend.store.update_rotation(KEY, None, None, scheduled.etag)
        assert (cleared.next_rotation_time, cleared.rotation_period) == (None, None)


class TestAdapterUpdatePolicy:
    """The adapter's own policy on UpdateSecret, over gRPC to the emulator."""

    @pytest.fixture
    async def client(self, emulator: GsmEmulator) -> AsyncIterator[GsmSecretManagerClient]:
        client = GsmSecretManagerClient(
            project_id=GSM_PROJECT, endpoint=emulator.address, timeout_seconds=2.0, retry=FAST_RETRY
        )
        emulator.seed(GSM_PROJECT, {KEY: ["fake-v1"]})
        yield client
        await client.aclose()

    @pytest.mark.parametrize("code", ["UNAVAILABLE", "FAILED_PRECONDITION"])
    async def test_updates_are_sent_once(
        self, emulator: GsmEmulator, client: GsmSecretManagerClient, code: str
    ) -> None:
        """Not retried, even when transient: a retry after a lost answer fails on the etag."""
        etag = (await client.get_secret(KEY)).etag
        emulator.fail_next("UpdateSecret", code, 5)
        with pytest.raises(SecretStoreError) as raised:
            await client.update_aliases(KEY, {"current": "1"}, etag)
        assert raised.value.reason == code
        assert isinstance(raised.value, SecretChanged) is (code == "FAILED_PRECONDITION")
        assert emulator.call_count("UpdateSecret") == 1

    async def test_get_secret_is_retried_like_reads(
        self, emulator: GsmEmulator, client: GsmSecretManagerClient
    ) -> None:
        emulator.fail_next("GetSecret", "UNAVAILABLE", 1)
        assert (await client.get_secret(KEY)).etag
        assert emulator.call_count("GetSecret") == 2

    async def test_malformed_alias_makes_no_call(
        self, emulator: GsmEmulator, client: GsmSecretManagerClient
    ) -> None:
        with pytest.raises(SecretStoreError) as raised:
            await client.update_aliases(KEY, {"current": "latest"}, '"fake-etag"')
        assert raised.value.reason == "INVALID_ARGUMENT"
        assert emulator.call_count("UpdateSecret") == 0
