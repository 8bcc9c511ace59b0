"""``omni-secrets doctor``'s vocabulary: a check's result, the report, and the bound on a check.

Each check answers ok, warn or fail with a detail and, when not ok, the fix; the report is ok
when nothing failed (warnings do not fail it). :func:`bounded` runs one check under a deadline
so that a dead endpoint yields a fail, never a hang. The probes themselves (database, GSM,
Pub/Sub, JWKS, key files) are wired in ``bootstrap/doctor.py``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from omni_secrets.domain.errors import OmniSecretsError

T = TypeVar("T")

#: The check groups, in the order they run (``doctor --skip`` takes these names).
GROUPS = ("config", "database", "gsm", "pubsub", "jwks", "break-glass", "integrity")
#: The longest any one check may take (contract section 16: a dead endpoint must not hang).
CHECK_TIMEOUT_SECONDS = 5.0


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of the report: ``<status>  <name>  <detail>  [fix: <fix>]``."""

    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None

    def line(self) -> str:
        fix = f"  [fix: {self.fix}]" if self.fix else ""
        return f"{self.status.value:<4}  {self.name}  {self.detail}{fix}"

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, CheckStatus.OK, detail)


def warn(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, CheckStatus.WARN, detail, fix)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, CheckStatus.FAIL, detail, fix)


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """Every check, in the order run; ``ok`` when none failed."""

    checks: Sequence[CheckResult]

    @property
    def ok(self) -> bool:
        return all(check.status is not CheckStatus.FAIL for check in self.checks)

    def document(self) -> dict[str, Any]:
        return {"checks": [check.document() for check in self.checks], "ok": self.ok}


class CheckTimedOut(Exception):
    """A check did not finish within its bound."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} s")
        self.seconds = seconds


async def bounded(work: Awaitable[T], seconds: float) -> T:
    """``await work`` for at most ``seconds``.

    Raises:
        CheckTimedOut: it took longer (it is cancelled).
    """
    import asyncio  # here: the CLI imports this module for its --help (GROUPS)

    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError:
        raise CheckTimedOut(seconds) from None


async def bounded_blocking(call: Callable[[], T], seconds: float) -> T:
    """Run the blocking ``call`` on a daemon thread and wait at most ``seconds`` for it.

    A daemon thread, not the loop's executor: a call stuck in a dead connection is abandoned
    (it ends with the process) instead of holding up the loop's shutdown.

    Raises:
        CheckTimedOut: it took longer.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = call()
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
        # RuntimeError: the loop is closed, the check was abandoned long ago.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="doctor-check", daemon=True).start()
    return await bounded(future, seconds)


async def guarded(name: str, check: Awaitable[CheckResult], bound: float) -> CheckResult:
    """``check`` bounded; a timeout or an expected error (``OmniSecretsError``) is a fail of
    ``name``."""
    try:
        return await bounded(check, bound)
    except CheckTimedOut as exc:
        return failed(name, str(exc), "check the endpoint is up and reachable from here")
    except OmniSecretsError as exc:
        return failed(name, exc.message, "see the detail")


def reason_of(exc: BaseException) -> str:
    """What went wrong, without the exception's text when it could quote configuration."""
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        return message
    return type(exc).__name__
