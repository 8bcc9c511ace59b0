"""The HTTP edge's limits over raw sockets against uvicorn with ``EdgeHttpProtocol`` (section 17).

The server runs in a thread with a tiny ASGI app that counts its calls, so each test can show
that a refused request never reached a handler. The header deadline and the connection bound are
shortened here (``EdgeLimits``) to keep the tests fast; ``test_http_edge_serve`` checks the real
``serve`` process with the production defaults.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
import uvicorn

from omni_secrets.api.http_edge import (
    HEADER_TIMEOUT_SECONDS,
    MAX_CONNECTIONS,
    MAX_HEADER_BYTES,
    EdgeLimits,
    uvicorn_options,
)
from tests.ports import free_port


class CountingApp:
    """Answers 200 ``ok`` to everything (reading the body first) and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def edge_server(limits: EdgeLimits) -> Iterator[tuple[int, CountingApp]]:
    app = CountingApp()
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        **uvicorn_options(limits),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield port, app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def head(path: str = "/", *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: test", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def send_all_until_refused(sock: socket.socket, data: bytes) -> None:
    """Send ``data``; the server may close (and reset) before it has all been sent."""
    with suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def read_response(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (b"" if it reset it)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def exchange(port: int, request: bytes) -> bytes:
    with connect(port) as sock:
        send_all_until_refused(sock, request)
        return read_one(sock)


def read_one(sock: socket.socket) -> bytes:
    """One response: its head, and a body of its content-length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head_part, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head_part.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head_part + b"\r\n\r\n" + body


FAST = EdgeLimits(header_timeout_seconds=0.5, max_connections=4)


@pytest.fixture(scope="module")
def fast_server() -> Iterator[tuple[int, CountingApp]]:
    with edge_server(FAST) as served:
        yield served


def test_production_defaults() -> None:
    """What ``serve`` gets: 64 KiB, 10 s, 512 connections (the contract's figures)."""
    assert MAX_HEADER_BYTES == 64 * 1024
    assert HEADER_TIMEOUT_SECONDS == 10.0
    assert MAX_CONNECTIONS == 512
    assert EdgeLimits() == EdgeLimits(64 * 1024, 10.0, 512)
    options = uvicorn_options()
    assert options["http"].limits == EdgeLimits()


class TestHeaderCap:
    def test_a_head_just_under_the_cap_is_served(
        self, fast_server: tuple[int, CountingApp]
    ) -> None:
        port, app = fast_server
        before = app.calls
        request = head("/", "X-Pad: ")
        pad = MAX_HEADER_BYTES - len(request)
        response = exchange(port, head("/", "X-Pad: " + "a" * pad))
        assert len(head("/", "X-Pad: " + "a" * pad)) == MAX_HEADER_BYTES
        assert status_of(response) == 200
        assert app.calls == before + 1

    @pytest.mark.parametrize(
        "request_bytes",
        [
            pytest.param(head("/", "X-Pad: " + "a" * MAX_HEADER_BYTES), id="one-header-over"),
            pytest.param(
                head("/", *(f"X-Pad-{i}: {'b' * 1000}" for i in range(70))), id="many-headers"
            ),
            pytest.param(head("/" + "u" * (MAX_HEADER_BYTES + 10)), id="long-url"),
            pytest.param(
                b"GET / HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"c" * (10 * 1024 * 1024),
                id="10-MB-never-ending",
            ),
        ],
    )
    def test_over_the_cap_is_431_before_any_handler(
        self, fast_server: tuple[int, CountingApp], request_bytes: bytes
    ) -> None:
        port, app = fast_server
        before = app.calls
        with connect(port) as sock:
            send_all_until_refused(sock, request_bytes)
            response = read_response(sock)
        # 431 then close; a client still sending may instead see the connection reset.
        assert response == b"" or status_of(response) == 431, response[:80]
        assert response == b"" or b"connection: close" in response
        assert app.calls == before

    def test_in_small_pieces_is_431_too(self, fast_server: tuple[int, CountingApp]) -> None:
        """Counted as the bytes arrive: 100 sends of 1 KiB cross the cap, and get 431."""
        port, app = fast_server
        before = app.calls
        with connect(port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nX-Pad: ")
            for _ in range(100):
                try:
                    sock.sendall(b"d" * 1024)
                except (BrokenPipeError, ConnectionResetError):
                    break
            response = read_response(sock)
        assert response == b"" or status_of(response) == 431
        assert app.calls == before

    def test_a_body_in_the_same_packet_does_not_count(
        self, fast_server: tuple[int, CountingApp]
    ) -> None:
        """A small head with a 60 KiB body sent in one write (over 64 KiB together) is 200."""
        port, _app = fast_server
        body = b"e" * (60 * 1024)
        request = head("/", f"Content-Length: {len(body)}", "X-Pad: " + "f" * 8000) + body
        assert len(request) > MAX_HEADER_BYTES
        assert status_of(exchange(port, request)) == 200

    def test_a_pipelined_request_over_the_cap_never_reaches_the_app(
        self, fast_server: tuple[int, CountingApp]
    ) -> None:
        """Behind a request with a body, in the same write: the first is answered, then the
        connection is closed; the second (its head over the cap) never reaches the app."""
        port, app = fast_server
        before = app.calls
        first = head("/", "Content-Length: 5") + b"hello"
        second = head("/", "X-Pad: " + "g" * (MAX_HEADER_BYTES + 100))
        with connect(port) as sock:
            send_all_until_refused(sock, first + second)
            answered = read_response(sock)
        assert answered.startswith(b"HTTP/1.1 200 ")
        assert answered.count(b"HTTP/1.1 ") == 1
        assert app.calls == before + 1

    def test_a_pipelined_request_after_an_answered_one_is_431(
        self, fast_server: tuple[int, CountingApp]
    ) -> None:
        """Once the first is answered, an oversized second head on the connection is 431."""
        port, app = fast_server
        with connect(port) as sock:
            sock.sendall(head("/"))
            assert status_of(read_one(sock)) == 200
            before = app.calls
            send_all_until_refused(sock, head("/", "X-Pad: " + "g" * (MAX_HEADER_BYTES + 100)))
            response = read_response(sock)
        assert response == b"" or status_of(response) == 431
        assert app.calls == before

    def test_the_server_still_serves_afterwards(self, fast_server: tuple[int, CountingApp]) -> None:
        port, _ = fast_server
        assert status_of(exchange(port, head("/"))) == 200


class TestHeaderDeadline:
    @pytest.mark.parametrize(
        "partial",
        [
            pytest.param(b"", id="nothing-sent"),
            pytest.param(b"GET / HTTP/1.1\r\nHost: te", id="part-of-a-head"),
        ],
    )
    def test_an_unfinished_head_is_disconnected(
        self, fast_server: tuple[int, CountingApp], partial: bytes
    ) -> None:
        port, app = fast_server
        before = app.calls
        with connect(port) as sock:
            started = time.monotonic()
            sock.sendall(partial)
            assert read_response(sock) == b""
            waited = time.monotonic() - started
        assert 0.4 <= waited < 3.0
        assert app.calls == before

    def test_a_trickle_is_disconnected_at_the_deadline(
        self, fast_server: tuple[int, CountingApp]
    ) -> None:
        """One byte every 50 ms keeps a connection busy but never finishes: closed at ~0.5 s
        (the deadline counts from the start, not from the last byte)."""
        port, _ = fast_server
        with connect(port) as sock:
            started = time.monotonic()
            sock.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
            closed = False
            while time.monotonic() - started < 3:
                try:
                    sock.sendall(b"h")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                sock.settimeout(0.05)
                try:
                    if sock.recv(1) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    closed = True
                    break
            waited = time.monotonic() - started
        assert closed
        assert 0.4 <= waited < 2.0

    def test_a_head_sent_in_pieces_within_the_deadline_is_served(
        self, fast_server: tuple[int, CountingApp]
    ) -> None:
        port, _ = fast_server
        request = head("/")
        with connect(port) as sock:
            for piece in (request[:10], request[10:20], request[20:]):
                sock.sendall(piece)
                time.sleep(0.1)
            assert status_of(read_one(sock)) == 200

    def test_a_slow_second_request_on_a_kept_alive_connection(
        self, fast_server: tuple[int, CountingApp]
    ) -> None:
        """The deadline applies to every request's head, not only the first."""
        port, _ = fast_server
        with connect(port) as sock:
            sock.sendall(head("/"))
            assert status_of(read_one(sock)) == 200
            sock.sendall(b"GET / HTTP/1.1\r\nHo")
            started = time.monotonic()
            assert read_response(sock) == b""
            assert time.monotonic() - started < 3.0


class TestConnectionBound:
    def test_connections_beyond_the_bound_get_503_and_are_closed(self) -> None:
        limits = EdgeLimits(header_timeout_seconds=30, max_connections=4)
        with edge_server(limits) as (port, app):
            held = [connect(port) for _ in range(4)]
            try:
                time.sleep(0.2)
                with connect(port) as extra:
                    refused = read_response(extra)
                assert status_of(refused) == 503
                assert app.calls == 0
                held.pop().close()
                time.sleep(0.2)
                assert status_of(exchange(port, head("/"))) == 200
            finally:
                for sock in held:
                    sock.close()
