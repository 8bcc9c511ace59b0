"""The fault suite's cluster: two real ``omni-secrets serve`` replicas on PostgreSQL behind a
:class:`~omni_secrets.testing.fault_proxy.ThreadedFaultProxy`, the GSM emulator publishing to
Google's Pub/Sub emulator (the replicas reach Pub/Sub through a second proxy), and one replica
whose wall clock runs 10 minutes ahead under Debian's ``faketime``.

Everything here is loopback only. Each replica is a process the suite can SIGTERM, SIGKILL,
SIGSTOP and start again; its output is kept for the failure message.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, pool, text

from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.leader import ROTATION_MONITOR_LOCK_KEY
from omni_secrets.api.auth import mint_hs256_token
from omni_secrets.api.paths import READYZ_PATH, STATUS_PATH
from tests.contract.conftest import ALL_SCOPES, HS256_SECRET
from tests.contract.serving import CLI
from tests.ports import free_port

SKEW = "+10m"
"""How far ahead the skewed replica's wall clock runs (``faketime -f``)."""
GRACE_SECONDS = 15.0
"""Contract section 18: SIGTERM ends a replica within 15 s whatever its dependencies do."""

RECOVERY: dict[str, float] = {}
"""Measured recovery times (seconds) by fault, printed at the end of the run (conftest)."""


def record(fault: str, seconds: float) -> None:
    RECOVERY[fault] = round(seconds, 2)


def token() -> str:
    return mint_hs256_token(
        secret=HS256_SECRET,
        scopes=ALL_SCOPES,
        subject="faults",
        audience="omni-secrets",
        now=datetime.now(UTC),
        ttl=timedelta(hours=2),
    )


def require_tool(name: str) -> str:
    """The path of a tool the suite needs; skip loudly without it (fail under CI=true)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install -y {name}; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(f"FAULT SUITE SKIPPED: {message}")
    return path


def libfaketime() -> str:
    """The path of Debian's multithreaded libfaketime (package ``faketime``/``libfaketime``)."""
    require_tool("faketime")
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        pytest.fail("faketime is installed but libfaketimeMT.so.1 was not found", pytrace=False)
    return found[0]


def poll(predicate: Callable[[], bool], *, within: float, what: str, every: float = 0.2) -> float:
    """Seconds until ``predicate`` holds; fails the test after ``within`` seconds."""
    began = time.monotonic()
    while True:
        with contextlib.suppress(httpx.TransportError):
            if predicate():
                return time.monotonic() - began
        if time.monotonic() - began > within:
            pytest.fail(f"{what}: not within {within} s")
        time.sleep(every)


@dataclass
class Answer:
    status: int
    seconds: float
    body: str
    request_id: str | None


