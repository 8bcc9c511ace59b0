"""Reusable fakes for tests, ``dev`` and the benchmark; production code never imports this module.

Each section holds the fakes of one outside system. Fakes implement the real port or speak the
real wire protocol and keep state that tests assert on; nothing here runs at import time.

Sections:

- loopback HTTP server: a threaded stdlib server on ``127.0.0.1:<free port>`` shared by the HTTP
  fakes below (real sockets, so the real httpx clients are exercised end to end).
- ApeX fakes: :class:`FakeApexServer`, an ApeX Omni REST server that checks signatures.
- Alert fakes: :class:`FakePagerDutyServer` (an Events API v2 receiver) and
  :class:`RecordingAlertSink` (an in-memory ``AlertSink``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from omni_secrets.domain.clock import Clock, SystemClock
from omni_secrets.domain.errors import AlertDeliveryFailed
from omni_secrets.domain.exchange import ApexCredentials
from omni_secrets.observability.alerts import AlertEvent

# --- loopback HTTP server (shared by the HTTP fakes) -------------------------------------------


@dataclass(frozen=True, slots=True)
class _HttpReply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    disconnect: bool = False


_App = Callable[[str, str, Mapping[str, str], bytes], _HttpReply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Do not join handler threads on close: one may be parked in a latency/hold wait.
    block_on_close = False
    app: _App

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) or a server stopped mid-answer is normal in tests;
        # anything else is a bug in a fake and must be loud.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Status line, headers and body leave in one segment: split writes meet the client's delayed
    # ACK and cost ~40 ms per request (and skew the self-test's midpoint estimate).
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.app(self.command, self.path, headers, body)
        if reply.disconnect:
            # No status line at all: the client sees the connection drop.
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: tests assert on recorded requests, not on stderr noise.
        return


class _LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 with an OS-assigned port, run in a daemon thread."""

    def __init__(self, app: _App) -> None:
        self._app = app
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        #: Set on stop; handlers that wait (latency, hold) wait on it so stop never hangs.
        self.stopping = threading.Event()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        self.stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.app = self._app
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self.stopping.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()


def _json_reply(status: int, payload: Any) -> _HttpReply:
    return _HttpReply(status, json.dumps(payload).encode())


