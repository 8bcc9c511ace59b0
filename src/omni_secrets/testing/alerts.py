"""Alert fakes: :class:`FakePagerDutyServer` (an Events API v2 receiver) and
:class:`RecordingAlertSink`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from omni_secrets.domain.errors import AlertDeliveryFailed
from omni_secrets.observability.alerts import AlertEvent
from omni_secrets.testing._http import HttpReply, LoopbackServer, json_reply


@dataclass(frozen=True, slots=True)
class PagerDutyRequestRecord:
    """One request :class:`FakePagerDutyServer` received.

    Attributes:
        method: the HTTP method.
        path: the request path.
        content_type: the ``Content-Type`` header.
        body: the parsed JSON body, None when it was not JSON.
        status: the status answered (or about to be, while held).
    """

    method: str
    path: str
    content_type: str | None
    body: Any
    status: int


_PD_REQUIRED_TRIGGER_FIELDS = ("summary", "source", "severity")
_PD_SEVERITIES = ("critical", "error", "warning", "info")


def _pagerduty_errors(body: Any) -> list[str]:
    """Validation PagerDuty applies before answering 202 (a subset, enough to keep us honest)."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    errors = [
        f"'{name}' is missing" for name in ("routing_key", "event_action") if not body.get(name)
    ]
    action = body.get("event_action")
    if action not in (None, "trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    if action in ("acknowledge", "resolve") and not body.get("dedup_key"):
        errors.append("'dedup_key' is missing")
    if len(str(body.get("dedup_key") or "")) > 255:
        errors.append("'dedup_key' is too long")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing"]
        errors += [
            f"'payload.{name}' is missing"
            for name in _PD_REQUIRED_TRIGGER_FIELDS
            if not payload.get(name)
        ]
        if payload.get("severity") not in _PD_SEVERITIES:
            errors.append("'payload.severity' is invalid")
        if len(str(payload.get("summary") or "")) > 1024:
            errors.append("'payload.summary' is too long")
    return errors


class FakePagerDutyServer:
    """A PagerDuty Events API v2 receiver on ``127.0.0.1`` (``POST /v2/enqueue``).

    Validates events the way PagerDuty does for the required fields (400 ``invalid event`` when
    one is missing), answers 202 otherwise, and records every request. Tests can script the next
    statuses (:meth:`respond_with`, e.g. ``500, 500`` then the default 202), make requests hang
    until released (:meth:`hold`/:meth:`release`), or drop connections (status 0 in the script).

    Threaded, usable from async tests; use as a context manager or :meth:`start`/:meth:`stop`.
    """

    PATH = "/v2/enqueue"

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._server = LoopbackServer(self._handle)
        self._script: list[int] = []
        self._released = threading.Event()
        self._released.set()
        self._requests: list[PagerDutyRequestRecord] = []

    @property
    def events_url(self) -> str:
        """The URL for ``OMNI_PAGERDUTY_EVENTS_URL``."""
        return self._server.base_url + self.PATH

    def start(self) -> Self:
        """Start serving; returns self."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving; held requests are released (their clients see the connection drop)."""
        self._released.set()
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def respond_with(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (0 drops the connection), then 202."""
        with self._lock:
            self._script.extend(statuses)

    def hold(self) -> None:
        """Park every request after it is recorded and before it is answered, until released."""
        self._released.clear()

    def release(self) -> None:
        """Answer the parked requests and stop parking."""
        self._released.set()

    @property
    def requests(self) -> list[PagerDutyRequestRecord]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The bodies of the requests answered 202, oldest first."""
        return [r.body for r in self.requests if r.status == 202]

    def wait_for_requests(self, count: int, within_seconds: float = 5.0) -> bool:
        """Block until ``count`` requests were received; False on timeout.

        From async code call it through ``asyncio.to_thread`` so the event loop keeps running.
        """
        with self._lock:
            return self._lock.wait_for(lambda: len(self._requests) >= count, within_seconds)

    async def wait_for_requests_async(self, count: int, within_seconds: float = 5.0) -> bool:
        """:meth:`wait_for_requests` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for_requests, count, within_seconds)

    def _handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> HttpReply:
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        path = urlsplit(raw_path).path
        errors: list[str] = []
        with self._lock:
            if method != "POST" or path != self.PATH:
                status = 404
            else:
                errors = _pagerduty_errors(parsed)
                status = self._script.pop(0) if self._script else (400 if errors else 202)
            self._requests.append(
                PagerDutyRequestRecord(method, path, headers.get("content-type"), parsed, status)
            )
            self._lock.notify_all()
        # Wait outside the lock so other requests and observers are not blocked.
        while not self._released.wait(0.05):
            if self._server.stopping.is_set():
                return HttpReply(0, disconnect=True)
        if status == 0:
            return HttpReply(0, disconnect=True)
        if status == 202:
            dedup = parsed.get("dedup_key") if isinstance(parsed, dict) else None
            return json_reply(
                202, {"status": "success", "message": "Event processed", "dedup_key": dedup}
            )
        if status == 400:
            return json_reply(
                400,
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
            )
        return json_reply(status, {"status": "error", "message": f"HTTP {status}"})


class RecordingAlertSink:
    """An in-memory ``AlertSink``: records events, can fail or park deliveries on demand.

    Attributes:
        delivered: events accepted, oldest first.
        attempted: every event handed over, including failed ones.
    """

    def __init__(self) -> None:
        self.delivered: list[AlertEvent] = []
        self.attempted: list[AlertEvent] = []
        self._failures_left = 0
        self._gate = asyncio.Event()
        self._gate.set()

    def fail_next(self, count: int = 1) -> None:
        """Raise ``AlertDeliveryFailed`` for the next ``count`` deliveries."""
        self._failures_left += count

    def hold(self) -> None:
        """Park deliveries until :meth:`release` (to fill the dispatcher's queue in tests)."""
        self._gate.clear()

    def release(self) -> None:
        """Let parked deliveries finish."""
        self._gate.set()

    async def deliver(self, event: AlertEvent) -> None:
        self.attempted.append(event)
        await self._gate.wait()
        if self._failures_left > 0:
            self._failures_left -= 1
            raise AlertDeliveryFailed("fake sink failure", details={"attempts": 1})
        self.delivered.append(event)
