"""The HTTP edge of the real ``omni-secrets serve`` process, over raw sockets (contract section 17).

With the production limits (``serve`` takes no option for them): a 10 MB and a 200 MB request
header are refused (431 or closed) without the process growing, a client that has not finished
its headers is disconnected after 10 s, and a path with a trailing slash is a 404 rather than a
redirect built from the ``Host`` header. ``tests/integration/test_http_edge.py`` covers the
protocol's cases one by one with shortened limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from omni_secrets.api.auth import Scope, mint_hs256_token
from omni_secrets.config import load_settings
from omni_secrets.emulator import GsmEmulator
from tests.contract.conftest import FAKE_VALUES, PROJECT, prepare_database
from tests.contract.serving import CLI
from tests.contract.test_auth_policy_serve import child_env
from tests.ports import free_port

HS256_SECRET = "fake-edge-hs256-secret-for-tests-only"
STATUS = "/ops/apex-omni/secrets/status"


class Serve:
    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.proc = proc

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", headers=headers, timeout=10)


@pytest.fixture
async def served(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> AsyncIterator[Serve]:
    emulator = GsmEmulator()
    emulator.start()
    emulator.seed(PROJECT, {k: [v] for k, v in FAKE_VALUES.items()})
    url = f"sqlite:///{tmp_path}/omni.db"
    values = {
        "OMNI_ENVIRONMENT": "test",
        "GCP_PROJECT_ID": PROJECT,
        "OMNI_GSM_ENDPOINT": emulator.address,
        "OMNI_DATABASE_URL": url,
        "OMNI_AUTH_HS256_SECRET": HS256_SECRET,
        "OMNI_AUTH_AUDIENCE": "omni-secrets",
        "OMNI_LOG_FORMAT": "json",
    }
    await prepare_database(url, load_settings(**values), seed=True)
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=child_env(values),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    serve = Serve(port, proc)
    try:
        for _ in range(300):
            assert proc.poll() is None, f"serve exited with {proc.returncode}"
            try:
                if serve.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("serve did not come up")
        yield serve
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, None, 30)
        emulator.stop()
        assert b"Traceback" not in err


def refused(sock: socket.socket, head: bytes, total: int) -> bytes:
    """Send ``head`` then up to ``total`` bytes of header value; what the server answered."""
    chunk = b"x" * (1024 * 1024)
    try:
        sock.sendall(head)
        sent = 0
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except ConnectionResetError:
        pass
    return answer


@pytest.mark.parametrize("megabytes", [10, 200])
async def test_huge_header_is_refused_without_growing_the_process(
    served: Serve, megabytes: int
) -> None:
    """Before: 10 MB answered 200, 200 MB grew the process by about 290 MB."""
    token = mint_hs256_token(
        secret=HS256_SECRET,
        scopes=[Scope.READ.value],
        subject="edge-test",
        audience="omni-secrets",
        now=datetime.now(UTC),
        ttl=timedelta(minutes=5),
    )
    rss_before = served.rss_kib()
    with served.connect() as sock:
        head = f"GET {STATUS} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nX-Pad: "
        answer = await asyncio.to_thread(refused, sock, head.encode(), megabytes * 1024 * 1024)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:60]
    assert served.rss_kib() - rss_before < 16 * 1024
    assert served.get("/healthz").status_code == 200


async def test_unfinished_headers_are_disconnected_after_10_seconds(served: Serve) -> None:
    """Connections that sent nothing, half a head, or a trickle are closed at 10 s; a complete
    request on another connection meanwhile is served."""

    def held_for(partial: bytes) -> float:
        with served.connect() as sock:
            started = time.monotonic()
            sock.sendall(partial)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1024) == b""
            return time.monotonic() - started

    waits = await asyncio.gather(
        asyncio.to_thread(held_for, b""),
        asyncio.to_thread(held_for, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: "),
    )
    for waited in waits:
        assert 9.5 <= waited < 13.0, waits
    assert served.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/healthz/", f"{STATUS}/", "/docs/"])
async def test_no_redirect_is_built_from_the_host_header(served: Serve, path: str) -> None:
    """Before: ``/healthz/`` answered 307 to ``http://<Host>/healthz``. Now a plain 404."""
    response = served.get(path, Host="evil.example")
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert "evil.example" not in response.text
