"""Running ``wrk`` (the C load generator) and reading its report.

A Python load generator on the same two cores saturates before the server does and reports
ratios that say nothing about the server (issue 19), so every HTTP figure comes from ``wrk``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

INSTALL_HINT = "wrk is not on PATH: install it with `apt-get install -y wrk` (Debian package wrk)"
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_LATENCY = re.compile(r"^\s*(50|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


class WrkMissing(RuntimeError):
    """``wrk`` is not installed."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles (ms) and every kind of failure."""

    requests: int
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors

    def describe(self) -> str:
        return (
            f"{self.requests_per_second:8,.0f} req/s  p50 {self.p50_ms:.3f} ms  "
            f"p99 {self.p99_ms:.3f} ms  ({self.requests:,} requests, {self.failures} failed)"
        )


def wrk_path() -> str:
    """Raises: WrkMissing: with the install hint."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing(INSTALL_HINT)
    return path


def pin(cpu: int | None) -> list[str]:
    """A ``taskset`` prefix that runs a command on ``cpu`` (nothing when pinning is unavailable)."""
    if cpu is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(cpu)]


def parse(report: str) -> WrkResult:
    """Read wrk's ``--latency`` report.

    Raises:
        ValueError: the report lacks the request count, the rate or a percentile.
    """
    latencies = {
        m.group(1): float(m.group(2)) * _UNIT_MS[m.group(3)] for m in _LATENCY.finditer(report)
    }
    requests, rps = _REQUESTS.search(report), _RPS.search(report)
    if requests is None or rps is None or set(latencies) != {"50", "90", "99"}:
        raise ValueError(f"unexpected wrk output:\n{report}")
    non_2xx = _NON_2XX.search(report)
    errors = _SOCKET_ERRORS.search(report)
    return WrkResult(
        requests=int(requests.group(1)),
        requests_per_second=float(rps.group(1)),
        p50_ms=latencies["50"],
        p90_ms=latencies["90"],
        p99_ms=latencies["99"],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def run(
    url: str,
    *,
    connections: int,
    seconds: float,
    headers: Mapping[str, str] | None = None,
    cpu: int | None = None,
) -> WrkResult:
    """``wrk -t1 -c<connections> -d<seconds>s --latency`` against ``url``, pinned to ``cpu``.

    Raises:
        WrkMissing: wrk is not installed.
        RuntimeError: wrk failed.
    """
    command: list[str] = [
        *pin(cpu),
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    done = _run(command)
    return parse(done)


def _run(command: Sequence[str]) -> str:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr.strip()[:300]}")
    return done.stdout
