"""Authenticated but hostile input: every refusal is a clean 4xx, never a 500 (issue 15).

Each case here answered 500 with a traceback before the fix: an oversized sealed nonce, a token
``sub`` longer than the audit column, a sealed ``issuedAt`` whose UTC instant does not exist, and
a non-ASCII ``api_key``/``api_passphrase`` (from GSM or a break-glass value) that httpx could not
put in a header. The property test at the end drives the break-glass and token paths with
arbitrary input through the real app.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PublicKey, SealedBox

from tests.contract import conftest as harness
from tests.contract.conftest import BreakGlassKeys, OmniStack, StackFactory
from tests.contract.test_breakglass_api import BREAK_GLASS, query, sealed_request

STATUS = "/ops/apex-omni/secrets/status"
REFRESH = "/internal/apex-omni/secrets/cache/refresh"
PREVIEW = "/ops/apex-omni/secrets/rotation-preview"
SELF_TEST = "/ops/apex-omni/secrets/self-test"
ACCOUNT = "/apex-omni/account"
NON_ASCII_KEY = "fake-api-k\u00e9y-canary-0e11"
NON_ASCII_MARK = "\u00e9"


def seal_raw(keys: BreakGlassKeys, plaintext: bytes) -> str:
    """Seal any bytes to the service's key (``seal_payload`` refuses malformed payloads)."""
    sealed = SealedBox(PublicKey(base64.b64decode(keys.public_key))).encrypt(plaintext)
    return base64.b64encode(sealed).decode("ascii")


def payload(**fields: Any) -> bytes:
    base = {
        "secretType": "api_secret",
        "value": "fake-override-value-51aa",
        "issuedAt": datetime.now(UTC).isoformat(),
        "nonce": base64.b64encode(b"n" * 32).decode("ascii"),
    }
    base.update(fields)
    return json.dumps(base).encode("utf-8")


def request_body(
    keys: BreakGlassKeys,
    ciphertext: str,
    secret_type: str = "api_secret",  # noqa: S107 - a type name, not a secret
) -> dict[str, Any]:
    return {
        "secretType": secret_type,
        "keyId": keys.key_id,
        "ciphertext": ciphertext,
        "ttlSeconds": 600,
        "reason": "fake drill",
        "ticket": "INC-1",
    }


async def rejection_count(stack: OmniStack) -> int:
    rows = await query(
        stack,
        "SELECT count(*) FROM omni_secret_access_events WHERE action = 'break_glass_rejected'",
    )
    return int(rows[0][0])


@pytest.fixture
async def stack(omni_stack_factory: StackFactory, break_glass_keys: BreakGlassKeys) -> OmniStack:
    return await omni_stack_factory(**break_glass_keys.env())


