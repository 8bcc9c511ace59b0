"""ApexOmniClient against the fake ApeX server over real loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from structlog.testing import capture_logs

from omni_secrets.adapters.apex import ApexOmniClient
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import ApexUpstreamError
from omni_secrets.domain.exchange import ApexCredentials
from omni_secrets.testing import FakeApexFailure, FakeApexServer

GOOD = ApexCredentials.of("fake-key-good", "fake-secret-good", "fake-passphrase-good")
NEXT = ApexCredentials.of("fake-key-next", "fake-secret-next", "fake-passphrase-next")
CANARIES = ("fake-key-good", "fake-secret-good", "fake-passphrase-good")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def apex(clock: ManualClock) -> Iterator[FakeApexServer]:
    with FakeApexServer([GOOD], clock=clock) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def client(apex: FakeApexServer, http: httpx.AsyncClient, clock: ManualClock) -> ApexOmniClient:
    return ApexOmniClient(apex.base_url, http, clock, timeout_seconds=2.0)


def _assert_leaks_nothing(error: ApexUpstreamError) -> None:
    texts = [str(error), repr(error), repr(error.details), error.message]
    for text in texts:
        for canary in CANARIES:
            assert canary not in text
    # Chaining to an httpx exception would keep the request, and so the signed headers, alive.
    assert error.__cause__ is None
    assert error.__context__ is None


class TestGetAccount:
    async def test_returns_apex_data_and_account_id(
        self, client: ApexOmniClient, apex: FakeApexServer
    ) -> None:
        """A correctly signed request returns ApeX's data object and its id."""
        account = await client.get_account(GOOD)
        assert account.account_id == "fake-account-1"
        assert account.data["ethereumAddress"] == "0xfake-ethereum-address-1"
        [seen] = apex.requests
        assert (seen.method, seen.path, seen.api_key) == ("GET", "/api/v3/account", "fake-key-good")
        assert seen.authenticated
        assert {"apex-signature", "apex-api-key", "apex-timestamp", "apex-passphrase"} <= (
            seen.header_names
        )

    async def test_signs_with_the_clock_time(
        self, client: ApexOmniClient, apex: FakeApexServer, clock: ManualClock
    ) -> None:
        """The signature covers the injected clock's time, which the server accepts after a move."""
        clock.advance(3600)
        account = await client.get_account(GOOD)
        assert account.account_id == "fake-account-1"

    @pytest.mark.parametrize(
        ("credentials", "code"),
        [
            pytest.param(
                ApexCredentials.of("fake-key-unknown", "fake-secret-good", "fake-passphrase-good"),
                10002,
                id="unknown-key",
            ),
            pytest.param(
                ApexCredentials.of("fake-key-good", "fake-secret-wrong", "fake-passphrase-good"),
                20006,
                id="wrong-secret",
            ),
            pytest.param(
                ApexCredentials.of("fake-key-good", "fake-secret-good", "fake-passphrase-wrong"),
                20006,
                id="wrong-passphrase",
            ),
        ],
    )
    async def test_apex_code_in_a_200_body_is_an_upstream_error(
        self, client: ApexOmniClient, credentials: ApexCredentials, code: int
    ) -> None:
        """A non-zero ApeX code fails even though the HTTP status is 200."""
        with pytest.raises(ApexUpstreamError) as caught:
            await client.get_account(credentials)
        assert caught.value.details["apexCode"] == code
        assert caught.value.details["httpStatus"] == 200
        assert caught.value.code == "APEX_UPSTREAM_ERROR"

    @pytest.mark.parametrize(
        ("mode", "http_status", "apex_code", "phrase"),
        [
            (FakeApexFailure.HTTP_500, 500, None, "HTTP 500"),
            (FakeApexFailure.HTTP_403, 403, None, "rate-limited"),
            (FakeApexFailure.GARBAGE, 200, None, "not a JSON object"),
            (FakeApexFailure.TOO_MANY_REQUESTS, 200, 10003, "too many requests"),
            (FakeApexFailure.DISCONNECT, None, None, "network error"),
        ],
    )
    async def test_failure_modes_map_to_upstream_errors(
        self,
        client: ApexOmniClient,
        apex: FakeApexServer,
        mode: FakeApexFailure,
        http_status: int | None,
        apex_code: int | None,
        phrase: str,
    ) -> None:
        """Each ApeX failure mode raises ApexUpstreamError with the status and code it saw."""
        apex.fail(mode, times=1)
        with pytest.raises(ApexUpstreamError) as caught:
            await client.get_account(GOOD)
        assert caught.value.details["httpStatus"] == http_status
        assert caught.value.details["apexCode"] == apex_code
        assert phrase in caught.value.message
        _assert_leaks_nothing(caught.value)
        # Only one request failed: the next succeeds.
        assert (await client.get_account(GOOD)).account_id == "fake-account-1"

    async def test_refusal_leaks_no_credential(self, client: ApexOmniClient) -> None:
        """A signature refusal carries no credential value and no chained httpx exception."""
        wrong = ApexCredentials.of("fake-key-good", "fake-secret-good", "fake-passphrase-wrong")
        with pytest.raises(ApexUpstreamError) as caught:
            await client.get_account(wrong)
        _assert_leaks_nothing(caught.value)
        assert "fake-passphrase-wrong" not in repr(caught.value.details)

    async def test_failure_log_lines_hold_no_credential(
        self, client: ApexOmniClient, apex: FakeApexServer
    ) -> None:
        """The apex.request_failed log line names path, status and code, never a value."""
        wrong = ApexCredentials.of("fake-key-good", "fake-secret-good", "fake-passphrase-wrong")
        with capture_logs() as logs, pytest.raises(ApexUpstreamError):
            await client.get_account(wrong)
        [line] = [entry for entry in logs if entry["event"] == "apex.request_failed"]
        assert (line["path"], line["apex_code"]) == ("/api/v3/account", 20006)
        for canary in (*CANARIES, "fake-passphrase-wrong"):
            assert canary not in repr(logs)

    async def test_timeout_is_an_upstream_error(
        self, apex: FakeApexServer, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        """A server slower than the per-request timeout yields a network error, not a hang."""
        client = ApexOmniClient(apex.base_url, http, clock, timeout_seconds=0.2)
        apex.set_latency(30)
        with pytest.raises(ApexUpstreamError) as caught:
            await client.get_account(GOOD)
        assert caught.value.details["httpStatus"] is None
        assert "ReadTimeout" in caught.value.message
        _assert_leaks_nothing(caught.value)

    async def test_unreachable_server_is_an_upstream_error(
        self, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        """Nothing listening on the port yields a network error."""
        with FakeApexServer() as stopped_soon:
            base_url = stopped_soon.base_url
        client = ApexOmniClient(base_url, http, clock)
        with pytest.raises(ApexUpstreamError) as caught:
            await client.get_account(GOOD)
        assert "ConnectError" in caught.value.message

    async def test_accepted_credentials_change_at_runtime(
        self, client: ApexOmniClient, apex: FakeApexServer
    ) -> None:
        """After a key swap the old key is refused, the new one served, and both are recorded."""
        apex.set_accepted([NEXT])
        with pytest.raises(ApexUpstreamError):
            await client.get_account(GOOD)
        account = await client.get_account(NEXT)
        assert account.account_id == "fake-account-2"
        assert apex.signing_keys() == ["fake-key-good", "fake-key-next"]
        assert [r.authenticated for r in apex.requests] == [False, True]

    async def test_several_credential_sets_accepted(
        self, client: ApexOmniClient, apex: FakeApexServer
    ) -> None:
        """The fake accepts several credential sets at once, each with its own account."""
        apex.accept(NEXT, account={"id": 42, "positions": []})
        assert (await client.get_account(GOOD)).account_id == "fake-account-1"
        assert (await client.get_account(NEXT)).account_id == "42"

    async def test_revoked_key_is_refused(
        self, client: ApexOmniClient, apex: FakeApexServer
    ) -> None:
        """A revoked key gets code 10002 on its next request."""
        await client.get_account(GOOD)
        apex.revoke("fake-key-good")
        with pytest.raises(ApexUpstreamError) as caught:
            await client.get_account(GOOD)
        assert caught.value.details["apexCode"] == 10002

    async def test_code_with_an_error_status_reports_both(
        self, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        """When ApeX sends its code with a 4xx status, both end up in the details."""
        with FakeApexServer([GOOD], clock=clock, error_http_status=401) as apex:
            client = ApexOmniClient(apex.base_url, http, clock)
            with pytest.raises(ApexUpstreamError) as caught:
                await client.get_account(NEXT)
        assert (caught.value.details["httpStatus"], caught.value.details["apexCode"]) == (
            401,
            10002,
        )

    async def test_trailing_slash_in_base_url(
        self, apex: FakeApexServer, http: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        """A base URL ending in / still signs and sends /api/v3/account."""
        client = ApexOmniClient(apex.base_url + "/", http, clock)
        assert (await client.get_account(GOOD)).account_id == "fake-account-1"
        assert apex.requests[0].path == "/api/v3/account"


class TestGetAccountBodies:
    """Body shapes the fake does not produce, through an in-memory transport (no socket needed)."""

    @staticmethod
    def _client(response: httpx.Response) -> ApexOmniClient:
        transport = httpx.MockTransport(lambda request: response)
        return ApexOmniClient(
            "https://apex.invalid", httpx.AsyncClient(transport=transport), ManualClock()
        )

    async def test_echoed_credentials_are_scrubbed_from_apex_message(self) -> None:
        """An ApeX msg quoting our key or passphrase is kept for operators, without the values."""
        body = {"code": 10002, "msg": "apiKey fake-key-good / fake-passphrase-good unknown"}
        client = self._client(httpx.Response(200, json=body))
        with pytest.raises(ApexUpstreamError) as caught:
            await client.get_account(GOOD)
        assert caught.value.details["apexMessage"] == "apiKey <redacted> / <redacted> unknown"
        _assert_leaks_nothing(caught.value)

    async def test_success_without_data_object_fails(self) -> None:
        """A 200 without a data object is not mistaken for an account."""
        client = self._client(httpx.Response(200, json={"data": None}))
        with pytest.raises(ApexUpstreamError, match="without a data object"):
            await client.get_account(GOOD)

    @pytest.mark.parametrize("code", ["20006", "x", 1.5])
    async def test_unusual_codes_still_fail(self, code: object) -> None:
        """A string or odd-typed non-zero code is a refusal, never a success."""
        client = self._client(httpx.Response(200, json={"code": code, "data": {"id": 1}}))
        with pytest.raises(ApexUpstreamError):
            await client.get_account(GOOD)

    @pytest.mark.parametrize("code", [0, "0", None])
    async def test_zero_code_is_success(self, code: object) -> None:
        """code 0 (or absent) with a data object is a success."""
        client = self._client(httpx.Response(200, json={"code": code, "data": {"id": 7}}))
        assert (await client.get_account(GOOD)).account_id == "7"


class TestSelfTest:
    async def test_ok_with_measured_skew(
        self, client: ApexOmniClient, apex: FakeApexServer
    ) -> None:
        """Good credentials pass; skew is ApeX time minus ours; time is public, account signed."""
        apex.set_skew(1500)
        result = await client.self_test(GOOD)
        assert result.ok
        assert (result.http_status, result.apex_code, result.reason) == (200, None, None)
        assert result.skew_ms == 1500
        assert result.account_id == "fake-account-1"
        assert [(r.path, r.api_key) for r in apex.requests] == [
            ("/api/v3/time", None),
            ("/api/v3/account", "fake-key-good"),
        ]

    async def test_negative_skew(self, client: ApexOmniClient, apex: FakeApexServer) -> None:
        """A server behind our clock gives a negative skew."""
        apex.set_skew(-250)
        assert (await client.self_test(GOOD)).skew_ms == -250

    async def test_wrong_key_is_not_ok_and_does_not_raise(self, client: ApexOmniClient) -> None:
        """ApeX code 10002 gives ok false with the code and a reason."""
        result = await client.self_test(NEXT)
        assert not result.ok
        assert (result.http_status, result.apex_code) == (200, 10002)
        assert result.reason is not None
        assert "wrong API key" in result.reason
        assert result.skew_ms == 0
        assert result.account_id is None

    async def test_signature_error_is_reported(self, client: ApexOmniClient) -> None:
        """ApeX code 20006 (wrong secret) gives ok false with that code."""
        wrong = ApexCredentials.of("fake-key-good", "fake-secret-wrong", "fake-passphrase-good")
        result = await client.self_test(wrong)
        assert (result.ok, result.apex_code) == (False, 20006)
        assert result.reason is not None
        assert "fake-secret-wrong" not in result.reason

    async def test_rate_limited_is_reported(
        self, client: ApexOmniClient, apex: FakeApexServer
    ) -> None:
        """HTTP 403 on the account call gives ok false with that status."""
        apex.fail(FakeApexFailure.HTTP_403, path="/api/v3/account")
        result = await client.self_test(GOOD)
        assert (result.ok, result.http_status, result.apex_code) == (False, 403, None)
        assert result.skew_ms == 0

    async def test_time_failure_leaves_skew_unknown(
        self, client: ApexOmniClient, apex: FakeApexServer
    ) -> None:
        """A failing time endpoint does not fail the self-test; skew is just unknown."""
        apex.fail(FakeApexFailure.GARBAGE, path="/api/v3/time")
        result = await client.self_test(GOOD)
        assert result.ok
        assert result.skew_ms is None

    async def test_network_failure_does_not_raise(
        self, client: ApexOmniClient, apex: FakeApexServer
    ) -> None:
        """Dropped connections give ok false with no HTTP status instead of an exception."""
        apex.fail(FakeApexFailure.DISCONNECT)
        result = await client.self_test(GOOD)
        assert (result.ok, result.http_status, result.skew_ms) == (False, None, None)
        assert result.reason is not None
        assert "network error" in result.reason
