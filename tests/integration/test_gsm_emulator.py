"""The GSM emulator through the official async client: GSM semantics, faults, control interface."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import google_crc32c
import grpc
import httpx
import pytest
from google.api_core import exceptions as core_exceptions
from google.cloud.secretmanager_v1 import (
    SecretManagerServiceAsyncClient,
    SecretManagerServiceClient,
)
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcAsyncIOTransport,
    SecretManagerServiceGrpcTransport,
)
from google.cloud.secretmanager_v1.types import resources

from omni_secrets.emulator import GsmEmulator, RpcFault

from .conftest import GSM_PROJECT

SECRET_ID = "apex-omni-api-key"
PARENT = f"projects/{GSM_PROJECT}"
SECRET = f"{PARENT}/secrets/{SECRET_ID}"
NO_RETRY: dict[str, Any] = {"retry": None, "timeout": 5}


async def create(sm_client: Any, secret_id: str = SECRET_ID) -> Any:
    return await sm_client.create_secret(
        request={
            "parent": PARENT,
            "secret_id": secret_id,
            "secret": {"replication": {"automatic": {}}},
        },
        **NO_RETRY,
    )


async def add(sm_client: Any, data: bytes, parent: str = SECRET, **payload: Any) -> Any:
    return await sm_client.add_secret_version(
        request={"parent": parent, "payload": {"data": data, **payload}}, **NO_RETRY
    )


async def access(sm_client: Any, version: str = "latest") -> Any:
    return await sm_client.access_secret_version(name=f"{SECRET}/versions/{version}", **NO_RETRY)


class TestEmulatorSemantics:
    async def test_versions_numbered_from_one_and_never_reused(self, sm_client: Any) -> None:
        """Versions are 1, 2, 3; after destroying 3 the next one is 4."""
        await create(sm_client)
        names = [(await add(sm_client, f"fake-v{i}".encode())).name for i in (1, 2, 3)]
        assert [n.rsplit("/", 1)[1] for n in names] == ["1", "2", "3"]
        await sm_client.destroy_secret_version(name=f"{SECRET}/versions/3", **NO_RETRY)
        assert (await add(sm_client, b"fake-v4")).name == f"{SECRET}/versions/4"

    async def test_access_latest_and_pinned(self, sm_client: Any) -> None:
        """latest answers the newest version and names it; a pinned number answers that one."""
        await create(sm_client)
        await add(sm_client, b"fake-v1")
        await add(sm_client, b"fake-v2")
        latest = await access(sm_client)
        assert (latest.name, latest.payload.data) == (f"{SECRET}/versions/2", b"fake-v2")
        assert (await access(sm_client, "1")).payload.data == b"fake-v1"

    async def test_access_always_returns_the_crc32c(self, sm_client: Any) -> None:
        """The access response carries data_crc32c matching the data."""
        await create(sm_client)
        await add(sm_client, b"fake-crc")
        payload = (await access(sm_client)).payload
        assert "data_crc32c" in payload
        assert payload.data_crc32c == google_crc32c.value(b"fake-crc")

    async def test_latest_is_newest_whatever_its_state(self, sm_client: Any) -> None:
        """A disabled newest version makes latest fail with GSM's FAILED_PRECONDITION message."""
        await create(sm_client)
        await add(sm_client, b"fake-v1")
        await add(sm_client, b"fake-v2")
        await sm_client.disable_secret_version(name=f"{SECRET}/versions/2", **NO_RETRY)
        with pytest.raises(core_exceptions.FailedPrecondition) as raised:
            await access(sm_client)
        assert raised.value.message == (
            f"Secret Version [{SECRET}/versions/2] is in DISABLED state."
        )
        meta = await sm_client.get_secret_version(name=f"{SECRET}/versions/latest", **NO_RETRY)
        assert (meta.name, meta.state) == (
            f"{SECRET}/versions/2",
            resources.SecretVersion.State.DISABLED,
        )
        assert (await access(sm_client, "1")).payload.data == b"fake-v1"

    async def test_enable_restores_access(self, sm_client: Any) -> None:
        """Disable then enable: the version is served again."""
        await create(sm_client)
        await add(sm_client, b"fake-v1")
        await sm_client.disable_secret_version(name=f"{SECRET}/versions/1", **NO_RETRY)
        enabled = await sm_client.enable_secret_version(name=f"{SECRET}/versions/1", **NO_RETRY)
        assert enabled.state == resources.SecretVersion.State.ENABLED
        assert (await access(sm_client, "1")).payload.data == b"fake-v1"

    async def test_destroy_is_terminal_and_clears_the_payload(self, sm_client: Any) -> None:
        """A destroyed version has a destroy_time, refuses access and refuses re-enabling."""
        await create(sm_client)
        await add(sm_client, b"fake-v1")
        destroyed = await sm_client.destroy_secret_version(name=f"{SECRET}/versions/1", **NO_RETRY)
        assert destroyed.state == resources.SecretVersion.State.DESTROYED
        assert destroyed.destroy_time is not None
        with pytest.raises(core_exceptions.FailedPrecondition, match="DESTROYED state"):
            await access(sm_client, "1")
        with pytest.raises(core_exceptions.FailedPrecondition):
            await sm_client.enable_secret_version(name=f"{SECRET}/versions/1", **NO_RETRY)

    async def test_destroy_clears_the_stored_bytes(self, gsm_emulator: GsmEmulator) -> None:
        """After destroy the emulator no longer holds the payload."""
        gsm_emulator.seed(GSM_PROJECT, {"apex-omni-api-key": ["fake-to-destroy"]})
        gsm_emulator.destroy(GSM_PROJECT, "apex-omni-api-key", 1)
        secret = gsm_emulator.state._secrets[(GSM_PROJECT, "apex-omni-api-key")]
        assert secret.versions[1].data == b""
        assert gsm_emulator.version_state(GSM_PROJECT, "apex-omni-api-key", 1) == "DESTROYED"

    async def test_payload_limit_is_64_kib(self, sm_client: Any) -> None:
        """64 KiB is accepted; one byte more is INVALID_ARGUMENT."""
        await create(sm_client)
        assert (await add(sm_client, b"x" * 65536)).name.endswith("/1")
        with pytest.raises(core_exceptions.InvalidArgument, match="exceeds"):
            await add(sm_client, b"x" * 65537)

    async def test_crc32c_checked_on_add(self, sm_client: Any) -> None:
        """A matching data_crc32c is accepted and noted; a wrong one is INVALID_ARGUMENT."""
        await create(sm_client)
        good = await add(sm_client, b"fake-v1", data_crc32c=google_crc32c.value(b"fake-v1"))
        assert good.client_specified_payload_checksum is True
        with pytest.raises(core_exceptions.InvalidArgument, match="Checksum"):
            await add(sm_client, b"fake-v2", data_crc32c=1)
        plain = await add(sm_client, b"fake-v3")
        assert plain.client_specified_payload_checksum is False
        assert plain.name.endswith("/2")

    async def test_already_exists(self, sm_client: Any) -> None:
        """Creating an existing secret is ALREADY_EXISTS."""
        await create(sm_client)
        with pytest.raises(core_exceptions.AlreadyExists):
            await create(sm_client)

    async def test_create_requires_replication(self, sm_client: Any) -> None:
        """As in GSM, a secret without replication is INVALID_ARGUMENT."""
        with pytest.raises(core_exceptions.InvalidArgument, match="replication"):
            await sm_client.create_secret(
                request={"parent": PARENT, "secret_id": "x", "secret": {}}, **NO_RETRY
            )

    async def test_not_found(self, sm_client: Any) -> None:
        """Unknown secrets and versions are NOT_FOUND, for access, get and add."""
        with pytest.raises(core_exceptions.NotFound):
            await access(sm_client)
        with pytest.raises(core_exceptions.NotFound):
            await add(sm_client, b"fake")
        await create(sm_client)
        with pytest.raises(core_exceptions.NotFound):
            await access(sm_client)  # a secret with no versions has no latest
        await add(sm_client, b"fake-v1")
        with pytest.raises(core_exceptions.NotFound):
            await sm_client.get_secret_version(name=f"{SECRET}/versions/9", **NO_RETRY)

    async def test_get_secret_and_etags(self, sm_client: Any) -> None:
        """Secrets and versions carry quoted etags; a state change renews the version's etag."""
        created = await create(sm_client)
        fetched = await sm_client.get_secret(name=SECRET, **NO_RETRY)
        assert (fetched.name, fetched.etag) == (SECRET, created.etag)
        assert fetched.create_time is not None
        assert fetched.etag.startswith('"')
        assert fetched.etag.endswith('"')
        version = await add(sm_client, b"fake-v1")
        disabled = await sm_client.disable_secret_version(
            request={"name": version.name, "etag": version.etag}, **NO_RETRY
        )
        assert disabled.etag != version.etag

    async def test_stale_etag_is_failed_precondition(self, sm_client: Any) -> None:
        """A state change with a stale etag is FAILED_PRECONDITION (as GSM); nothing changes."""
        await create(sm_client)
        version = await add(sm_client, b"fake-v1")
        await sm_client.disable_secret_version(name=version.name, **NO_RETRY)
        with pytest.raises(core_exceptions.FailedPrecondition):
            await sm_client.enable_secret_version(
                request={"name": version.name, "etag": version.etag}, **NO_RETRY
            )
        current = await sm_client.get_secret_version(name=version.name, **NO_RETRY)
        assert current.state == resources.SecretVersion.State.DISABLED

    async def test_list_versions_newest_first_with_paging(self, sm_client: Any) -> None:
        """Five versions listed two per page come back newest first, every one once."""
        await create(sm_client)
        for i in range(1, 6):
            await add(sm_client, f"fake-v{i}".encode())
        await sm_client.disable_secret_version(name=f"{SECRET}/versions/4", **NO_RETRY)
        pager = await sm_client.list_secret_versions(
            request={"parent": SECRET, "page_size": 2}, **NO_RETRY
        )
        listed = [v async for v in pager]
        assert [v.name.rsplit("/", 1)[1] for v in listed] == ["5", "4", "3", "2", "1"]
        assert [v.state.name for v in listed] == ["ENABLED", "DISABLED"] + ["ENABLED"] * 3
        assert listed[0].create_time >= listed[-1].create_time

    async def test_unregistered_rpcs_are_unimplemented(self, sm_client: Any) -> None:
        """An RPC the emulator does not serve answers UNIMPLEMENTED."""
        with pytest.raises(core_exceptions.MethodNotImplemented):
            await sm_client.delete_secret(name=SECRET, **NO_RETRY)

    def test_python_api_refusals_are_rpc_faults(self, gsm_emulator: GsmEmulator) -> None:
        """The Python API raises RpcFault with GSM's code for what the RPC would refuse."""
        with pytest.raises(RpcFault) as raised:
            gsm_emulator.add_version(GSM_PROJECT, "missing", "fake")
        assert raised.value.code.name == "NOT_FOUND"

    def test_non_loopback_host_refused(self) -> None:
        """The emulator refuses to listen beyond loopback."""
        with pytest.raises(ValueError, match="loopback"):
            GsmEmulator("0.0.0.0")  # noqa: S104 - the point of the test


