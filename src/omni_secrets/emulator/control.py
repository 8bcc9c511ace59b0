"""The emulator's control interface: fault injection and seeding from another process.

A small HTTP/1.1 JSON endpoint (stdlib ``http.server`` on its own thread, loopback only, no
auth — it is a test tool). Start it with ``GsmEmulator(control_port=N)`` or
``omni-secrets emulator --control-port N``; the command prints its URL. Requests and responses
are JSON objects; a bad request answers 400 ``{"error": "<reason>"}``, an unknown path 404.

Routes (POST bodies are JSON objects)::

    POST /faults   {"method": "AccessSecretVersion", "code": "UNAVAILABLE", "count": 2}
                   the next `count` (default 1) calls of `method` (an RPC name or "*")
                   fail with status `code`; successive requests queue up
    POST /latency  {"method": "*", "seconds": 0.5}
                   delay every later call of `method` (default "*"); 0 removes the delay
    POST /latency  {"method": "UpdateSecret", "seconds": 30, "nth": 2}
                   with `nth`: delay only the nth call of `method` from now (1 = the next);
                   the call then runs as sent (a crash between two steps; needs an RPC name)
    POST /corrupt  {"count": 1}
                   a wrong data_crc32c in the next `count` AccessSecretVersion responses
    POST /omit-checksum {"count": 1}
                   no data_crc32c at all in the next `count` AccessSecretVersion responses
    POST /reset    {}
                   clear every fault and the call counts (secrets and versions stay)
    POST /seed     the seed document of omni_secrets.emulator.seed -> {"added": N}
    GET  /calls    -> {"calls": {"AccessSecretVersion": 3, ...}} (calls received per RPC)
    GET  /healthz  -> {"grpc": "host:port"}

Example from a shell::

    curl -s -X POST http://127.0.0.1:8086/faults \\
         -d '{"method": "AccessSecretVersion", "code": "UNAVAILABLE", "count": 2}'

Successful POSTs answer 200 ``{"ok": true}`` unless stated otherwise.

Only loopback ``Host`` headers (``127.0.0.1``, ``localhost``, ``[::1]``, with any port) are
served, others answer 403: a web page the developer visits cannot reach the port through DNS
rebinding. A missing, malformed or negative ``Content-Length`` on a POST answers 400, and a
client that stops sending is dropped after :data:`READ_TIMEOUT_SECONDS`, so no handler thread
waits forever.

The control plane sees the emulator only through :class:`ControlledEmulator`, the few methods
its routes call: the server constructs the control plane and hands itself in, so the two
modules do not import each other.
"""

from __future__ import annotations

import functools
import json
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from omni_secrets.emulator.seed import Seed, SeedError, parse_seed
from omni_secrets.emulator.state import RpcFault

MAX_BODY_BYTES = 8 * 1024 * 1024
READ_TIMEOUT_SECONDS = 5.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ControlledEmulator(Protocol):
    """What the control routes need from the emulator they drive (``GsmEmulator`` has it all).

    The fault methods raise ``ValueError`` on a bad argument and ``apply_seed`` may raise
    :class:`~omni_secrets.emulator.state.RpcFault`; the control plane answers both 400.
    """

    def fail_next(self, method: str, code_name: str, count: int = 1) -> None: ...

    def inject_latency(self, method: str, seconds: float) -> None: ...

    def delay_nth(self, method: str, nth: int, seconds: float) -> None: ...

    def corrupt_checksum_next(self, count: int = 1) -> None: ...

    def omit_checksum_next(self, count: int = 1) -> None: ...

    def clear_faults(self) -> None: ...

    def reset_calls(self) -> None: ...

    def apply_seed(self, seed: Seed) -> int: ...

    @property
    def calls(self) -> dict[str, int]: ...

    @property
    def address(self) -> str: ...


def _host_name(header: str | None) -> str | None:
    """The host part of a ``Host`` header (``[::1]:8086`` -> ``::1``), None when malformed."""
    if not header:
        return None
    text = header.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else None
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else (text if ":" not in text else None)


class _BadRequest(Exception):
    """Raised when a control request is malformed (answered 400)."""


