"""Status endpoint throughput against a bare FastAPI JSON endpoint under the same server.

Both run as separate uvicorn processes (``omni-secrets dev`` with its embedded emulator and SQLite
for the status endpoint, audit writes and request logging included; ``uvicorn bench._bare_app``
for the baseline) and are driven from this process by the same httpx load loop, one after the
other. Target: status reaches at least half the bare endpoint's requests per second.

The load generator shares the machine's two cores with the server, so absolute numbers are low;
the ratio is what this measures.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CONCURRENCY = 16


@dataclass(frozen=True)
class Throughput:
    status_rps: float
    bare_rps: float
    requests: int
    failures: int

    @property
    def ratio(self) -> float:
        return self.status_rps / self.bare_rps


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("server did not come up")


async def _load(url: str, headers: dict[str, str], total: int) -> tuple[float, int]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                queue.get_nowait()
                response = await client.get(url)
                failures += response.status_code != 200

        for _ in range(50):  # warm-up
            await client.get(url)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return total / elapsed, failures


def run(*, quick: bool = False) -> Throughput:
    total = 600 if quick else 3000
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
    env["OMNI_LOG_FORMAT"] = "json"
    with tempfile.TemporaryDirectory() as data_dir:
        status_port, bare_port = _free_port(), _free_port()
        dev = subprocess.Popen(
            [
                str(bin_dir / "omni-secrets"),
                "dev",
                "--port",
                str(status_port),
                "--data-dir",
                data_dir,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        bare = subprocess.Popen(
            [
                str(bin_dir / "uvicorn"),
                "bench._bare_app:app",
                "--port",
                str(bare_port),
                "--no-access-log",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_up(f"http://127.0.0.1:{status_port}/healthz", dev)
            _wait_until_up(f"http://127.0.0.1:{bare_port}/json", bare)
            assert dev.stdout is not None
            banner = b""
            while b"omni-secrets:read" not in banner:
                banner += dev.stdout.readline()
            token = re.search(rb"omni-secrets:read\s+(\S+)", banner)
            assert token is not None
            # Drain the dev server's log so a full pipe never blocks it.
            drain = subprocess.Popen(["cat"], stdin=dev.stdout, stdout=subprocess.DEVNULL)
            status_rps, failures = asyncio.run(
                _load(
                    f"http://127.0.0.1:{status_port}/ops/apex-omni/secrets/status",
                    {"Authorization": f"Bearer {token.group(1).decode()}"},
                    total,
                )
            )
            bare_rps, bare_failures = asyncio.run(
                _load(f"http://127.0.0.1:{bare_port}/json", {}, total)
            )
            drain.kill()
        finally:
            for proc in (dev, bare):
                proc.terminate()
                proc.wait(timeout=20)
    return Throughput(status_rps, bare_rps, total, failures + bare_failures)
