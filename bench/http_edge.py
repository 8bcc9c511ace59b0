"""The HTTP edge under ``wrk``: ``omni-secrets serve`` against bare FastAPI, in one run.

The stack is real and each part runs in its own process: a throwaway PostgreSQL database, the
GSM emulator (``omni-secrets emulator``), the local fake ApeX (``bench._fake_apex``), then
``omni-secrets serve`` with JSON logs, HS256 auth and the background audit writer, and
``uvicorn bench._bare_app`` (one ``{"hello": "world"}`` route, the floor) under the same uvicorn
defaults. On a machine with two or more CPUs the server under test is pinned to CPU 0 and wrk,
the emulator and the fake ApeX to CPU 1 (``taskset``), so the load generator does not steal the
server's core.

Measured: requests/s of ``/healthz``, ``/readyz`` and the status route (16 connections) against
the bare route (measured before and after, averaged); ``/metrics`` scrape latency (one
connection); ``/apex-omni/account`` latency against the bare app's ``/proxy``, the same signed
call through bare FastAPI and one ``httpx`` client (one connection each; the fake's own latency
is printed too); ``serve`` exec to ``/readyz`` 200; ``omni-secrets --help`` wall time; the
server's RSS after the runs. The status run also proves nothing was lost: one ``status_view``
audit row and one ``http.request`` log line per answered request, and no audit write failure.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench import wrk
from bench._fake_apex import FAKE_CREDENTIALS
from omni_secrets.adapters.apex import ACCOUNT_PATH, epoch_ms, signed_headers
from omni_secrets.api.auth import Scope, mint_hs256_token

SERVER_CPU, LOAD_CPU = 0, 1
CONNECTIONS = 16
PROJECT = "omni-bench"
AUDIENCE = "omni-secrets"
# Obviously fake: a benchmark-only token secret.
HS256_SECRET = "fake-bench-hs256-secret-not-for-anything-real"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True, slots=True)
class Paired:
    """An endpoint measured in rounds, each right after the bare floor (noise on a shared box)."""

    bare: tuple[wrk.WrkResult, ...]
    ours: tuple[wrk.WrkResult, ...]
    warmup: wrk.WrkResult
    bare_cpu_us: tuple[float, ...]
    """The bare server's CPU time (user + system) per answered request, per round."""
    ours_cpu_us: tuple[float, ...]

    @property
    def ratio(self) -> float:
        """The median of the per-round ratios of requests/s."""
        return statistics.median(
            o.requests_per_second / b.requests_per_second
            for b, o in zip(self.bare, self.ours, strict=True)
        )

    @property
    def cpu_ratio(self) -> float:
        """The median per-round ratio of CPU per request, bare over ours: what the ratio of
        requests/s would be if both servers had the CPU to themselves (steadier on a shared
        machine, where the floor is not always CPU-bound)."""
        return statistics.median(
            b / o for b, o in zip(self.bare_cpu_us, self.ours_cpu_us, strict=True)
        )

    @property
    def failures(self) -> int:
        return sum(r.failures for r in self.ours)

    @property
    def answered(self) -> int:
        """Every request the server answered, warm-up included."""
        return sum(r.requests - r.failures for r in (*self.ours, self.warmup))

    def median(self, which: str) -> wrk.WrkResult:
        runs = sorted(getattr(self, which), key=lambda r: r.requests_per_second)
        return runs[len(runs) // 2]


@dataclass(frozen=True, slots=True)
class EdgeResults:
    healthz: Paired
    readyz: Paired
    status: Paired
    metrics: wrk.WrkResult
    account: wrk.WrkResult
    bare_proxy: wrk.WrkResult
    fake_apex: wrk.WrkResult
    startup_seconds: tuple[float, ...]
    help_seconds: tuple[float, ...]
    interpreter_seconds: tuple[float, ...]
    rss_mb: float
    status_audit_rows: int
    audit_write_failures: float
    request_log_lines: int
    cpu_pinning: str

    @property
    def account_ratio(self) -> float:
        """``/apex-omni/account`` p50 over the bare proxy's p50 (the same call, nothing else)."""
        return self.account.p50_ms / self.bare_proxy.p50_ms


def _pinning() -> tuple[int | None, int | None, str]:
    if (os.cpu_count() or 1) >= 2 and wrk.pin(0):
        return (
            SERVER_CPU,
            LOAD_CPU,
            f"server on CPU {SERVER_CPU}; wrk, emulator and fake ApeX on CPU {LOAD_CPU} (taskset)",
        )
    return None, None, "not pinned (fewer than 2 CPUs or no taskset)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
    env["GRPC_VERBOSITY"] = "ERROR"
    return env


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_for(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> float:
    """Seconds until ``GET path`` answers 200 (polled every 5 ms)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with suppress(OSError):
            if _get(port, path)[0] == 200:
                return time.perf_counter() - started
        time.sleep(0.005)
    raise RuntimeError(f"{path} on port {port} did not answer 200 within {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _database() -> Iterator[str]:
    """A throwaway PostgreSQL database; yields its SQLAlchemy URL."""
    admin_url = os.environ.get("OMNI_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    name = f"omni_bench_{uuid.uuid4().hex[:12]}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _count_status_rows(database_url: str) -> int:
    plain = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        row = conn.execute(
            "SELECT count(*) FROM omni_secret_access_events WHERE action = 'status_view'"
        ).fetchone()
    return int(row[0]) if row else 0


def _metric(port: int, name: str) -> float:
    status, body = _get(port, "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@contextmanager
def _line_process(command: list[str], env: dict[str, str], prefix: str) -> Iterator[str]:
    """Start ``command``; yield the rest of its first stdout line starting with ``prefix``."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline().decode()
            if not line:
                raise RuntimeError(f"{command[-1]!r} exited before printing {prefix!r}")
            if line.startswith(prefix):
                yield line[len(prefix) :].strip()
                return
    finally:
        _stop(proc)


def _timed_runs(command: list[str], runs: int, env: dict[str, str]) -> tuple[float, ...]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return tuple(times)


def run(*, quick: bool = False) -> EdgeResults:
    """Run the whole edge benchmark.

    Raises:
        wrk.WrkMissing: wrk is not installed (with the install hint).
    """
    wrk.wrk_path()
    seconds = 2 if quick else 3
    starts = 1 if quick else 3
    rounds = 1 if quick else 3
    server_cpu, load_cpu, pinning = _pinning()
    env = _base_env()

    help_seconds = _timed_runs([_bin("omni-secrets"), "--help"], 3 if quick else 7, env)
    interpreter_seconds = _timed_runs([sys.executable, "-c", "pass"], 3 if quick else 7, env)

    with tempfile.TemporaryDirectory() as tmp, _database() as database_url:
        seed = Path(tmp) / "seed.json"
        seed.write_text(
            json.dumps(
                {
                    "projectId": PROJECT,
                    "secrets": {
                        "apex-omni-api-key": [FAKE_CREDENTIALS.key.reveal()],
                        "apex-omni-api-secret": [FAKE_CREDENTIALS.secret.reveal()],
                        "apex-omni-api-passphrase": [FAKE_CREDENTIALS.passphrase.reveal()],
                        "apex-omni-zk-seeds": ["fake-bench-zk-seeds"],
                        "apex-omni-zk-l2-key": ["fake-bench-zk-l2-key"],
                    },
                }
            )
        )
        emulator_cmd = [
            *wrk.pin(load_cpu),
            _bin("omni-secrets"),
            "emulator",
            "--port",
            "0",
            "--seed-file",
            str(seed),
        ]
        fake_cmd = [*wrk.pin(load_cpu), sys.executable, "-m", "bench._fake_apex"]
        with (
            _line_process(emulator_cmd, env, "grpc: ") as gsm_address,
            _line_process(fake_cmd, env, "url: ") as apex_url,
        ):
            serve_env = {
                **env,
                "OMNI_ENVIRONMENT": "development",
                "GCP_PROJECT_ID": PROJECT,
                "OMNI_GSM_ENDPOINT": gsm_address,
                "OMNI_DATABASE_URL": database_url,
                "OMNI_AUTH_HS256_SECRET": HS256_SECRET,
                "OMNI_AUTH_AUDIENCE": AUDIENCE,
                "OMNI_APEX_BASE_URL": apex_url,
                "OMNI_LOG_FORMAT": "json",
            }
            for step in (["db", "upgrade"], ["db", "seed"]):
                subprocess.run(
                    [_bin("omni-secrets"), *step],
                    env=serve_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    check=True,
                )
            return _measure(
                tmp=Path(tmp),
                env=env,
                serve_env=serve_env,
                database_url=database_url,
                apex_url=apex_url,
                server_cpu=server_cpu,
                load_cpu=load_cpu,
                pinning=pinning,
                seconds=seconds,
                starts=starts,
                rounds=rounds,
                help_seconds=help_seconds,
                interpreter_seconds=interpreter_seconds,
            )


def _measure(
    *,
    tmp: Path,
    env: dict[str, str],
    serve_env: dict[str, str],
    database_url: str,
    apex_url: str,
    server_cpu: int | None,
    load_cpu: int | None,
    pinning: str,
    seconds: float,
    starts: int,
    rounds: int,
    help_seconds: tuple[float, ...],
    interpreter_seconds: tuple[float, ...],
) -> EdgeResults:
    def load(port: int, path: str, connections: int = CONNECTIONS, **headers: str) -> wrk.WrkResult:
        url = f"http://127.0.0.1:{port}{path}"
        wrk.run(url, connections=connections, seconds=1, headers=headers, cpu=load_cpu)  # warm-up
        return wrk.run(url, connections=connections, seconds=seconds, headers=headers, cpu=load_cpu)

    bare_port = free_port()
    bare = subprocess.Popen(
        [
            *wrk.pin(server_cpu),
            _bin("uvicorn"),
            "bench._bare_app:app",
            "--port",
            str(bare_port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={**env, "BENCH_FAKE_APEX_URL": apex_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(bare_port, "/json", bare)
        load(bare_port, "/json")  # warm-up

        def paired(port: int, pid: int, path: str, **headers: str) -> Paired:
            url = f"http://127.0.0.1:{port}{path}"
            warmup = wrk.run(url, connections=CONNECTIONS, seconds=1, headers=headers, cpu=load_cpu)
            floor, ours, floor_cpu, ours_cpu = [], [], [], []
            for _ in range(rounds):
                before = _cpu_seconds(bare.pid)
                floor.append(
                    wrk.run(
                        f"http://127.0.0.1:{bare_port}/json",
                        connections=CONNECTIONS,
                        seconds=seconds,
                        cpu=load_cpu,
                    )
                )
                floor_cpu.append(_cpu_us_per_request(bare.pid, before, floor[-1]))
                before = _cpu_seconds(pid)
                ours.append(
                    wrk.run(
                        url, connections=CONNECTIONS, seconds=seconds, headers=headers, cpu=load_cpu
                    )
                )
                ours_cpu.append(_cpu_us_per_request(pid, before, ours[-1]))
            return Paired(tuple(floor), tuple(ours), warmup, tuple(floor_cpu), tuple(ours_cpu))

        token = mint_hs256_token(
            secret=HS256_SECRET,
            scopes=[Scope.READ.value, Scope.APEX_READ.value],
            subject="bench",
            audience=AUDIENCE,
            now=datetime.now(UTC),
            ttl=timedelta(hours=1),
        )
        auth = {"Authorization": f"Bearer {token}"}
        log_file = tmp / "serve.log"
        startup: list[float] = []
        for attempt in range(starts):
            port = free_port()
            with log_file.open("wb") as log_out:
                serve = subprocess.Popen(
                    [*wrk.pin(server_cpu), _bin("omni-secrets"), "serve", "--port", str(port)],
                    env=serve_env,
                    stdout=log_out,
                    stderr=subprocess.STDOUT,
                )
            try:
                startup.append(_wait_for(port, "/readyz", serve))
            finally:
                if attempt < starts - 1:
                    _stop(serve)
        try:
            healthz = paired(port, serve.pid, "/healthz")
            readyz = paired(port, serve.pid, "/readyz")
            rows_before = _count_status_rows(database_url)
            failures_before = _metric(port, "omni_audit_write_failures_total")
            lines_before = log_file.read_bytes().count(b'"http.request"')
            status = paired(port, serve.pid, "/ops/apex-omni/secrets/status", **auth)
            rows = _settled_rows(database_url, rows_before, status.answered)
            failures = _metric(port, "omni_audit_write_failures_total") - failures_before
            log_lines = log_file.read_bytes().count(b'"http.request"') - lines_before
            metrics = load(port, "/metrics", connections=1)
            account = load(port, "/apex-omni/account", connections=1, **auth)
            bare_proxy = load(bare_port, "/proxy", connections=1)
            rss_mb = _rss_mb(serve.pid)
        finally:
            _stop(serve)

        fake_port = int(apex_url.rsplit(":", 1)[1])
        signed = signed_headers(
            FAKE_CREDENTIALS, "GET", ACCOUNT_PATH, None, epoch_ms(datetime.now(UTC))
        )
        reply = _get(fake_port, ACCOUNT_PATH, signed)
        if reply[0] != 200 or b'"data"' not in reply[1]:  # the fake says "refused" with a 200
            raise RuntimeError("the fake ApeX refused the benchmark's signed call")
        fake_apex = load(fake_port, ACCOUNT_PATH, connections=1, **signed)
    finally:
        _stop(bare)
    return EdgeResults(
        healthz=healthz,
        readyz=readyz,
        status=status,
        metrics=metrics,
        account=account,
        bare_proxy=bare_proxy,
        fake_apex=fake_apex,
        startup_seconds=tuple(startup),
        help_seconds=help_seconds,
        interpreter_seconds=interpreter_seconds,
        rss_mb=rss_mb,
        status_audit_rows=rows,
        audit_write_failures=failures,
        request_log_lines=log_lines,
        cpu_pinning=pinning,
    )


def _settled_rows(database_url: str, before: int, expected: int, timeout: float = 120) -> int:
    """New ``status_view`` rows once the background writer has caught up.

    Returns as soon as ``expected`` rows are there, or when the count has not moved for 5 s
    (the writer is done, or stuck: either way what is missing is missing).
    """
    deadline = time.monotonic() + timeout
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = _count_status_rows(database_url) - before
        if count >= expected:
            return count
        if count != last:
            last, still_since = count, time.monotonic()
        elif time.monotonic() - still_since >= 5:
            return count
        time.sleep(0.5)
    return last


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_us_per_request(pid: int, before: float, result: wrk.WrkResult) -> float:
    time.sleep(0.5)  # the audit writer finishes the run's rows on the server's CPU
    return (_cpu_seconds(pid) - before) / max(1, result.requests) * 1e6


def _rss_mb(pid: int) -> float:
    # taskset execs the server, so the pid is the server's own.
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found")
