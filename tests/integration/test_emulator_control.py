"""The emulator's control port refuses what could hang it or reach it from a web page (issue 15)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from omni_secrets.emulator import GsmEmulator, control


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[GsmEmulator]:
    monkeypatch.setattr(control, "READ_TIMEOUT_SECONDS", 0.5)
    emulator = GsmEmulator(control_port=0)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def exchange(emulator: GsmEmulator, raw: bytes, *, timeout: float = 3.0) -> bytes:
    """Send ``raw`` on a fresh connection; everything the server answers until it closes."""
    url = urlsplit(emulator.control_url or "")
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("length", [b"-5", b"abc", b"1e3", b" -0x10"])
def test_bad_content_length_is_400_and_closes(emulator: GsmEmulator, length: bytes) -> None:
    started = time.monotonic()
    answer = exchange(
        emulator,
        b"POST /reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + length + b"\r\n\r\n{}",
    )
    assert status_of(answer) == 400
    assert b"Content-Length" in answer
    assert time.monotonic() - started < 2.0


def test_stalled_body_is_dropped(emulator: GsmEmulator) -> None:
    """A client that promises 100 bytes and sends 2 does not hold a handler thread forever."""
    started = time.monotonic()
    answer = exchange(
        emulator, b"POST /reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{}"
    )
    assert time.monotonic() - started < 2.5
    assert b"ok" not in answer


@pytest.mark.parametrize("host", [b"evil.example", b"evil.example:8086", b"10.0.0.1", b""])
def test_non_loopback_host_is_403(emulator: GsmEmulator, host: bytes) -> None:
    header = b"Host: " + host + b"\r\n" if host else b""
    answer = exchange(
        emulator, b"POST /reset HTTP/1.1\r\n" + header + b"Content-Length: 2\r\n\r\n{}"
    )
    assert status_of(answer) == 403


@pytest.mark.parametrize("host", [b"127.0.0.1:9", b"localhost", b"LOCALHOST:1", b"[::1]:8086"])
def test_loopback_hosts_are_served(emulator: GsmEmulator, host: bytes) -> None:
    answer = exchange(
        emulator,
        b"GET /healthz HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n",
    )
    assert status_of(answer) == 200


def test_omit_checksum_route(emulator: GsmEmulator) -> None:
    answer = exchange(
        emulator,
        b"POST /omit-checksum HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b'Content-Length: 12\r\n\r\n{"count": 1}',
    )
    assert status_of(answer) == 200
    assert emulator.faults.take_checksum_omission() is True
    assert emulator.faults.take_checksum_omission() is False


def _post(emulator: GsmEmulator, path: str, body: bytes) -> int:
    return status_of(
        exchange(
            emulator,
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body,
        )
    )


def test_latency_route_delays_only_the_nth_call(emulator: GsmEmulator) -> None:
    """/latency with ``nth`` delays exactly that later call of the method, none before or after."""
    body = b'{"method": "UpdateSecret", "seconds": 7.5, "nth": 2}'
    assert _post(emulator, "/latency", body) == 200
    plan = emulator.faults
    assert plan.admit("GetSecret").latency == 0  # another method does not count
    assert [plan.admit("UpdateSecret").latency for _ in range(3)] == [0, 7.5, 0]


@pytest.mark.parametrize(
    "body",
    [
        b'{"method": "*", "seconds": 1, "nth": 1}',
        b'{"method": "UpdateSecret", "seconds": 1, "nth": 0}',
        b'{"method": "UpdateSecret", "seconds": 0, "nth": 1}',
        b'{"method": "UpdateSecret", "seconds": 1, "nth": true}',
        b'{"method": "NoSuchRpc", "seconds": 1, "nth": 1}',
    ],
)
def test_latency_route_refuses_a_bad_nth(emulator: GsmEmulator, body: bytes) -> None:
    """A wildcard, a non-positive ``nth`` or delay, or an unknown RPC is a 400, nothing set."""
    assert _post(emulator, "/latency", body) == 400
    assert emulator.faults.admit("UpdateSecret").latency == 0


def test_reset_clears_a_pending_nth_delay(emulator: GsmEmulator) -> None:
    assert _post(emulator, "/latency", b'{"method": "UpdateSecret", "seconds": 3, "nth": 1}') == 200
    assert _post(emulator, "/reset", b"{}") == 200
    assert emulator.faults.admit("UpdateSecret").latency == 0