class Replica:
    """One ``omni-secrets serve`` process (optionally under ``faketime``)."""

    def __init__(self, name: str, env: dict[str, str], *, skew: str | None = None) -> None:
        self.name = name
        self.env = dict(env)
        self.skew = skew
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None
        self._token = token()
        self.audited_200s: list[str] = []
        """Request ids of audited requests (status) this suite saw answered 200."""

    # -- process -----------------------------------------------------------------------------

    def start(self) -> None:
        env = dict(self.env)
        if self.skew is not None:
            # Debian's libfaketime preloaded into serve itself (what the `faketime` wrapper does,
            # minus the wrapper process: signals reach serve, not a parent that forwards none).
            env["LD_PRELOAD"] = libfaketime()
            env["FAKETIME"] = self.skew
            env["DONT_FAKE_MONOTONIC"] = "1"  # a skewed wall clock, as a broken NTP leaves it
        self.lines = []
        self.proc = subprocess.Popen(
            [CLI, "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.lines.append(raw.decode(errors="replace"))

    def wait_ready(self, within: float = 90.0) -> float:
        def ready() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited early:\n{self.tail()}")
            return httpx.get(f"{self.url}{READYZ_PATH}", timeout=2).status_code == 200

        return poll(ready, within=within, what=f"{self.name} ready")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds to exit). Fails the test past twice the grace."""
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=GRACE_SECONDS * 2)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} ignored SIGTERM for {GRACE_SECONDS * 2} s:\n{self.tail()}")
        return code, time.monotonic() - began

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def tail(self, lines: int = 40) -> str:
        return "".join(self.lines[-lines:])

    # -- HTTP --------------------------------------------------------------------------------

    def get(self, path: str, *, timeout: float = 10.0) -> Answer:
        began = time.monotonic()
        response = httpx.get(
            f"{self.url}{path}",
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=timeout,
        )
        answer = Answer(
            response.status_code,
            time.monotonic() - began,
            response.text,
            response.headers.get("x-request-id"),
        )
        if path == STATUS_PATH and answer.status == 200 and answer.request_id:
            self.audited_200s.append(answer.request_id)
        return answer

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.url}{path}",
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=10.0,
            **kwargs,
        )

    def status(self) -> dict[str, Any]:
        answer = self.get(STATUS_PATH)
        assert answer.status == 200, (answer.status, answer.body)
        body: dict[str, Any] = httpx.Response(200, text=answer.body).json()
        return body

    def readyz(self) -> Answer:
        """``/readyz`` must always answer, within 2 s (contract section 18)."""
        answer = self.get(READYZ_PATH, timeout=5.0)
        assert answer.seconds < 2.0, (self.name, answer)
        return answer

    def metric(self, name: str) -> float:
        body = httpx.get(f"{self.url}/metrics", timeout=10).text
        match = re.search(rf"^{name} (\S+)$", body, re.MULTILINE)
        assert match, name
        return float(match.group(1))


@dataclass
class Wrk:
    """One bounded ``wrk`` run against a loopback URL (its summary parsed)."""

    requests: int = 0
    non_2xx: int = 0
    output: str = ""
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    def run(self, url: str, bearer: str, seconds: int, connections: int = 8) -> None:
        assert url.startswith("http://127.0.0.1:"), "load goes to loopback only"
        proc = subprocess.run(
            [
                require_tool("wrk"),
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-H",
                f"Authorization: Bearer {bearer}",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=False,
        )
        self.output = proc.stdout + proc.stderr
        assert proc.returncode == 0, self.output
        done = re.search(r"(\d+) requests in", self.output)
        assert done, self.output
        self.requests = int(done.group(1))
        non = re.search(r"Non-2xx or 3xx responses: (\d+)", self.output)
        self.non_2xx = int(non.group(1)) if non else 0

    def start(self, url: str, bearer: str, seconds: int, connections: int = 8) -> None:
        self.thread = threading.Thread(
            target=self.run, args=(url, bearer, seconds, connections), daemon=True
        )
        self.thread.start()

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(timeout=120)


class Database:
    """Direct (unproxied) reads of the shared database, as the suite's own witness."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = create_engine(sync_url(url), poolclass=pool.NullPool)

    def scalar(self, sql: str, **params: Any) -> Any:
        with self._engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def status_views(self) -> set[str]:
        return {
            str(r[0])
            for r in self.rows(
                "SELECT correlation_id FROM omni_secret_access_events WHERE action = 'status_view'"
            )
        }

    def status_view_count(self) -> int:
        return int(
            self.scalar(
                "SELECT count(*) FROM omni_secret_access_events WHERE action = 'status_view'"
            )
        )

    def monitor_lease_held(self) -> bool:
        """Whether some session holds the rotation monitor's advisory lock in this database
        (other databases on the server, other test runs, hold the same key)."""
        key = ROTATION_MONITOR_LOCK_KEY
        return bool(
            self.scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = :hi AND objid = :lo AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
                hi=(key >> 32) & 0xFFFFFFFF,
                lo=key & 0xFFFFFFFF,
            )
        )

    def dispose(self) -> None:
        self._engine.dispose()


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    """Set process environment variables for the block (the official clients read them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