# --- ApeX fakes --------------------------------------------------------------------------------


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
    """

    def __init__(
        self,
        accepted: Iterable[ApexCredentials] = (),
        *,
        clock: Clock | None = None,
        skew_ms: int = 0,
        error_http_status: int = 200,
    ) -> None:
        self._lock = threading.Lock()
        self._server = _LoopbackServer(self._handle)
        self._clock: Clock = clock or SystemClock()
        self._skew_ms = skew_ms
        self._error_http_status = error_http_status
        self._accepted: dict[str, tuple[ApexCredentials, dict[str, Any]]] = {}
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
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> _HttpReply:
        with self._lock:
            latency = self._latency_seconds
        if latency > 0 and self._server.stopping.wait(latency):
            return _HttpReply(0, disconnect=True)
        path_only = urlsplit(raw_path).path
        failure = self._take_failure(path_only)
        api_key = headers.get("apex-api-key")
        authenticated = False
        code: int | None = None
        if failure is not None:
            reply, code = self._failure_reply(failure)
        elif method == "GET" and path_only == "/api/v3/time":
            reply = _json_reply(200, {"data": {"time": self.server_time_ms()}})
        elif path_only == "/api/v3/account" and method == "GET":
            code, account = self._authenticate(method, raw_path, headers, body)
            authenticated = code is None
            if account is not None:
                reply = _json_reply(200, {"data": account})
            else:
                reply = _json_reply(self._error_http_status, {"code": code, "msg": _MSG[code]})
        else:
            reply = _json_reply(404, {"msg": "not found"})
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
    def _failure_reply(mode: FakeApexFailure) -> tuple[_HttpReply, int | None]:
        if mode is FakeApexFailure.HTTP_500:
            return _HttpReply(500, b"internal server error", "text/plain"), None
        if mode is FakeApexFailure.HTTP_403:
            return _HttpReply(403, b"<html>403 Forbidden</html>", "text/html"), None
        if mode is FakeApexFailure.GARBAGE:
            return _HttpReply(200, b"<html>not json{", "text/html"), None
        if mode is FakeApexFailure.TOO_MANY_REQUESTS:
            return _json_reply(200, {"code": 10003, "msg": _MSG[10003]}), 10003
        return _HttpReply(0, disconnect=True), None

    def _authenticate(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int | None, dict[str, Any] | None]:
        """(None, account) when the request is signed by accepted credentials, else (code, None)."""
        api_key = headers.get("apex-api-key")
        with self._lock:
            entry = self._accepted.get(api_key) if api_key is not None else None
        if entry is None:
            return 10002, None
        credentials, account = entry
        timestamp = headers.get("apex-timestamp", "")
        signature = headers.get("apex-signature", "")
        if not timestamp.isdigit():
            return 20006, None
        # Only GET routes exist, so DATA is empty and the path carries any query string.
        expected = _apex_signature(credentials.secret.reveal(), f"{timestamp}{method}{raw_path}")
        passphrase = headers.get("apex-passphrase", "")
        signature_ok = hmac.compare_digest(expected.encode(), signature.encode())
        passphrase_ok = hmac.compare_digest(
            credentials.passphrase.reveal().encode(), passphrase.encode()
        )
        if not (signature_ok and passphrase_ok):
            return 20006, None
        return None, dict(account)


_MSG: Mapping[int | None, str] = {
    10002: "apiKey is invalid",
    10003: "too many requests",
    20006: "signature error",
}


# --- Alert fakes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PagerDutyRequestRecord:
    """One request :class:`FakePagerDutyServer` received.

    Attributes:
        method: the HTTP method.
        path: the request path.
        content_type: the ``Content-Type`` header.
        body: the parsed JSON body, None when it was not JSON.
        status: the status answered (or about to be, while held).
    """

    method: str
    path: str
    content_type: str | None
    body: Any
    status: int


_PD_REQUIRED_TRIGGER_FIELDS = ("summary", "source", "severity")
_PD_SEVERITIES = ("critical", "error", "warning", "info")


def _pagerduty_errors(body: Any) -> list[str]:
    """Validation PagerDuty applies before answering 202 (a subset, enough to keep us honest)."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    errors = [
        f"'{name}' is missing" for name in ("routing_key", "event_action") if not body.get(name)
    ]
    action = body.get("event_action")
    if action not in (None, "trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    if action in ("acknowledge", "resolve") and not body.get("dedup_key"):
        errors.append("'dedup_key' is missing")
    if len(str(body.get("dedup_key") or "")) > 255:
        errors.append("'dedup_key' is too long")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing"]
        errors += [
            f"'payload.{name}' is missing"
            for name in _PD_REQUIRED_TRIGGER_FIELDS
            if not payload.get(name)
        ]
        if payload.get("severity") not in _PD_SEVERITIES:
            errors.append("'payload.severity' is invalid")
        if len(str(payload.get("summary") or "")) > 1024:
            errors.append("'payload.summary' is too long")
    return errors


class FakePagerDutyServer:
    """A PagerDuty Events API v2 receiver on ``127.0.0.1`` (``POST /v2/enqueue``).

    Validates events the way PagerDuty does for the required fields (400 ``invalid event`` when
    one is missing), answers 202 otherwise, and records every request. Tests can script the next
    statuses (:meth:`respond_with`, e.g. ``500, 500`` then the default 202), make requests hang
    until released (:meth:`hold`/:meth:`release`), or drop connections (status 0 in the script).

    Threaded, usable from async tests; use as a context manager or :meth:`start`/:meth:`stop`.
    """

    PATH = "/v2/enqueue"

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._server = _LoopbackServer(self._handle)
        self._script: list[int] = []
        self._released = threading.Event()
        self._released.set()
        self._requests: list[PagerDutyRequestRecord] = []

    @property
    def events_url(self) -> str:
        """The URL for ``OMNI_PAGERDUTY_EVENTS_URL``."""
        return self._server.base_url + self.PATH

    def start(self) -> Self:
        """Start serving; returns self."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving; held requests are released (their clients see the connection drop)."""
        self._released.set()
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

    def respond_with(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (0 drops the connection), then 202."""
        with self._lock:
            self._script.extend(statuses)

    def hold(self) -> None:
        """Park every request after it is recorded and before it is answered, until released."""
        self._released.clear()

    def release(self) -> None:
        """Answer the parked requests and stop parking."""
        self._released.set()

    @property
    def requests(self) -> list[PagerDutyRequestRecord]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The bodies of the requests answered 202, oldest first."""
        return [r.body for r in self.requests if r.status == 202]

    def wait_for_requests(self, count: int, within_seconds: float = 5.0) -> bool:
        """Block until ``count`` requests were received; False on timeout.

        From async code call it through ``asyncio.to_thread`` so the event loop keeps running.
        """
        with self._lock:
            return self._lock.wait_for(lambda: len(self._requests) >= count, within_seconds)

    async def wait_for_requests_async(self, count: int, within_seconds: float = 5.0) -> bool:
        """:meth:`wait_for_requests` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for_requests, count, within_seconds)

    def _handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> _HttpReply:
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        path = urlsplit(raw_path).path
        errors: list[str] = []
        with self._lock:
            if method != "POST" or path != self.PATH:
                status = 404
            else:
                errors = _pagerduty_errors(parsed)
                status = self._script.pop(0) if self._script else (400 if errors else 202)
            self._requests.append(
                PagerDutyRequestRecord(method, path, headers.get("content-type"), parsed, status)
            )
            self._lock.notify_all()
        # Wait outside the lock so other requests and observers are not blocked.
        while not self._released.wait(0.05):
            if self._server.stopping.is_set():
                return _HttpReply(0, disconnect=True)
        if status == 0:
            return _HttpReply(0, disconnect=True)
        if status == 202:
            dedup = parsed.get("dedup_key") if isinstance(parsed, dict) else None
            return _json_reply(
                202, {"status": "success", "message": "Event processed", "dedup_key": dedup}
            )
        if status == 400:
            return _json_reply(
                400,
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
            )
        return _json_reply(status, {"status": "error", "message": f"HTTP {status}"})


class RecordingAlertSink:
    """An in-memory ``AlertSink``: records events, can fail or park deliveries on demand.

    Attributes:
        delivered: events accepted, oldest first.
        attempted: every event handed over, including failed ones.
    """

    def __init__(self) -> None:
        self.delivered: list[AlertEvent] = []
        self.attempted: list[AlertEvent] = []
        self._failures_left = 0
        self._gate = asyncio.Event()
        self._gate.set()

    def fail_next(self, count: int = 1) -> None:
        """Raise ``AlertDeliveryFailed`` for the next ``count`` deliveries."""
        self._failures_left += count

    def hold(self) -> None:
        """Park deliveries until :meth:`release` (to fill the dispatcher's queue in tests)."""
        self._gate.clear()

    def release(self) -> None:
        """Let parked deliveries finish."""
        self._gate.set()

    async def deliver(self, event: AlertEvent) -> None:
        self.attempted.append(event)
        await self._gate.wait()
        if self._failures_left > 0:
            self._failures_left -= 1
            raise AlertDeliveryFailed("fake sink failure", details={"attempts": 1})
        self.delivered.append(event)