class TestEmulatorFaults:
    async def test_fail_next_counts_down_and_is_counted(
        self, gsm_emulator: GsmEmulator, sm_client: Any
    ) -> None:
        """Two injected UNAVAILABLE, then success; all three calls are counted and logged."""
        gsm_emulator.seed(GSM_PROJECT, {"apex-omni-api-key": ["fake-v1"]})
        gsm_emulator.fail_next("AccessSecretVersion", "UNAVAILABLE", 2)
        for _ in range(2):
            with pytest.raises(core_exceptions.ServiceUnavailable, match="injected"):
                await access(sm_client)
        assert (await access(sm_client)).payload.data == b"fake-v1"
        assert gsm_emulator.call_count("AccessSecretVersion") == 3
        codes = [r.code for r in gsm_emulator.call_log if r.method == "AccessSecretVersion"]
        assert codes == ["UNAVAILABLE", "UNAVAILABLE", "OK"]

    async def test_wildcard_faults_hit_any_method(
        self, gsm_emulator: GsmEmulator, sm_client: Any
    ) -> None:
        """A `*` fault fails the next call whatever its RPC."""
        gsm_emulator.fail_next("*", "PERMISSION_DENIED", 1)
        with pytest.raises(core_exceptions.PermissionDenied):
            await sm_client.get_secret(name=SECRET, **NO_RETRY)
        assert gsm_emulator.calls == {"GetSecret": 1}

    def test_unknown_method_or_code_rejected(self, gsm_emulator: GsmEmulator) -> None:
        """Fault injection refuses an unknown RPC name or status code."""
        with pytest.raises(ValueError, match="unknown method"):
            gsm_emulator.fail_next("AccessSecret", "UNAVAILABLE")
        with pytest.raises(ValueError, match="status code"):
            gsm_emulator.fail_next("*", "NOPE")

    async def test_corrupt_checksum_next(self, gsm_emulator: GsmEmulator, sm_client: Any) -> None:
        """The next access response carries a wrong CRC32C; the one after is right again."""
        gsm_emulator.seed(GSM_PROJECT, {"apex-omni-api-key": ["fake-v1"]})
        gsm_emulator.corrupt_checksum_next(1)
        bad = (await access(sm_client)).payload
        good = (await access(sm_client)).payload
        assert bad.data_crc32c != google_crc32c.value(bad.data)
        assert good.data_crc32c == google_crc32c.value(good.data)

    async def test_latency_does_not_starve_other_calls(
        self, gsm_emulator: GsmEmulator, sm_client: Any
    ) -> None:
        """Twenty concurrent calls with 0.3 s latency run in parallel, not one after another."""
        gsm_emulator.seed(GSM_PROJECT, {"apex-omni-api-key": ["fake-v1"]})
        gsm_emulator.inject_latency("*", 0.3)
        started = time.monotonic()
        results = await asyncio.gather(*(access(sm_client) for _ in range(20)))
        elapsed = time.monotonic() - started
        assert len(results) == 20
        assert 0.3 <= elapsed < 3.0  # serially this would take 6 s

    async def test_clear_faults(self, gsm_emulator: GsmEmulator, sm_client: Any) -> None:
        """clear_faults drops pending failures and latency."""
        gsm_emulator.seed(GSM_PROJECT, {"apex-omni-api-key": ["fake-v1"]})
        gsm_emulator.fail_next("*", "INTERNAL", 5)
        gsm_emulator.inject_latency("*", 30)
        gsm_emulator.clear_faults()
        assert (await access(sm_client)).payload.data == b"fake-v1"

    def test_stop_wakes_handlers_blocked_in_latency(self) -> None:
        """stop() returns promptly even while a call sits in a long injected latency."""
        emulator = GsmEmulator()
        address = emulator.start()
        emulator.seed(GSM_PROJECT, {"s": ["fake-v1"]})
        emulator.inject_latency("*", 60)

        async def blocked_call() -> None:
            channel = grpc.aio.insecure_channel(address)
            client = SecretManagerServiceAsyncClient(
                transport=SecretManagerServiceGrpcAsyncIOTransport(channel=channel)
            )
            with pytest.raises(core_exceptions.DeadlineExceeded):
                await client.access_secret_version(
                    name=f"{PARENT}/secrets/s/versions/1", retry=None, timeout=0.2
                )
            await channel.close()

        asyncio.run(blocked_call())
        started = time.monotonic()
        emulator.stop()
        assert time.monotonic() - started < 5.0
        assert emulator.call_count("AccessSecretVersion") == 1


