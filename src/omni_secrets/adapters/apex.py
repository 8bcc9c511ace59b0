"""The signed ApeX Omni REST client: the request signer and :class:`ApexOmniClient`.

:func:`sign` and :func:`signed_headers` implement ``apex-omni-signing.md`` to the letter and are
pinned by its test vectors (``tests/unit/test_apex_signing.py``); they are a few lines of the
standard library on purpose (the official ``apexomni`` connector is far too heavy to import).

:class:`ApexOmniClient` implements :class:`~omni_secrets.domain.exchange.ApexGateway` over an
injected ``httpx.AsyncClient``. It checks both the HTTP status and ApeX's ``code``. The signed
headers carry the passphrase and a signature, so they must never reach a log line or an exception:
the request is sent in a helper that returns only the status and the parsed body (never the httpx
request/response or exception objects, which keep the headers), and errors are raised from a frame
that never held the headers, so ``__cause__``/``__context__`` stay empty.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import structlog

from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import ApexUpstreamError
from omni_secrets.domain.exchange import (
    ApexAccount,
    ApexCredentials,
    SelfTestResult,
    describe_apex_code,
)
from omni_secrets.domain.header_safety import is_header_safe

DEFAULT_TIMEOUT_SECONDS: Final = 5.0
TIME_PATH: Final = "/api/v3/time"
ACCOUNT_PATH: Final = "/api/v3/account"

HEADER_SIGNATURE: Final = "APEX-SIGNATURE"
HEADER_API_KEY: Final = "APEX-API-KEY"
HEADER_TIMESTAMP: Final = "APEX-TIMESTAMP"
HEADER_PASSPHRASE: Final = "APEX-PASSPHRASE"  # noqa: S105 (a header name)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_UPSTREAM_TEXT: Final = 200
_REDACTED: Final = "<redacted>"


# --- signing -----------------------------------------------------------------------------------


def render_data(data: Mapping[str, object] | None) -> str:
    """The ``DATA`` part of the signed message: ``k=v`` pairs sorted by key, joined by ``&``.

    ``None`` values are dropped and values are rendered with ``str`` (so Python booleans become
    ``True``/``False``, as ApeX's own connector does). Nothing is URL-encoded.
    """
    if not data:
        return ""
    return "&".join(f"{key}={value}" for key, value in sorted(data.items()) if value is not None)


def sign(
    secret: str,
    timestamp_ms: int | str,
    method: str,
    path: str,
    data: Mapping[str, object] | None = None,
) -> str:
    """Compute ``APEX-SIGNATURE`` for one request.

    The HMAC-SHA256 key is the ASCII of ``base64(secret_utf8)`` (an *encoding* of the secret, not
    a decoding, not the raw secret); the message is ``T + METHOD + PATH + DATA``.

    Args:
        secret: the API secret in plaintext.
        timestamp_ms: Unix epoch milliseconds, the same value sent as ``APEX-TIMESTAMP``.
        method: the HTTP method (upper-cased here).
        path: from ``/api`` on; for GET including the query string exactly as sent.
        data: POST form parameters (empty or None for GET); see :func:`render_data`.

    Returns:
        The standard base64 (padded) of the HMAC digest.

    Raises:
        ValueError: ``timestamp_ms`` is not a non-negative whole number of milliseconds.
    """
    timestamp = _timestamp_text(timestamp_ms)
    key = base64.standard_b64encode(secret.encode("utf-8"))
    message = f"{timestamp}{method.upper()}{path}{render_data(data)}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.standard_b64encode(digest).decode("ascii")


def signed_headers(
    credentials: ApexCredentials,
    method: str,
    path: str,
    data: Mapping[str, object] | None,
    timestamp_ms: int | str,
) -> dict[str, str]:
    """The four ApeX authentication headers for one request.

    .. warning:: The result holds the API key and passphrase in plaintext: hand it straight to
       the HTTP client and never log, store or put it in an exception.

    Args:
        credentials: the key, secret and passphrase.
        method: the HTTP method.
        path: the request path from ``/api`` on (with the query string for GET).
        data: POST form parameters, None for GET.
        timestamp_ms: Unix epoch milliseconds.

    Returns:
        ``APEX-SIGNATURE``, ``APEX-API-KEY``, ``APEX-TIMESTAMP`` and ``APEX-PASSPHRASE``.

    Raises:
        ValueError: ``timestamp_ms`` is not a non-negative whole number of milliseconds.
    """
    timestamp = _timestamp_text(timestamp_ms)
    return {
        HEADER_SIGNATURE: sign(credentials.secret.reveal(), timestamp, method, path, data),
        HEADER_API_KEY: credentials.key.reveal(),
        HEADER_TIMESTAMP: timestamp,
        HEADER_PASSPHRASE: credentials.passphrase.reveal(),
    }


def _timestamp_text(timestamp_ms: int | str) -> str:
    text = str(timestamp_ms)
    if isinstance(timestamp_ms, bool) or not text.isascii() or not text.isdigit():
        raise ValueError("timestamp_ms must be a non-negative whole number of milliseconds")
    return text


def epoch_ms(moment: datetime) -> int:
    """Whole Unix epoch milliseconds of an aware datetime (exact, no float rounding)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


# --- the client --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    """What came back from one request: status and parsed body only, never the request."""

    http_status: int | None
    body: Any
    body_is_json: bool
    network_error: str | None


@dataclass(frozen=True, slots=True)
class _Refusal:
    """Why ApeX (or the way to it) did not give us a ``data`` object; every field is safe."""

    message: str
    http_status: int | None
    apex_code: int | None
    apex_message: str | None

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"httpStatus": self.http_status, "apexCode": self.apex_code}
        if self.apex_message is not None:
            details["apexMessage"] = self.apex_message
        return details