class _ThreadingHTTPServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _field(
    body: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    value = body.get(key, default)
    # bool is an int subclass: {"count": true} is not a count.
    if value is None or isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _BadRequest(f"{key!r} must be a {names}")
    return value


class ControlServer:
    """Serves the control interface of one emulator on a background thread.

    Args:
        emulator: the emulator to control.
        host: loopback interface.
        port: TCP port; 0 picks a free one.
    """

    def __init__(self, emulator: ControlledEmulator, host: str, port: int) -> None:
        self._emulator = emulator
        server_class = _ThreadingHTTPServer6 if ":" in host else ThreadingHTTPServer
        self._routes = self._make_routes()
        try:
            self._httpd = server_class((host, port), self._handler_class())
        except OSError as exc:
            shown = f"[{host}]" if ":" in host else host
            reason = exc.strerror or str(exc)
            raise OSError(f"cannot listen on {shown}:{port} (control): {reason}") from None
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            # A short poll keeps stop() quick; the default 0.5 s would slow every test teardown.
            target=functools.partial(self._httpd.serve_forever, poll_interval=0.05),
            name="gsm-emulator-control",
            daemon=True,
        )
        bound_port = self._httpd.server_address[1]
        self.url = f"http://[{host}]:{bound_port}" if ":" in host else f"http://{host}:{bound_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _make_routes(self) -> dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]]:
        emulator = self._emulator

        def faults(body: dict[str, Any]) -> dict[str, Any]:
            emulator.fail_next(
                _field(body, "method", str),
                _field(body, "code", str),
                _field(body, "count", int, 1),
            )
            return {"ok": True}

        def latency(body: dict[str, Any]) -> dict[str, Any]:
            seconds = _field(body, "seconds", (int, float))
            if "nth" in body:
                emulator.delay_nth(
                    _field(body, "method", str), _field(body, "nth", int), float(seconds)
                )
                return {"ok": True}
            emulator.inject_latency(_field(body, "method", str, "*"), float(seconds))
            return {"ok": True}

        def corrupt(body: dict[str, Any]) -> dict[str, Any]:
            emulator.corrupt_checksum_next(_field(body, "count", int, 1))
            return {"ok": True}

        def omit_checksum(body: dict[str, Any]) -> dict[str, Any]:
            emulator.omit_checksum_next(_field(body, "count", int, 1))
            return {"ok": True}

        def reset(_body: dict[str, Any]) -> dict[str, Any]:
            emulator.clear_faults()
            emulator.reset_calls()
            return {"ok": True}

        def seed(body: dict[str, Any]) -> dict[str, Any]:
            return {"added": emulator.apply_seed(parse_seed(body))}

        return {
            ("POST", "/faults"): faults,
            ("POST", "/latency"): latency,
            ("POST", "/corrupt"): corrupt,
            ("POST", "/omit-checksum"): omit_checksum,
            ("POST", "/reset"): reset,
            ("POST", "/seed"): seed,
            ("GET", "/calls"): lambda _: {"calls": emulator.calls},
            ("GET", "/healthz"): lambda _: {"grpc": emulator.address},
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        control = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = READ_TIMEOUT_SECONDS  # socket timeout: a stalled client is dropped

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002
                # Keep the emulator's stdout to the addresses it prints; requests are not news.
                return

            def _dispatch(self, verb: str) -> None:
                if _host_name(self.headers.get("Host")) not in LOOPBACK_HOSTS:
                    self.close_connection = True
                    self._reply(HTTPStatus.FORBIDDEN, {"error": "Host must be a loopback name"})
                    return
                route = control._routes.get((verb, self.path.split("?", 1)[0]))
                if route is None:
                    self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {verb} {self.path}"})
                    return
                try:
                    result = route(self._body() if verb == "POST" else {})
                except (_BadRequest, SeedError, ValueError) as exc:
                    # The unread rest of a refused body must not be parsed as the next request.
                    self.close_connection = True
                    self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                    return
                except RpcFault as fault:
                    self._reply(HTTPStatus.BAD_REQUEST, {"error": fault.message})
                    return
                self._reply(HTTPStatus.OK, result)

            def _body(self) -> dict[str, Any]:
                declared = (self.headers.get("Content-Length") or "0").strip()
                if not (declared.isascii() and declared.isdigit()):
                    raise _BadRequest("Content-Length must be a non-negative integer")
                length = int(declared)
                if length > MAX_BODY_BYTES:
                    raise _BadRequest("body too large")
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise _BadRequest("body is not valid JSON") from None
                if not isinstance(body, dict):
                    raise _BadRequest("body must be a JSON object")
                return body

            def _reply(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
