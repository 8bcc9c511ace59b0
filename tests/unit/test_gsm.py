"""The GSM adapter without a network: exception table guard, retries, payload checks.

The adapter's gRPC client is replaced by a scripted stand-in (same method signatures as the
official async client) so every case runs on a manual clock with no real sleeping.
"""

from __future__ import annotations

import inspect
import traceback
from typing import Any

import google.auth.exceptions as auth_exceptions
import google_crc32c
import grpc
import pytest
from google.api_core import exceptions as core_exceptions
from google.cloud.secretmanager_v1.types import resources, service

from omni_secrets.adapters import gsm
from omni_secrets.adapters.gsm import GsmCallRecord, GsmSecretManagerClient
from omni_secrets.adapters.gsm_errors import EXCEPTION_REASONS, reason_for
from omni_secrets.adapters.retry import RetryPolicy
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import ChecksumMismatch, SecretStoreError

PROJECT = "omni-unit"
CANARY = "fake-canary-value-7f3a9"
TRANSIENT_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL")


def api_core_classes() -> list[type[Exception]]:
    return [
        cls
        for _, cls in inspect.getmembers(core_exceptions, inspect.isclass)
        if issubclass(cls, core_exceptions.GoogleAPIError)
    ]


def call_error(code_name: str) -> core_exceptions.GoogleAPICallError:
    return core_exceptions.from_grpc_status(grpc.StatusCode[code_name], f"server says {code_name}")


def access_response(value: bytes, version: int = 3, crc: int | str | None = "auto") -> Any:
    payload = resources.SecretPayload(data=value)
    if crc == "auto":
        payload.data_crc32c = google_crc32c.value(value)
    elif crc is not None:
        payload.data_crc32c = crc
    return service.AccessSecretVersionResponse(
        name=f"projects/{PROJECT}/secrets/s/versions/{version}", payload=payload
    )


class ScriptedGrpc:
    """Stands in for SecretManagerServiceAsyncClient: replays outcomes, records each call."""

    def __init__(self, clock: ManualClock, outcomes: list[Any], cost: float = 0.0) -> None:
        self.clock = clock
        self.outcomes = outcomes
        self.cost = cost
        self.calls: list[dict[str, Any]] = []

    async def access_secret_version(self, *, request: Any, retry: Any, timeout: float) -> Any:
        self.calls.append({"name": request.name, "retry": retry, "timeout": timeout})
        self.clock.advance(min(self.cost, timeout))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class ScriptedClient(GsmSecretManagerClient):
    def __init__(self, grpc_client: ScriptedGrpc, **kwargs: Any) -> None:
        self.scripted = grpc_client
        self.sleeps: list[float] = []
        self.records: list[GsmCallRecord] = []

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            grpc_client.clock.advance(seconds)

        options: dict[str, Any] = {
            "project_id": PROJECT,
            "endpoint": "127.0.0.1:1",
            "timeout_seconds": 1.0,
            "retry": RetryPolicy(max_attempts=3, initial_backoff_seconds=0.1, deadline_seconds=10),
            "on_call": self.records.append,
            "sleep": sleep,
            "random": lambda: 0.5,
            "clock": grpc_client.clock,
        }
        options.update(kwargs)
        super().__init__(**options)

    def _new_client(self) -> Any:
        return self.scripted


def scripted(*outcomes: Any, cost: float = 0.0, **kwargs: Any) -> ScriptedClient:
    return ScriptedClient(ScriptedGrpc(ManualClock(), list(outcomes), cost), **kwargs)


