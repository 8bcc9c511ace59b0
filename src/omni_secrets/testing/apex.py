"""ApeX fakes: :class:`FakeApexServer`, an ApeX Omni REST server that checks signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from omni_secrets.domain.clock import Clock, SystemClock
from omni_secrets.domain.exchange import ApexCredentials
from omni_secrets.testing._http import HttpReply, LoopbackServer, json_reply


class FakeApexFailure(StrEnum):
    """Ways :class:`FakeApexServer` can misbehave."""

    HTTP_500 = "http_500"  #: HTTP 500 with a plain-text body
    HTTP_403 = "http_403"  #: HTTP 403 with an HTML body (ApeX's IP rate limit)
    GARBAGE = "garbage"  #: HTTP 200 with a body that is not JSON
    TOO_MANY_REQUESTS = "too_many_requests"  #: ``{"code": 10003}``
    DISCONNECT = "disconnect"  #: close the connection without answering


@dataclass(frozen=True, slots=True)
class ApexRequestRecord:
    """One request :class:`FakeApexServer` saw (no signature or passphrase is kept).

    Attributes:
        method: the HTTP method.
        path: the path with its query string, as received.
        api_key: the ``APEX-API-KEY`` header (the key that signed it), None when absent.
        authenticated: the signature and passphrase checked out for an accepted key.
        http_status: the status answered (0 when the connection was dropped).
        apex_code: the ApeX ``code`` answered, None for success or a non-ApeX failure.
        header_names: the lower-cased names of the request headers.
    """

    method: str
    path: str
    api_key: str | None
    authenticated: bool
    http_status: int
    apex_code: int | None
    header_names: frozenset[str]


@dataclass
class _ScriptedFailure:
    mode: FakeApexFailure
    remaining: int | None
    path: str | None


def _default_account(number: int) -> dict[str, Any]:
    return {
        "id": f"fake-account-{number}",
        "ethereumAddress": f"0xfake-ethereum-address-{number}",
        "l2Key": f"0xfake-l2-key-{number}",
        "positions": [],
    }


def _apex_signature(secret: str, message: str) -> str:
    # Deliberately independent of adapters/apex.py, so the client is checked against a second
    # implementation of apex-omni-signing.md rather than against itself.
    key = base64.b64encode(secret.encode("utf-8"))
    return base64.b64encode(
        hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
    ).decode()


class FakeApexServer:
    """An ApeX Omni REST server on ``127.0.0.1`` that verifies request signatures.

    Serves ``GET /api/v3/time`` (public, ``{"data": {"time": <ms>}}``) and ``GET /api/v3/account``
    (signed). For a signed request it looks the ``APEX-API-KEY`` up among the accepted credentials
    and recomputes ``APEX-SIGNATURE`` from the received ``APEX-TIMESTAMP``, method and path (with
    its query string). Answers: unknown or missing key ``{"code": 10002}``; wrong signature, wrong
    passphrase or a non-numeric timestamp ``{"code": 20006}``, both with ``error_http_status``
    (200 by default, so clients must check ``code`` and not only the status); else the key's
    account as ``{"data": {...}}``.

    Threaded, so it can be called from async tests' event loops without blocking them. Use as a
    context manager or call :meth:`start`/:meth:`stop`. All setters are thread-safe and take
    effect for the next request.

    Args:
        accepted: credentials accepted from the start (more via :meth:`accept`).
        clock: the server's clock for ``/api/v3/time`` (default: the system clock).
        skew_ms: added to the clock's time, to simulate a server that is ahead (or behind).
        error_http_status: the HTTP status sent with ApeX ``code`` errors.
        credential_source: asked, on each signed request whose key is not among the accepted
            ones, for more credential sets to accept (for ``omni-secrets dev``: every set
            ENABLED in its GSM emulator, so a rotation can be rehearsed). Each set found gets
            a stable default account per API key.
    """

    def __init__(
        self,
        accepted: Iterable[ApexCredentials] = (),
        *,
        clock: Clock | None = None,
        skew_ms: int = 0,
        error_http_status: int = 200,
        credential_source: Callable[[], Iterable[ApexCredentials]] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._credential_source = credential_source
        self._server = LoopbackServer(self._handle)
        self._clock: Clock = clock or SystemClock()
        self._skew_ms = skew_ms
        self._error_http_status = error_http_status
        self._accepted: dict[str, tuple[ApexCredentials, dict[str, Any]]] = {}
        self._source_accounts: dict[str, dict[str, Any]] = {}
        self._accounts_created = 0
        self._failures: list[_ScriptedFailure] = []
        self._latency_seconds = 0.0
        self._requests: list[ApexRequestRecord] = []
        for credentials in accepted:
            self.accept(credentials)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, the value for ``OMNI_APEX_BASE_URL``."""
        return self._server.base_url

    def start(self) -> Self:
        """Start serving; returns self."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests parked in a latency wait are released."""
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- configuration --------------------------------------------------------------------------

    def accept(
        self, credentials: ApexCredentials, account: Mapping[str, Any] | None = None
    ) -> None:
        """Accept ``credentials`` (replacing any with the same key).

        Args:
            credentials: the key, secret and passphrase to accept.
            account: the ``data`` answered for that key; default a fresh
                ``{"id": "fake-account-<n>", ...}``.
        """
        with self._lock:
            if account is None:
                self._accounts_created += 1
                account = _default_account(self._accounts_created)
            self._accepted[credentials.key.reveal()] = (credentials, dict(account))

    def revoke(self, api_key: str) -> None:
        """Stop accepting the credentials with this API key (no error when unknown)."""
        with self._lock:
            self._accepted.pop(api_key, None)

    def set_accepted(self, credentials: Iterable[ApexCredentials]) -> None:
        """Accept exactly these credentials (fresh default accounts)."""
        with self._lock:
            self._accepted.clear()
        for item in credentials:
            self.accept(item)

    def fail(
        self, mode: FakeApexFailure, *, times: int | None = None, path: str | None = None
    ) -> None:
        """Misbehave for the next ``times`` requests (None: until :meth:`clear_failures`).

        Args:
            mode: how to fail.
            times: how many matching requests fail; None for all of them.
            path: fail only requests to this path (e.g. ``/api/v3/account``); None for any.
        """
        with self._lock:
            self._failures.append(_ScriptedFailure(mode, times, path))

    def clear_failures(self) -> None:
        """Behave again."""
        with self._lock:
            self._failures.clear()

    def set_latency(self, seconds: float) -> None:
        """Wait this long before answering each request (released at once by :meth:`stop`)."""
        with self._lock:
            self._latency_seconds = seconds

    def set_skew(self, skew_ms: int) -> None:
        """Shift ``/api/v3/time`` by ``skew_ms`` relative to the server's clock."""
        with self._lock:
            self._skew_ms = skew_ms

    # -- observation ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[ApexRequestRecord]:
        """Every request seen so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def signing_keys(self) -> list[str | None]:
        """The ``APEX-API-KEY`` of every request seen, oldest first."""
        return [record.api_key for record in self.requests]

    def server_time_ms(self) -> int:
        """What ``/api/v3/time`` answers right now."""
        now = self._clock.now()
        with self._lock:
            skew = self._skew_ms
        return (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1) + skew

    # -- request handling (server threads) ------------------------------------------------------

    def _handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], _body: bytes
    ) -> HttpReply:
        with self._lock:
            latency = self._latency_seconds
        if latency > 0 and self._server.stopping.wait(latency):
            return HttpReply(0, disconnect=True)
        path_only = urlsplit(raw_path).path
        failure = self._take_failure(path_only)
        api_key = headers.get("apex-api-key")
        authenticated = False
        code: int | None = None
        if failure is not None:
            reply, code = self._failure_reply(failure)
        elif method == "GET" and path_only == "/api/v3/time":
            reply = json_reply(200, {"data": {"time": self.server_time_ms()}})
        elif path_only == "/api/v3/account" and method == "GET":
            code, account = self._authenticate(method, raw_path, headers)
            authenticated = code is None
            if account is not None:
                reply = json_reply(200, {"data": account})
            else:
                reply = json_reply(self._error_http_status, {"code": code, "msg": _MSG[code]})
        else:
            reply = json_reply(404, {"msg": "not found"})
        record = ApexRequestRecord(
            method=method,
            path=raw_path,
            api_key=api_key,
            authenticated=authenticated,
            http_status=0 if reply.disconnect else reply.status,
            apex_code=code,
            header_names=frozenset(headers),
        )
        with self._lock:
            self._requests.append(record)
        return reply

    def _take_failure(self, path: str) -> FakeApexFailure | None:
        with self._lock:
            for scripted in self._failures:
                if scripted.path is not None and scripted.path != path:
                    continue
                if scripted.remaining is not None:
                    scripted.remaining -= 1
                    if scripted.remaining <= 0:
                        self._failures.remove(scripted)
                return scripted.mode
        return None

    @staticmethod
    def _failure_reply(mode: FakeApexFailure) -> tuple[HttpReply, int | None]:
        if mode is FakeApexFailure.HTTP_500:
            return HttpReply(500, b"internal server error", "text/plain"), None
        if mode is FakeApexFailure.HTTP_403:
            return HttpReply(403, b"<html>403 Forbidden</html>", "text/html"), None
        if mode is FakeApexFailure.GARBAGE:
            return HttpReply(200, b"<html>not json{", "text/html"), None
        if mode is FakeApexFailure.TOO_MANY_REQUESTS:
            return json_reply(200, {"code": 10003, "msg": _MSG[10003]}), 10003
        return HttpReply(0, disconnect=True), None

    def _authenticate(
        self, method: str, raw_path: str, headers: Mapping[str, str]
    ) -> tuple[int | None, dict[str, Any] | None]:
        """(None, account) when the request is signed by accepted credentials, else (code, None)."""
        api_key = headers.get("apex-api-key")
        with self._lock:
            entry = self._accepted.get(api_key) if api_key is not None else None
        candidates = [entry] if entry is not None else self._from_source(api_key)
        if not candidates:
            return 10002, None
        timestamp = headers.get("apex-timestamp", "")
        if not timestamp.isdigit():
            return 20006, None
        for credentials, account in candidates:
            if _signed_by(credentials, method, raw_path, timestamp, headers):
                return None, dict(account)
        return 20006, None

    def _from_source(self, api_key: str | None) -> list[tuple[ApexCredentials, dict[str, Any]]]:
        """Credential sets with this key offered by ``credential_source`` (see the class)."""
        if api_key is None or self._credential_source is None:
            return []
        found = [c for c in self._credential_source() if c.key.reveal() == api_key]
        if not found:
            return []
        with self._lock:
            account = self._source_accounts.get(api_key)
            if account is None:
                self._accounts_created += 1
                account = self._source_accounts[api_key] = _default_account(self._accounts_created)
        return [(credentials, account) for credentials in found]


def _signed_by(
    credentials: ApexCredentials,
    method: str,
    raw_path: str,
    timestamp: str,
    headers: Mapping[str, str],
) -> bool:
    """Whether the request's signature and passphrase are those of ``credentials``."""
    # Only GET routes exist, so DATA is empty and the path carries any query string.
    expected = _apex_signature(credentials.secret.reveal(), f"{timestamp}{method}{raw_path}")
    signature_ok = hmac.compare_digest(
        expected.encode(), headers.get("apex-signature", "").encode()
    )
    passphrase_ok = hmac.compare_digest(
        credentials.passphrase.reveal().encode(), headers.get("apex-passphrase", "").encode()
    )
    return signature_ok and passphrase_ok


_MSG: Mapping[int | None, str] = {
    10002: "apiKey is invalid",
    10003: "too many requests",
    20006: "signature error",
}
