"""Fault injection and call accounting for the emulator, shared by every handler thread.

Faults are keyed by RPC name (``AccessSecretVersion``, ...) or ``*`` for every RPC. A
method-specific entry wins over ``*``. Every call is counted when it arrives, so calls that an
injected fault fails, and calls whose client gave up during injected latency, are counted too;
the status each call ended with is recorded when it finishes.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

import grpc

RPC_NAMES = (
    "CreateSecret",
    "GetSecret",
    "AddSecretVersion",
    "GetSecretVersion",
    "AccessSecretVersion",
    "ListSecretVersions",
    "EnableSecretVersion",
    "DisableSecretVersion",
    "DestroySecretVersion",
    "UpdateSecret",
    "TestIamPermissions",
)
ANY_METHOD = "*"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One served call: the RPC name and the status code name it ended with."""

    method: str
    code: str


@dataclass(frozen=True, slots=True)
class Admission:
    """What to do to a call that just arrived: wait ``latency`` seconds, then fail with ``fail``."""

    latency: float
    fail: grpc.StatusCode | None


def check_method(method: str) -> str:
    """Return ``method`` if it is an emulated RPC name or ``*``; raise ValueError otherwise."""
    if method != ANY_METHOD and method not in RPC_NAMES:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(RPC_NAMES)} or *")
    return method


def parse_code(code_name: str) -> grpc.StatusCode:
    """The non-OK ``grpc.StatusCode`` named ``code_name`` (``UNAVAILABLE``, ...).

    Raises:
        ValueError: no such code, or ``OK``.
    """
    code = grpc.StatusCode.__members__.get(code_name.upper())
    if code is None or code is grpc.StatusCode.OK:
        raise ValueError(f"unknown or OK status code {code_name!r}")
    return code


class FaultPlan:
    """The faults to inject and the calls seen so far (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency: dict[str, float] = {}
        # method -> [(the arrival count that is delayed, seconds)]
        self._nth_latency: dict[str, list[tuple[int, float]]] = {}
        self._failures: dict[str, list[tuple[grpc.StatusCode, int]]] = {}
        self._corrupt = 0
        self._omit_checksum = 0
        self._arrivals: Counter[str] = Counter()
        self._finished: list[CallRecord] = []

    def inject_latency(self, method: str, seconds: float) -> None:
        """Delay every later call of ``method`` (or ``*``) by ``seconds``; 0 removes the delay."""
        check_method(method)
        if seconds < 0:
            raise ValueError("latency must not be negative")
        with self._lock:
            if seconds:
                self._latency[method] = seconds
            else:
                self._latency.pop(method, None)

    def delay_nth(self, method: str, nth: int, seconds: float) -> None:
        """Delay only the ``nth`` call of ``method`` from now on (1 = the next one) by ``seconds``.

        For a crash between two steps: ``delay_nth("UpdateSecret", 2, 30)`` holds the second
        alias move of a commit while the test kills the caller. The delayed call then runs as
        sent (with the etag it carried), like a request GSM received before its client died.
        """
        if method == ANY_METHOD:
            raise ValueError("delay_nth needs an RPC name, not *")
        check_method(method)
        if nth < 1:
            raise ValueError("nth must be at least 1")
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        with self._lock:
            target = self._arrivals[method] + nth
            self._nth_latency.setdefault(method, []).append((target, seconds))

    def fail_next(self, method: str, code_name: str, count: int = 1) -> None:
        """Fail the next ``count`` calls of ``method`` (or ``*``) with ``code_name``.

        Successive requests queue up: ``fail_next(m, "UNAVAILABLE", 2)`` then
        ``fail_next(m, "INTERNAL", 1)`` fails three calls in that order.
        """
        check_method(method)
        code = parse_code(code_name)
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._failures.setdefault(method, []).append((code, count))

    def corrupt_checksum_next(self, count: int = 1) -> None:
        """Return a wrong ``data_crc32c`` in the next ``count`` AccessSecretVersion responses."""
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._corrupt += count

    def omit_checksum_next(self, count: int = 1) -> None:
        """Send no ``data_crc32c`` at all in the next ``count`` AccessSecretVersion responses."""
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._omit_checksum += count

    def take_checksum_omission(self) -> bool:
        """True (once per pending omission) when this access response must lack its checksum."""
        with self._lock:
            if self._omit_checksum <= 0:
                return False
            self._omit_checksum -= 1
            return True

    def clear_faults(self) -> None:
        """Remove every injected latency, failure and corruption (call records stay)."""
        with self._lock:
            self._latency.clear()
            self._nth_latency.clear()
            self._failures.clear()
            self._corrupt = 0
            self._omit_checksum = 0

    def reset_calls(self) -> None:
        """Forget every call seen so far."""
        with self._lock:
            self._arrivals.clear()
            self._finished.clear()

    def admit(self, method: str) -> Admission:
        """Count a call of ``method`` and consume the faults that apply to it."""
        with self._lock:
            self._arrivals[method] += 1
            latency = self._latency.get(method, self._latency.get(ANY_METHOD, 0.0))
            latency = max(latency, self._take_nth_latency(method, self._arrivals[method]))
            return Admission(latency=latency, fail=self._take_failure(method))

    def take_corruption(self) -> bool:
        """True (once per pending corruption) when this access response must be corrupted."""
        with self._lock:
            if self._corrupt <= 0:
                return False
            self._corrupt -= 1
            return True

    def record(self, method: str, code: str) -> None:
        """Note the status a call of ``method`` ended with."""
        with self._lock:
            self._finished.append(CallRecord(method, code))

    def finished(self) -> list[CallRecord]:
        """Every finished call so far with its status code name, in order of completion."""
        with self._lock:
            return list(self._finished)

    def call_counts(self) -> dict[str, int]:
        """Calls per RPC name, counted on arrival (failed and abandoned calls included)."""
        with self._lock:
            return dict(self._arrivals)

    def _take_nth_latency(self, method: str, arrival: int) -> float:
        pending = self._nth_latency.get(method)
        if not pending:
            return 0.0
        due = [seconds for target, seconds in pending if target == arrival]
        pending[:] = [(target, seconds) for target, seconds in pending if target > arrival]
        return max(due, default=0.0)

    def _take_failure(self, method: str) -> grpc.StatusCode | None:
        for key in (method, ANY_METHOD):
            queue = self._failures.get(key)
            if queue:
                code, remaining = queue[0]
                if remaining > 1:
                    queue[0] = (code, remaining - 1)
                else:
                    queue.pop(0)
                return code
        return None