class TestExceptionTable:
    def test_every_grpc_coded_api_core_exception_is_listed(self) -> None:
        """Each api_core class with a gRPC status is in the table by name, with that status."""
        coded = [c for c in api_core_classes() if getattr(c, "grpc_status_code", None)]
        assert len(coded) >= 16
        for cls in coded:
            assert cls in EXCEPTION_REASONS, cls.__name__
            assert EXCEPTION_REASONS[cls] == cls.grpc_status_code.name

    def test_every_api_core_exception_class_translates(self) -> None:
        """No api_core exception class falls through the table untranslated."""
        for cls in api_core_classes():
            reason = reason_for(cls.__new__(cls))
            assert reason is not None, cls.__name__
            assert reason in grpc.StatusCode.__members__, (cls.__name__, reason)

    @pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK])
    def test_every_status_code_keeps_its_name(self, code: grpc.StatusCode) -> None:
        """An api_core error built from any non-OK status translates to that status's name."""
        assert reason_for(core_exceptions.from_grpc_status(code, "x")) == code.name

    def test_raw_grpc_error_uses_its_code(self) -> None:
        """A grpc.aio.AioRpcError api_core did not wrap translates by its own code."""
        error = grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down"
        )
        assert reason_for(error) == "UNAVAILABLE"

    def test_credentials_errors(self) -> None:
        """Missing ADC is permanent UNAUTHENTICATED; an unreachable token server is UNAVAILABLE."""
        assert reason_for(auth_exceptions.DefaultCredentialsError("no ADC")) == "UNAUTHENTICATED"
        assert reason_for(auth_exceptions.RefreshError("revoked")) == "UNAUTHENTICATED"
        assert reason_for(auth_exceptions.TransportError("metadata down")) == "UNAVAILABLE"

    def test_foreign_exception_is_not_translated(self) -> None:
        """An exception outside the vendor families is a bug: not translated."""
        assert reason_for(KeyError("x")) is None


class TestRetries:
    @pytest.mark.parametrize("code", TRANSIENT_CODES)
    async def test_transient_codes_are_retried(self, code: str) -> None:
        """Each transient code is retried: two failures then the value, three calls."""
        client = scripted(call_error(code), call_error(code), access_response(b"fake-v3"))
        accessed = await client.access("s")
        assert accessed.value.reveal() == "fake-v3"
        assert len(client.scripted.calls) == 3
        assert [r.code for r in client.records] == [code, code, "OK"]
        assert [r.attempt for r in client.records] == [1, 2, 3]

    @pytest.mark.parametrize(
        "code",
        [
            "PERMISSION_DENIED",
            "NOT_FOUND",
            "FAILED_PRECONDITION",
            "INVALID_ARGUMENT",
            "UNAUTHENTICATED",
            "ABORTED",
            "UNKNOWN",
            "CANCELLED",
            "DATA_LOSS",
            "UNIMPLEMENTED",
        ],
    )
    async def test_permanent_codes_fail_at_once(self, code: str) -> None:
        """A permanent code is raised after one call as a non-transient SecretStoreError."""
        client = scripted(call_error(code), access_response(b"fake-v3"))
        with pytest.raises(SecretStoreError) as raised:
            await client.access("s")
        assert raised.value.reason == code
        assert raised.value.transient is False
        assert len(client.scripted.calls) == 1
        assert client.sleeps == []

    async def test_library_retry_is_disabled_and_deadline_passed(self) -> None:
        """Every call passes retry=None and a timeout no larger than timeout_seconds."""
        client = scripted(call_error("UNAVAILABLE"), access_response(b"fake-v3"))
        await client.access("s", "3")
        assert [c["retry"] for c in client.scripted.calls] == [None, None]
        assert all(0 < c["timeout"] <= 1.0 for c in client.scripted.calls)
        assert client.scripted.calls[0]["name"] == f"projects/{PROJECT}/secrets/s/versions/3"

    async def test_exhausted_retries_raise_the_last_transient_error(self) -> None:
        """After max_attempts transient failures the error is transient, chained to the vendor's."""
        last = call_error("UNAVAILABLE")
        client = scripted(call_error("UNAVAILABLE"), call_error("UNAVAILABLE"), last)
        with pytest.raises(SecretStoreError) as raised:
            await client.access("s")
        assert raised.value.transient is True
        assert raised.value.__cause__ is last
        assert len(client.scripted.calls) == 3
        assert len(client.sleeps) == 2
        assert all(0 <= s <= 0.2 for s in client.sleeps)

    async def test_overall_deadline_bounds_slow_failures(self) -> None:
        """Calls that each burn their whole timeout stop within the policy's deadline."""
        client = scripted(
            call_error("DEADLINE_EXCEEDED"),
            cost=1.0,
            retry=RetryPolicy(max_attempts=10, initial_backoff_seconds=0.01, deadline_seconds=2.5),
        )
        started = client.scripted.clock.monotonic()
        with pytest.raises(SecretStoreError) as raised:
            await client.access("s")
        assert raised.value.reason == "DEADLINE_EXCEEDED"
        assert client.scripted.clock.monotonic() - started <= 2.5
        assert len(client.scripted.calls) == 3

    async def test_hook_failure_does_not_fail_the_read(self) -> None:
        """An on_call hook that raises is ignored: the value is still returned."""

        def broken_hook(record: GsmCallRecord) -> None:
            raise RuntimeError("metrics broke")

        client = scripted(access_response(b"fake-v3"), on_call=broken_hook)
        assert (await client.access("s")).version == "3"

    @pytest.mark.parametrize(
        ("secret_id", "version"), [("a/b", "latest"), ("s", "v.1"), ("s", "-1"), ("", "1")]
    )
    async def test_malformed_ids_make_no_call(self, secret_id: str, version: str) -> None:
        """A malformed secret id or version is INVALID_ARGUMENT without touching the network."""
        client = scripted(access_response(b"fake-v3"))
        with pytest.raises(SecretStoreError) as raised:
            await client.access(secret_id, version)
        assert raised.value.reason == "INVALID_ARGUMENT"
        assert client.scripted.calls == []