class TestSealedPayloadEdges:
    async def test_oversized_nonce_is_ciphertext_invalid_with_a_rejection_row(
        self, stack: OmniStack, break_glass_keys: BreakGlassKeys
    ) -> None:
        """A nonce longer than the stored column allows is refused, audited, not a 500."""
        nonce = base64.b64encode(b"n" * 4096).decode("ascii")
        body = request_body(break_glass_keys, seal_raw(break_glass_keys, payload(nonce=nonce)))
        before = await rejection_count(stack)
        response = await stack.request("POST", BREAK_GLASS, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "CIPHERTEXT_INVALID"
        assert await rejection_count(stack) == before + 1

    @pytest.mark.parametrize(
        "issued_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
    )
    async def test_issued_at_at_the_calendar_edge_is_refused(
        self, stack: OmniStack, break_glass_keys: BreakGlassKeys, issued_at: str
    ) -> None:
        """An ``issuedAt`` whose UTC instant does not exist is CIPHERTEXT_INVALID, audited."""
        body = request_body(
            break_glass_keys, seal_raw(break_glass_keys, payload(issuedAt=issued_at))
        )
        before = await rejection_count(stack)
        response = await stack.request("POST", BREAK_GLASS, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "CIPHERTEXT_INVALID"
        assert await rejection_count(stack) == before + 1

    @pytest.mark.parametrize("secret_type", ["api_key", "api_passphrase"])
    async def test_non_ascii_header_value_is_refused_without_showing_it(
        self, stack: OmniStack, break_glass_keys: BreakGlassKeys, secret_type: str
    ) -> None:
        """A break-glass api_key/passphrase no header can carry: 422, audited, never echoed."""
        body = sealed_request(break_glass_keys, NON_ASCII_KEY, secret_type=secret_type)
        before = await rejection_count(stack)
        response = await stack.request("POST", BREAK_GLASS, json=body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "VALUE_NOT_HEADER_SAFE"
        assert NON_ASCII_MARK not in response.text
        assert "position" not in error["message"]
        assert await rejection_count(stack) == before + 1
        account = await stack.request("GET", ACCOUNT)
        assert account.status_code == 200, "the GSM credentials stay served"

    async def test_non_ascii_api_secret_is_accepted(
        self, stack: OmniStack, break_glass_keys: BreakGlassKeys
    ) -> None:
        """The api_secret only keys the HMAC: any text is a usable value there."""
        body = sealed_request(
            break_glass_keys, "fake-s\u00e9cret-override-77", secret_type="api_secret"
        )
        response = await stack.request("POST", BREAK_GLASS, json=body)
        assert response.status_code == 201, response.text


class TestTokenSubject:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("GET", STATUS, None),
            ("POST", REFRESH, {}),
            ("POST", PREVIEW, {"secretType": "api_key"}),
            ("POST", BREAK_GLASS, {}),
        ],
    )
    async def test_overlong_subject_is_401_on_every_route(
        self, stack: OmniStack, method: str, path: str, body: dict[str, Any] | None
    ) -> None:
        """A ``sub`` over 255 characters cannot be an audit actor: 401, not a 500."""
        headers = stack.auth(*harness.ALL_SCOPES, subject="u" * 256)
        response = await stack.client.request(method, path, headers=headers, json=body)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_subject_of_255_characters_is_accepted(self, stack: OmniStack) -> None:
        headers = stack.auth(*harness.ALL_SCOPES, subject="u" * 255)
        response = await stack.client.get(STATUS, headers=headers)
        assert response.status_code == 200

    @pytest.mark.parametrize("subject", ["system", "SYSTEM", " system "])
    async def test_reserved_system_subject_writes_no_audit_row(
        self, stack: OmniStack, subject: str
    ) -> None:
        """A token cannot act as ``system``: its rows would look like the service's own."""
        # The batching audit writer may still be committing start-up rows: count after it has.
        await _audit_settled(stack)
        before = await query(stack, "SELECT count(*) FROM omni_secret_access_events")
        headers = stack.auth(*harness.ALL_SCOPES, subject=subject)
        response = await stack.client.post(REFRESH, headers=headers, json={})
        assert response.status_code == 401
        assert "reserved" in response.json()["error"]["message"]
        await _audit_settled(stack)
        after = await query(stack, "SELECT count(*) FROM omni_secret_access_events")
        assert after == before


async def _audit_settled(stack: OmniStack, timeout_seconds: float = 10.0) -> None:
    """Wait until every accepted audit event is committed (``Auditor.pending`` is 0)."""
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while stack.services.auditor.pending:
        assert asyncio.get_running_loop().time() < deadline, "audit writer did not settle"
        await asyncio.sleep(0.01)


class TestNonAsciiFromGsm:
    @pytest.fixture
    async def stack(
        self, omni_stack_factory: StackFactory, monkeypatch: pytest.MonkeyPatch
    ) -> OmniStack:
        monkeypatch.setitem(harness.FAKE_VALUES, "apex-omni-api-key", NON_ASCII_KEY)
        return await omni_stack_factory()

    async def test_type_fails_closed_with_a_clear_code(self, stack: OmniStack) -> None:
        """The GSM value is refused at fetch: not served, a clear lastError, no 500 anywhere."""
        status = await stack.request("GET", STATUS)
        api_key = next(s for s in status.json()["secrets"] if s["secretType"] == "api_key")
        assert api_key["cacheSource"] == "none"
        assert api_key["lastError"]["code"] == "VALUE_NOT_HEADER_SAFE"
        account = await stack.request("GET", ACCOUNT)
        assert account.status_code == 503
        assert account.json()["error"]["details"]["missing"] == ["api_key"]
        self_test = await stack.request("POST", SELF_TEST)
        assert self_test.status_code == 503
        for response in (status, account, self_test):
            assert NON_ASCII_MARK not in response.text

    async def test_rotation_candidate_is_not_ready(self, stack: OmniStack) -> None:
        """A candidate version no header can carry makes the preview not ready, never a 500."""
        stack.emulator.add_version(harness.PROJECT, "apex-omni-api-passphrase", "fake-p\u00e4ss-9")
        response = await stack.request("POST", PREVIEW, json={"secretType": "api_passphrase"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["ready"] is False
        self_test = next(c for c in body["checks"] if c["name"] == "apex_self_test")
        assert not self_test["ok"]
        assert "VALUE_NOT_HEADER_SAFE" in self_test["detail"]
        assert "\u00e4" not in response.text


# --- the property test ---------------------------------------------------------------------

_TYPES = ("api_key", "api_secret", "api_passphrase", "zk_seeds", "zk_l2_key")
_text = st.text(max_size=300)
_odd_json = st.one_of(st.none(), st.booleans(), st.integers(), st.lists(st.integers(), max_size=2))


def _now_text() -> str:
    return datetime.now(UTC).isoformat()


@st.composite
def _sealed_payloads(draw: st.DrawFn, body_type: str) -> dict[str, Any]:
    """Mostly well-formed payloads with one or more fields pushed somewhere hostile."""
    fields: dict[str, Any] = {
        "secretType": draw(
            st.one_of(st.just(body_type), st.sampled_from(_TYPES), _text, _odd_json)
        ),
        "value": draw(st.one_of(st.text(min_size=1, max_size=80), _odd_json)),
        "issuedAt": draw(
            st.one_of(
                st.just("now"),
                st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]),
                st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
                _text,
                _odd_json,
            )
        ),
        "nonce": draw(
            st.one_of(
                st.binary(min_size=0, max_size=300).map(lambda b: base64.b64encode(b).decode()),
                _text,
                _odd_json,
            )
        ),
    }
    for name in draw(st.sets(st.sampled_from(sorted(fields)), max_size=1)):
        del fields[name]
    return fields


# A schema violation (FastAPI's own 422, ``details.errors``) is refused at the edge before the
# service sees the request, so it leaves no rejection row.
_SCHEMA_REFUSAL = "errors"
_subjects = st.one_of(
    st.text(min_size=1, max_size=40),
    st.text(min_size=250, max_size=400),
    st.sampled_from(["system", "System", "tester"]),
)


class TestPropertyNoServerErrors:
    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        body_type=st.sampled_from((*_TYPES, "bogus")),
        data=st.data(),
        ttl=st.one_of(st.just(600), st.integers(min_value=-(2**70), max_value=2**70)),
        reason=st.one_of(st.just("fake drill"), _text),
        ticket=st.one_of(st.none(), st.text(max_size=200)),
        subject=_subjects,
    )
    async def test_break_glass_and_tokens(
        self,
        stack: OmniStack,
        break_glass_keys: BreakGlassKeys,
        body_type: str,
        data: st.DataObject,
        ttl: int,
        reason: str,
        ticket: str | None,
        subject: str,
    ) -> None:
        """Arbitrary sealed payloads, request fields and subjects: no 5xx, and every activation
        the service refuses leaves exactly one ``break_glass_rejected`` row."""
        sealed = data.draw(_sealed_payloads(body_type))
        if sealed.get("issuedAt") == "now":
            sealed["issuedAt"] = _now_text()
        ciphertext = seal_raw(break_glass_keys, json.dumps(sealed).encode("utf-8"))
        request = {
            "secretType": body_type,
            "keyId": break_glass_keys.key_id,
            "ciphertext": ciphertext,
            "ttlSeconds": ttl,
            "reason": reason,
            "ticket": ticket,
        }
        before = await rejection_count(stack)
        response = await stack.client.post(
            BREAK_GLASS, json=request, headers=stack.auth(*harness.ALL_SCOPES)
        )
        assert response.status_code < 500, response.text
        refused_by_service = response.status_code in (409, 422) and _SCHEMA_REFUSAL not in (
            response.json()["error"].get("details") or {}
        )
        assert await rejection_count(stack) == before + (1 if refused_by_service else 0)
        if response.status_code == 201:
            override_id = response.json()["overrideId"]
            revoke = await stack.client.delete(
                f"{BREAK_GLASS}/{override_id}", headers=stack.auth(*harness.ALL_SCOPES)
            )
            assert revoke.status_code == 204

        for method, path, json_body in (
            ("GET", STATUS, None),
            ("POST", REFRESH, {}),
            ("POST", PREVIEW, {"secretType": "zk_seeds"}),
            ("POST", BREAK_GLASS, request),
        ):
            try:
                headers = stack.auth(*harness.ALL_SCOPES, subject=subject)
            except UnicodeEncodeError:
                return  # a subject PyJWT cannot encode never becomes a token
            answer = await stack.client.request(method, path, headers=headers, json=json_body)
            assert answer.status_code < 500, (path, answer.text)
            if answer.status_code == 200 and path == PREVIEW:
                preview_id = answer.json()["previewId"]
                await stack.client.delete(
                    f"/ops/apex-omni/secrets/rotations/{preview_id}", headers=headers
                )
