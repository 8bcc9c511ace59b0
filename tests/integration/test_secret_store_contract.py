"""One contract for the SecretStore port, run on FakeSecretStore and on the emulator-backed adapter.

If the fake drifts from what the real adapter does against GSM semantics, these tests fail for
one of the two backends: that keeps every test built on the fake honest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import pytest

from omni_secrets.adapters.gsm import GsmSecretManagerClient
from omni_secrets.domain.errors import ChecksumMismatch, SecretStoreError
from omni_secrets.domain.secret_store import SecretStore, VersionState
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

    @pytest.mark.parametrize(("secret_id", "version"), [("a/b", "latest"), (KEY, "first")])
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