class TestGoogleEndpoint:
    async def test_missing_credentials_is_a_permanent_unauthenticated(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """endpoint=None uses ADC; credentials that cannot load fail permanently, without a call."""
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/fake-adc.json")
        client = GsmSecretManagerClient(
            project_id=PROJECT, endpoint=None, timeout_seconds=1.0, retry=RetryPolicy()
        )
        with pytest.raises(SecretStoreError) as raised:
            await client.access("s")
        await client.aclose()
        assert (raised.value.reason, raised.value.transient) == ("UNAUTHENTICATED", False)
        assert isinstance(raised.value.__cause__, auth_exceptions.DefaultCredentialsError)


class TestPayloadChecks:
    async def test_resolved_version_and_value(self) -> None:
        """`latest` resolves to the version number the response names."""
        client = scripted(access_response(b"fake-v7", version=7))
        accessed = await client.access("s")
        assert (accessed.version, accessed.value.reveal()) == ("7", "fake-v7")

    async def test_checksum_mismatch_is_retried_then_raised(self) -> None:
        """A wrong CRC32C on every attempt ends as ChecksumMismatch after all attempts."""
        client = scripted(access_response(CANARY.encode(), crc=12345))
        with pytest.raises(ChecksumMismatch) as raised:
            await client.access("s")
        assert raised.value.reason == "CHECKSUM_MISMATCH"
        assert raised.value.transient is True
        assert len(client.scripted.calls) == 3
        assert [r.code for r in client.records] == ["CHECKSUM_MISMATCH"] * 3

    async def test_zero_checksum_is_still_checked(self) -> None:
        """A data_crc32c of 0 is present, so it is verified (and fails for non-empty data)."""
        client = scripted(access_response(b"fake-v3", crc=0))
        with pytest.raises(ChecksumMismatch):
            await client.access("s")

    async def test_missing_checksum_is_a_checksum_failure(self) -> None:
        """A response without data_crc32c cannot be verified: CHECKSUM_MISMATCH, no value."""
        client = scripted(*(access_response(b"fake-v3", crc=None) for _ in range(5)))
        with pytest.raises(ChecksumMismatch):
            await client.access("s")

    async def test_checksum_recovers_on_retry(self) -> None:
        """One corrupted response, then a good one: the good value is returned."""
        client = scripted(access_response(b"fake-v3", crc=1), access_response(b"fake-v3"))
        assert (await client.access("s")).value.reveal() == "fake-v3"
        assert len(client.scripted.calls) == 2

    async def test_invalid_utf8_is_permanent_and_leaks_nothing(self) -> None:
        """Non-UTF-8 bytes fail at once as INVALID_PAYLOAD with no cause, context or payload."""
        payload = CANARY.encode() + b"\xff\xfe"
        client = scripted(access_response(payload))
        with pytest.raises(SecretStoreError) as raised:
            await client.access("s")
        error = raised.value
        assert (error.reason, error.transient) == (gsm.INVALID_PAYLOAD, False)
        assert error.__cause__ is None
        assert error.__context__ is None
        assert len(client.scripted.calls) == 1
        assert CANARY not in repr(error) + str(error)

    async def test_error_tracebacks_with_locals_hold_no_payload(self) -> None:
        """Rendering a checksum failure's traceback with frame locals shows no payload bytes."""
        client = scripted(access_response(CANARY.encode(), crc=99))
        with pytest.raises(ChecksumMismatch) as raised:
            await client.access("s")
        rendered = "".join(
            traceback.TracebackException.from_exception(raised.value, capture_locals=True).format()
        )
        assert "_access_once" in rendered
        assert CANARY not in rendered
