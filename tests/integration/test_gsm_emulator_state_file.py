"""The emulator's state file (what ``omni-secrets dev`` keeps in its data dir) and its
``TestIamPermissions``, through the official async client over gRPC."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.api_core import exceptions as core_exceptions
from google.cloud.secretmanager_v1 import SecretManagerServiceAsyncClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcAsyncIOTransport,
)

from omni_secrets.adapters.gsm_permissions import SECRET_PERMISSIONS
from omni_secrets.emulator import GsmEmulator

from .conftest import GSM_PROJECT

SECRET_ID = "apex-omni-api-key"
SECRET = f"projects/{GSM_PROJECT}/secrets/{SECRET_ID}"
NO_RETRY: dict[str, Any] = {"retry": None, "timeout": 5}


async def _client(address: str) -> Any:
    channel = grpc.aio.insecure_channel(address)
    return SecretManagerServiceAsyncClient(
        transport=SecretManagerServiceGrpcAsyncIOTransport(channel=channel)
    )


class TestStateFile:
    async def test_everything_survives_a_restart(self, tmp_path: Path) -> None:
        """Versions, states, aliases, annotations and etags come back; numbering resumes."""
        path = tmp_path / "gsm-emulator.json"
        first = GsmEmulator(state_file=path)
        assert first.restored is False
        first.start()
        try:
            first.seed(GSM_PROJECT, {SECRET_ID: ["fake-v1", "fake-v2", "fake-v3"]})
            first.disable(GSM_PROJECT, SECRET_ID, 1)
            first.destroy(GSM_PROJECT, SECRET_ID, 3)
            client = await _client(first.address)
            secret = await client.get_secret(name=SECRET, **NO_RETRY)
            await client.update_secret(
                request={
                    "secret": {
                        "name": SECRET,
                        "etag": secret.etag,
                        "version_aliases": {"current": 2, "previous": 1},
                        "annotations": {"omni-secrets/audit": "fake-anchor"},
                    },
                    "update_mask": {"paths": ["version_aliases", "annotations"]},
                },
                **NO_RETRY,
            )
            before = await client.get_secret(name=SECRET, **NO_RETRY)
            v2_before = await client.get_secret_version(name=f"{SECRET}/versions/2", **NO_RETRY)
            await client.transport.close()
        finally:
            first.stop()
        assert oct(path.stat().st_mode & 0o777) == "0o600"

        second = GsmEmulator(state_file=path)
        assert second.restored is True
        second.start()
        try:
            client = await _client(second.address)
            after = await client.get_secret(name=SECRET, **NO_RETRY)
            assert dict(after.version_aliases) == {"current": 2, "previous": 1}
            assert dict(after.annotations) == {"omni-secrets/audit": "fake-anchor"}
            assert after.etag == before.etag
            v2 = await client.get_secret_version(name=f"{SECRET}/versions/2", **NO_RETRY)
            assert (v2.etag, v2.create_time) == (v2_before.etag, v2_before.create_time)
            served = await client.access_secret_version(
                name=f"{SECRET}/versions/current", **NO_RETRY
            )
            assert served.payload.data == b"fake-v2"
            assert served.name.endswith("/versions/2")
            assert second.version_state(GSM_PROJECT, SECRET_ID, 1) == "DISABLED"
            assert second.version_state(GSM_PROJECT, SECRET_ID, 3) == "DESTROYED"
            # Numbering resumes after the last version, never reusing 3.
            assert second.add_version(GSM_PROJECT, SECRET_ID, "fake-v4") == 4
            await client.transport.close()
        finally:
            second.stop()
        stored = json.loads(path.read_text())
        numbers = [v["number"] for v in stored["secrets"][0]["versions"]]
        assert numbers == [1, 2, 3, 4]

    def test_a_file_that_is_not_emulator_state_is_refused(self, tmp_path: Path) -> None:
        """A JSON file of another shape: ValueError naming the problem, nothing overwritten."""
        path = tmp_path / "state.json"
        path.write_text('{"format": "something-else"}\n')
        with pytest.raises(ValueError, match="not a GSM emulator state"):
            GsmEmulator(state_file=path)
        assert path.read_text() == '{"format": "something-else"}\n'


@pytest.fixture
def emulator() -> Iterator[GsmEmulator]:
    server = GsmEmulator()
    server.start()
    server.seed(GSM_PROJECT, {SECRET_ID: ["fake-v1"]})
    yield server
    server.stop()


@pytest.fixture
async def client(emulator: GsmEmulator) -> AsyncIterator[Any]:
    sm = await _client(emulator.address)
    yield sm
    await sm.transport.close()


class TestIamPermissions:
    async def test_grants_every_permission_by_default(self, client: Any) -> None:
        """With no restriction the emulator holds every permission asked."""
        answer = await client.test_iam_permissions(
            request={"resource": SECRET, "permissions": list(SECRET_PERMISSIONS)}, **NO_RETRY
        )
        assert sorted(answer.permissions) == sorted(SECRET_PERMISSIONS)

    async def test_answers_the_subset_held(self, emulator: GsmEmulator, client: Any) -> None:
        """A configured set: only the permissions asked that are held come back."""
        emulator.granted_permissions = frozenset({"secretmanager.versions.access"})
        answer = await client.test_iam_permissions(
            request={"resource": SECRET, "permissions": list(SECRET_PERMISSIONS)}, **NO_RETRY
        )
        assert list(answer.permissions) == ["secretmanager.versions.access"]
        assert emulator.call_count("TestIamPermissions") == 1

    async def test_a_missing_secret_is_not_found(self, client: Any) -> None:
        """As GSM: the resource must exist."""
        with pytest.raises(core_exceptions.NotFound):
            await client.test_iam_permissions(
                request={
                    "resource": f"projects/{GSM_PROJECT}/secrets/apex-omni-missing",
                    "permissions": ["secretmanager.versions.access"],
                },
                **NO_RETRY,
            )
