"""PagerDuty Events API v2 as an :class:`~omni_secrets.observability.alerts.AlertSink`.

A few lines of httpx instead of the ``pagerduty`` package, which retries 429 forever with a
blocking sleep (field-notes.md). Behaviour per the Events API v2:

- ``POST <events_url>`` with a JSON body holding ``routing_key``, ``event_action`` and
  ``dedup_key``; a trigger adds ``payload`` (``summary`` cut to 1024 characters, ``source``,
  ``severity``, ``component``, ``group`` = environment, ``class`` = alert name,
  ``custom_details``, ``timestamp``); a resolve carries the same ``dedup_key`` and no payload.
- 2xx (PagerDuty answers 202) is success; 429, 5xx and network errors/timeouts are retried with
  exponential backoff (``backoff_initial_seconds`` doubling up to ``backoff_max_seconds``) for at
  most ``max_attempts`` requests; any other status (400 invalid event, 401, 403, 404) fails at once.

The routing key is a credential: it only ever goes into the request body. It is never logged and
never in an exception or its ``__context__`` (failures are raised outside the ``except`` block and
carry only the status and attempt count).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import httpx
import structlog

from omni_secrets.domain.clock import Sleep, to_rfc3339
from omni_secrets.domain.errors import AlertDeliveryFailed
from omni_secrets.observability.alerts import AlertEvent

DEFAULT_EVENTS_URL: Final = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_COMPONENT: Final = "omni-secrets"
DEFAULT_MAX_ATTEMPTS: Final = 5
DEFAULT_BACKOFF_INITIAL_SECONDS: Final = 1.0
DEFAULT_BACKOFF_MAX_SECONDS: Final = 30.0
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
MAX_SUMMARY_LENGTH: Final = 1024


def event_body(
    event: AlertEvent, *, routing_key: str, source: str, component: str
) -> dict[str, Any]:
    """The Events API v2 JSON body for one trigger or resolve.

    .. warning:: The result holds the routing key: send it, never log it.
    """
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": event.action,
        "dedup_key": event.dedup_key,
    }
    if event.action == "trigger":
        alert = event.alert
        summary = alert.summary or alert.name
        if len(summary) > MAX_SUMMARY_LENGTH:
            summary = summary[: MAX_SUMMARY_LENGTH - 1] + "…"
        body["payload"] = {
            "summary": summary,
            "source": source,
            "severity": alert.severity,
            "component": component,
            "group": event.environment,
            "class": alert.name,
            "custom_details": {
                **alert.details,
                "alert": alert.name,
                "subject": alert.subject,
                "environment": event.environment,
            },
            "timestamp": to_rfc3339(event.occurred_at),
        }
    return body


class PagerDutySink:
    """Sends alert events to one PagerDuty service (one integration/routing key).

    Args:
        routing_key: the Events API v2 integration key (the composition root unwraps it from
            the settings' ``SecretStr``).
        events_url: ``https://events.pagerduty.com/v2/enqueue`` or a test receiver.
        http: a shared ``httpx.AsyncClient``; its lifetime belongs to the caller.
        source: ``payload.source``: where the problem is (e.g. the host or service instance).
        component: ``payload.component``.
        max_attempts: the most requests per event (1 = no retry).
        backoff_initial_seconds: the wait before the second attempt; doubles each time.
        backoff_max_seconds: the longest single wait.
        timeout_seconds: per-request timeout.
        sleep: the backoff sleep (inject a recorder in tests).
    """

    def __init__(
        self,
        routing_key: str,
        events_url: str,
        http: httpx.AsyncClient,
        source: str,
        *,
        component: str = DEFAULT_COMPONENT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_initial_seconds: float = DEFAULT_BACKOFF_INITIAL_SECONDS,
        backoff_max_seconds: float = DEFAULT_BACKOFF_MAX_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not routing_key:
            raise ValueError("routing_key must not be empty")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if backoff_initial_seconds < 0 or backoff_max_seconds < backoff_initial_seconds:
            raise ValueError("need 0 <= backoff_initial_seconds <= backoff_max_seconds")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._routing_key = routing_key
        self._events_url = events_url
        self._http = http
        self._source = source
        self._component = component
        self._max_attempts = max_attempts
        self._backoff_initial = backoff_initial_seconds
        self._backoff_max = backoff_max_seconds
        self._timeout = httpx.Timeout(timeout_seconds)
        self._sleep = sleep
        self._log = structlog.get_logger()

    def __repr__(self) -> str:
        return f"PagerDutySink(events_url={self._events_url!r}, routing_key=<redacted>)"

    def backoff_seconds(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self._backoff_max, self._backoff_initial * 2 ** (attempt - 1)))

    async def deliver(self, event: AlertEvent) -> None:
        """Post one event, retrying 429/5xx/network errors with bounded exponential backoff.

        Args:
            event: the trigger or resolve.

        Raises:
            AlertDeliveryFailed: PagerDuty rejected the event (non-retryable status such as 400)
                or every attempt failed; ``details`` has ``httpStatus``, ``attempts``, ``error``.
        """
        body = event_body(
            event, routing_key=self._routing_key, source=self._source, component=self._component
        )
        status: int | None = None
        error: str | None = None
        attempt = 0
        while attempt < self._max_attempts:
            attempt += 1
            status, error = await self._post(body)
            if status is not None and 200 <= status < 300:
                return
            if status is not None and not _retryable(status):
                break
            if attempt < self._max_attempts:
                delay = self.backoff_seconds(attempt)
                self._log.warning(
                    "pagerduty.retry_scheduled",
                    alert=event.alert.name,
                    action=event.action,
                    attempt=attempt,
                    http_status=status,
                    error=error,
                    delay_seconds=delay,
                )
                await self._sleep(delay)
        what = f"HTTP {status}" if status is not None else f"network error ({error})"
        raise AlertDeliveryFailed(
            f"PagerDuty did not accept the {event.action} event after {attempt} attempt(s): {what}",
            details={"httpStatus": status, "attempts": attempt, "error": error},
        )

    async def _post(self, body: dict[str, Any]) -> tuple[int | None, str | None]:
        # Returns plain values only: httpx requests and exceptions hold the body (routing key).
        try:
            response = await self._http.post(self._events_url, json=body, timeout=self._timeout)
        except httpx.TransportError as exc:
            return None, type(exc).__name__
        return response.status_code, None


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500