class ApexOmniClient:
    """:class:`~omni_secrets.domain.exchange.ApexGateway` over HTTPS with HMAC-signed requests.

    Every request has its own timeout. Signing timestamps come from ``clock`` (the service signs
    with its own clock; the self-test reports how far that is from ApeX's).

    Args:
        base_url: the REST base, e.g. ``https://omni.apex.exchange`` (no trailing ``/api``).
        http: a shared ``httpx.AsyncClient``; its lifetime belongs to the caller.
        clock: the source of signing timestamps and skew measurements.
        timeout_seconds: per-request timeout (connect, read, write and pool each).
    """

    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        clock: Clock,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._base_url = base_url.rstrip("/")
        self._http = http
        self._clock = clock
        self._timeout = httpx.Timeout(timeout_seconds)
        self._log = structlog.get_logger()

    def __repr__(self) -> str:
        return f"ApexOmniClient(base_url={self._base_url!r})"

    async def get_account(self, credentials: ApexCredentials) -> ApexAccount:
        """Fetch the account with a signed ``GET /api/v3/account``.

        Args:
            credentials: the key, secret and passphrase to sign with.

        Returns:
            ApeX's ``data`` object and the account id.

        Raises:
            ApexUpstreamError: network error or timeout, non-2xx status, a body that is not a JSON
                object with a ``data`` object, or a non-zero ``code``; ``details`` carries
                ``httpStatus``, ``apexCode`` and, when ApeX sent one, ``apexMessage`` (scrubbed
                of the credential values). Never chained to the httpx exception.
        """
        outcome = await self._account(credentials)
        if isinstance(outcome, _Refusal):
            raise ApexUpstreamError(outcome.message, details=outcome.details())
        return outcome

    async def self_test(self, credentials: ApexCredentials) -> SelfTestResult:
        """Measure clock skew with ``GET /api/v3/time``, then try a signed account fetch.

        A failed time call only leaves ``skew_ms`` None; the account call decides ``ok``. Never
        raises for refusals, HTTP errors, timeouts or bad bodies.

        Args:
            credentials: the credentials to check.

        Returns:
            The outcome, with the reason when not ok.
        """
        skew_ms = await self._measure_skew()
        outcome = await self._account(credentials)
        if isinstance(outcome, _Refusal):
            return SelfTestResult(
                ok=False,
                http_status=outcome.http_status,
                apex_code=outcome.apex_code,
                skew_ms=skew_ms,
                account_id=None,
                reason=outcome.message,
            )
        return SelfTestResult(
            ok=True,
            http_status=200,
            apex_code=None,
            skew_ms=skew_ms,
            account_id=outcome.account_id,
            reason=None,
        )

    # -- internals ------------------------------------------------------------------------------

    async def _account(self, credentials: ApexCredentials) -> ApexAccount | _Refusal:
        if not all(is_header_safe(v.reveal()) for v in (credentials.key, credentials.passphrase)):
            # The service refuses such values when it fetches or opens them; this is the last
            # line, so httpx never builds (and quotes in its error) a header it cannot encode.
            return _Refusal(
                "the API key or passphrase contains characters an HTTP header cannot carry",
                None,
                None,
                None,
            )
        timestamp = epoch_ms(self._clock.now())
        answer = await self._get(
            ACCOUNT_PATH, signed_headers(credentials, "GET", ACCOUNT_PATH, None, timestamp)
        )
        outcome = self._interpret(ACCOUNT_PATH, answer, credentials)
        if isinstance(outcome, _Refusal):
            return outcome
        return ApexAccount.from_data(outcome)

    async def _measure_skew(self) -> int | None:
        before = epoch_ms(self._clock.now())
        answer = await self._get(TIME_PATH, {})
        after = epoch_ms(self._clock.now())
        outcome = self._interpret(TIME_PATH, answer, None)
        if isinstance(outcome, _Refusal):
            return None
        server_ms = outcome.get("time")
        if isinstance(server_ms, str) and server_ms.isdigit():
            server_ms = int(server_ms)
        if not isinstance(server_ms, int) or isinstance(server_ms, bool):
            self._log.warning("apex.bad_time_response", path=TIME_PATH)
            return None
        # The server read its clock somewhere during the round trip; the midpoint is the best
        # guess without more samples.
        return server_ms - (before + after) // 2

    async def _get(self, path: str, headers: Mapping[str, str]) -> _Answer:
        # The only place that touches httpx objects: nothing it returns references the request
        # (and so the signed headers), and nothing it raises comes from httpx.
        try:
            response = await self._http.get(
                self._base_url + path, headers=headers, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            return _Answer(None, None, False, type(exc).__name__)
        try:
            body: Any = json.loads(response.content)
            is_json = True
        except (ValueError, UnicodeDecodeError):
            body, is_json = None, False
        return _Answer(response.status_code, body, is_json, None)

    def _interpret(
        self, path: str, answer: _Answer, credentials: ApexCredentials | None
    ) -> Mapping[str, Any] | _Refusal:
        refusal = _refusal_of(answer, credentials)
        if refusal is None:
            return answer.body["data"]  # type: ignore[no-any-return]
        self._log.warning(
            "apex.request_failed",
            path=path,
            http_status=refusal.http_status,
            apex_code=refusal.apex_code,
            reason=refusal.message,
        )
        return refusal


def _refusal_of(answer: _Answer, credentials: ApexCredentials | None) -> _Refusal | None:
    """None when ``answer`` is a success carrying a ``data`` object, else why not."""
    status = answer.http_status
    if status is None:
        return _Refusal(
            f"ApeX Omni unreachable: network error ({answer.network_error})", None, None, None
        )
    body = answer.body if answer.body_is_json and isinstance(answer.body, dict) else None
    code = _apex_code(body)
    apex_message = _apex_message(body, credentials)
    if code is not None:
        return _Refusal(
            f"ApeX Omni refused the request: {describe_apex_code(code)} (HTTP {status})",
            status,
            code,
            apex_message,
        )
    if not 200 <= status < 300:
        what = " (IP rate-limited)" if status == 403 else ""
        return _Refusal(f"ApeX Omni answered HTTP {status}{what}", status, None, apex_message)
    if body is None:
        return _Refusal(
            "ApeX Omni answered with a body that is not a JSON object", status, None, None
        )
    if not isinstance(body.get("data"), dict):
        return _Refusal("ApeX Omni answered without a data object", status, None, None)
    return None


def _apex_code(body: Mapping[str, Any] | None) -> int | None:
    """ApeX's error ``code``: None when absent or zero (success), else the number."""
    if body is None:
        return None
    raw = body.get("code")
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw.lstrip("-").isdigit():
            # A code we cannot read is still a refusal: never mistake it for success.
            return -1
        raw = int(raw)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if not isinstance(raw, int):
        return -1
    return raw or None


def _apex_message(
    body: Mapping[str, Any] | None, credentials: ApexCredentials | None
) -> str | None:
    """ApeX's ``msg``, shortened, with any credential value in it replaced (ApeX might echo)."""
    if body is None or not isinstance(body.get("msg"), str):
        return None
    text: str = body["msg"]
    if credentials is not None:
        for value in (credentials.key, credentials.secret, credentials.passphrase):
            plain = value.reveal()
            if plain:
                text = text.replace(plain, _REDACTED)
    if len(text) > _MAX_UPSTREAM_TEXT:
        text = text[: _MAX_UPSTREAM_TEXT - 1] + "…"
    return text