class TestControlInterface:
    @pytest.fixture
    def controlled(self) -> Any:
        emulator = GsmEmulator(control_port=0)
        emulator.start()
        yield emulator
        emulator.stop()

    def test_faults_and_calls(self, controlled: GsmEmulator) -> None:
        """POST /faults arms a failure that the next call hits; GET /calls counts it."""
        url = controlled.control_url
        assert url is not None
        seeded = httpx.post(
            f"{url}/seed",
            json={"projectId": GSM_PROJECT, "secrets": {"apex-omni-api-key": ["fake-v1"]}},
        )
        assert seeded.json() == {"added": 1}
        armed = httpx.post(
            f"{url}/faults", json={"method": "GetSecret", "code": "NOT_FOUND", "count": 1}
        )
        assert armed.status_code == 200
        channel = grpc.insecure_channel(controlled.address)
        client = SecretManagerServiceClient(
            transport=SecretManagerServiceGrpcTransport(channel=channel)
        )
        with pytest.raises(core_exceptions.NotFound, match="injected"):
            client.get_secret(name=SECRET, retry=None, timeout=5)
        assert client.get_secret(name=SECRET, retry=None, timeout=5).name == SECRET
        channel.close()
        assert httpx.get(f"{url}/calls").json() == {"calls": {"GetSecret": 2}}

    def test_latency_corrupt_and_reset(self, controlled: GsmEmulator) -> None:
        """/latency, /corrupt and /reset reach the emulator's fault plan."""
        url = controlled.control_url
        assert httpx.post(f"{url}/latency", json={"seconds": 0.25}).status_code == 200
        assert controlled.faults.admit("GetSecret").latency == 0.25
        assert httpx.post(f"{url}/corrupt", json={"count": 2}).status_code == 200
        assert controlled.faults.take_corruption() is True
        assert httpx.post(f"{url}/reset", json={}).status_code == 200
        assert controlled.faults.take_corruption() is False
        assert controlled.faults.admit("GetSecret").latency == 0.0
        assert httpx.get(f"{url}/calls").json() == {"calls": {"GetSecret": 1}}

    @pytest.mark.parametrize(
        ("path", "body", "needle"),
        [
            ("/faults", {"method": "Nope", "code": "UNAVAILABLE"}, "unknown method"),
            ("/faults", {"method": "*", "code": "OK"}, "status code"),
            ("/faults", {"method": "*", "code": "UNAVAILABLE", "count": True}, "count"),
            ("/latency", {"seconds": "1"}, "seconds"),
            ("/seed", {"projectId": "p", "secrets": {"bad id": ["x"]}}, "secret id"),
        ],
    )
    def test_bad_requests_are_400(
        self, controlled: GsmEmulator, path: str, body: dict[str, Any], needle: str
    ) -> None:
        """Invalid bodies answer 400 with a reason."""
        response = httpx.post(f"{controlled.control_url}{path}", json=body)
        assert response.status_code == 400
        assert needle in response.json()["error"]

    def test_unknown_route_and_invalid_json(self, controlled: GsmEmulator) -> None:
        """An unknown route is 404; a non-JSON body is 400."""
        assert httpx.get(f"{controlled.control_url}/nope").status_code == 404
        response = httpx.post(f"{controlled.control_url}/corrupt", content=b"{not json")
        assert response.status_code == 400


class TestEmulatorLifecycle:
    def test_second_emulator_on_a_taken_port_fails(self, gsm_emulator: GsmEmulator) -> None:
        """Two emulators never share a port (gRPC's SO_REUSEPORT is off)."""
        port = int(gsm_emulator.address.rsplit(":", 1)[1])
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            GsmEmulator(port=port).start()

    def test_starts_once(self, gsm_emulator: GsmEmulator) -> None:
        """start() twice is a programming error."""
        with pytest.raises(RuntimeError, match="once"):
            gsm_emulator.start()

    def test_address_needs_a_started_emulator(self) -> None:
        """address before start() raises instead of returning a port nobody listens on."""
        with pytest.raises(RuntimeError, match="not started"):
            _ = GsmEmulator().address

    def test_taken_control_port_fails_and_releases_grpc(self) -> None:
        """A taken control port fails start() naming it, and the gRPC port is released."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            emulator = GsmEmulator(control_port=port)
            with pytest.raises(OSError, match=f"127.0.0.1:{port} \\(control\\)"):
                emulator.start()
        with pytest.raises(RuntimeError, match="not started"):
            _ = emulator.address
