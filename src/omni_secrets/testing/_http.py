"""A threaded loopback HTTP server shared by the HTTP fakes (real sockets, real clients)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    disconnect: bool = False


_App = Callable[[str, str, Mapping[str, str], bytes], HttpReply]


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

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002
        # Quiet: tests assert on recorded requests, not on stderr noise.
        return


class LoopbackServer:
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


def json_reply(status: int, payload: Any) -> HttpReply:
    return HttpReply(status, json.dumps(payload).encode())
