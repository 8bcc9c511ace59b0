"""Alerts: what an alert is, the ``AlertSink`` port, and the background :class:`AlertDispatcher`.

Alerts the service raises (design.md, "Alerts"): consecutive GSM failures per type, rotation due
soon / overdue per group, break-glass active, audit write failures. Callers say *what* is wrong
(:meth:`AlertDispatcher.trigger`) and when it is over (:meth:`AlertDispatcher.resolve`); the
dispatcher never blocks them: events go onto a bounded queue and one background task hands each to
every sink in order. The log sink is always installed; the PagerDuty sink
(``adapters/pagerduty.py``) when a routing key is configured.

Incidents are identified by a stable ``dedup_key`` = ``omni-secrets/<env>/<alert name>/<subject>``
so a resolve closes what the trigger opened. The dispatcher remembers which alerts are active:

- a trigger of an alert already active **at the same severity** is not sent again (callers such as
  the rotation monitor re-evaluate periodically and may trigger on every pass); a trigger whose
  severity changed is sent (PagerDuty appends it to the open incident);
- a resolve of an alert that is not active is not sent (PagerDuty drops it anyway, and it would
  cost a request per pass);
- when the last delivery for a key failed, the next trigger/resolve for that key is sent again,
  so a PagerDuty outage does not swallow an incident for good.

.. warning:: The active set lives in memory. After a restart, an alert that was triggered before
   and whose condition cleared while the process was down is not resolved by a ``resolve`` call;
   its PagerDuty incident must be closed by hand (or by the next trigger/resolve cycle).

Outcomes go to the ``on_outcome`` hook as ``(alert name, action, result)`` with ``result`` one of
``success`` (every sink accepted), ``failure`` (a sink gave up) or ``dropped`` (queue full, or the
dispatcher stopped before delivering); ``omni_alerts_sent_total{alert, action, result}`` is fed
from it. Alert details and summaries must never contain a secret value.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol, get_args

import structlog

from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import OmniSecretsError

Severity = Literal["critical", "error", "warning", "info"]
AlertAction = Literal["trigger", "resolve"]
DeliveryResult = Literal["success", "failure", "dropped"]
DetailValue = str | int | float | bool | None
#: ``on_outcome(alert_name, action, result)``; called on the event loop, must not block.
OutcomeHook = Callable[[str, str, str], None]

SEVERITIES: Final[tuple[str, ...]] = get_args(Severity)
MAX_DEDUP_KEY_LENGTH: Final = 255
DEDUP_KEY_PREFIX: Final = "omni-secrets"
DEFAULT_QUEUE_SIZE: Final = 1000
DEFAULT_DRAIN_TIMEOUT_SECONDS: Final = 5.0

_HASH_SUFFIX_LENGTH: Final = 16


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert condition.

    Attributes:
        name: the alert, a stable snake_case id (``rotation_overdue``); a metric label value.
        subject: what it is about (a secret type, a rotation group, ``audit``).
        severity: ``critical``, ``error``, ``warning`` or ``info`` (PagerDuty's levels).
        summary: one human sentence (PagerDuty shows at most 1024 characters).
        details: flat facts for the responder; never a secret value.

    Raises:
        ValueError: an unknown severity, or an empty name or subject.
    """

    name: str
    subject: str
    severity: Severity
    summary: str
    details: Mapping[str, DetailValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")
        if not self.name or not self.subject:
            raise ValueError("an alert needs a name and a subject")
        # Frozen means frozen: a caller mutating its dict later must not change a queued alert.
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One trigger or resolve, as handed to the sinks.

    Attributes:
        action: ``trigger`` or ``resolve``.
        alert: the alert (for a resolve: the alert as last triggered).
        dedup_key: the stable incident key (see :func:`dedup_key`).
        environment: the service's environment name.
        occurred_at: when the caller raised it (not when it was delivered).
    """

    action: AlertAction
    alert: Alert
    dedup_key: str
    environment: str
    occurred_at: datetime


class AlertSink(Protocol):
    """Somewhere alerts go (the log, PagerDuty)."""

    async def deliver(self, event: AlertEvent) -> None:
        """Deliver one event, retrying internally as the sink sees fit.

        Args:
            event: the trigger or resolve.

        Raises:
            AlertDeliveryFailed: the sink gave up. Any other exception is treated the same way
                by the dispatcher (and logged by type only).
        """
        ...


def dedup_key(environment: str, name: str, subject: str) -> str:
    """The stable incident key ``omni-secrets/<env>/<name>/<subject>``.

    Keys longer than PagerDuty's 255 characters keep their head and end in ``~`` plus 16 hex
    characters of the full key's SHA-256, so they stay stable and distinct.
    """
    key = f"{DEDUP_KEY_PREFIX}/{environment}/{name}/{subject}"
    if len(key) <= MAX_DEDUP_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:_HASH_SUFFIX_LENGTH]
    return f"{key[: MAX_DEDUP_KEY_LENGTH - _HASH_SUFFIX_LENGTH - 1]}~{digest}"


_LOG_LEVELS: Final[Mapping[str, str]] = {
    "critical": "error",
    "error": "error",
    "warning": "warning",
    "info": "info",
}


class LogAlertSink:
    """Writes every event as one structlog line: ``alert.triggered`` or ``alert.resolved``.

    Fields: ``alert``, ``subject``, ``severity``, ``summary``, ``dedup_key``, ``environment`` and
    ``details`` (the alert's details, which never hold secret values). Never fails.
    """

    def __init__(self) -> None:
        self._log = structlog.get_logger()

    async def deliver(self, event: AlertEvent) -> None:
        alert = event.alert
        fields: dict[str, Any] = {
            "alert": alert.name,
            "subject": alert.subject,
            "severity": alert.severity,
            "summary": alert.summary,
            "dedup_key": event.dedup_key,
            "environment": event.environment,
            "details": dict(alert.details),
        }
        if event.action == "trigger":
            level = _LOG_LEVELS[alert.severity]
            getattr(self._log, level)("alert.triggered", **fields)
        else:
            self._log.info("alert.resolved", **fields)


class AlertDispatcher:
    """Queues alert events and delivers them in the background to the log and the given sinks.

    :meth:`trigger` and :meth:`resolve` are plain (non-async) methods that only enqueue: they
    never wait for a sink. They must be called from the event loop's thread. When the queue is
    full the event is dropped, logged as ``alert.dropped`` and reported as ``dropped``.

    Args:
        environment: the environment name, part of every dedup key.
        sinks: remote sinks (PagerDuty), tried in order after the always-installed
            :class:`LogAlertSink`.
        clock: stamps ``occurred_at``.
        on_outcome: called once per handled event with ``(alert name, action, result)``.
        queue_size: the most events waiting for delivery.
        drain_timeout_seconds: how long :meth:`stop` keeps delivering what is queued.
    """

    def __init__(
        self,
        environment: str,
        sinks: Sequence[AlertSink],
        clock: Clock,
        on_outcome: OutcomeHook | None = None,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        drain_timeout_seconds: float = DEFAULT_DRAIN_TIMEOUT_SECONDS,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if drain_timeout_seconds < 0:
            raise ValueError("drain_timeout_seconds must not be negative")
        self._environment = environment
        self._sinks: tuple[AlertSink, ...] = (LogAlertSink(), *sinks)
        self._clock = clock
        self._on_outcome = on_outcome
        self._drain_timeout = drain_timeout_seconds
        self._queue: asyncio.Queue[AlertEvent] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        # dedup_key -> the alert as last queued for trigger (the desired state: firing).
        self._active: dict[str, Alert] = {}
        # dedup_key -> the last delivered event for that key, when its delivery failed.
        self._failed: dict[str, AlertEvent] = {}
        self._log = structlog.get_logger()

    # -- caller side ----------------------------------------------------------------------------

    def trigger(self, alert: Alert) -> bool:
        """Raise ``alert`` (or keep it raised) without waiting for delivery.

        Args:
            alert: the condition.

        Returns:
            True when an event was queued; False when it was suppressed (already active at this
            severity) or dropped (queue full, dispatcher stopped).
        """
        key = dedup_key(self._environment, alert.name, alert.subject)
        current = self._active.get(key)
        last_failed = self._failed.get(key)
        retry_failed = last_failed is not None and last_failed.action == "trigger"
        if current is not None and current.severity == alert.severity and not retry_failed:
            return False
        if not self._enqueue(self._event("trigger", alert, key)):
            return False
        self._active[key] = alert
        return True

    def resolve(self, name: str, subject: str) -> bool:
        """Clear the alert ``name`` about ``subject`` without waiting for delivery.

        Args:
            name: the alert name as triggered.
            subject: the subject as triggered.

        Returns:
            True when an event was queued; False when the alert is not active (nothing to
            resolve) or the event was dropped.
        """
        key = dedup_key(self._environment, name, subject)
        alert = self._active.get(key)
        if alert is None:
            last_failed = self._failed.get(key)
            if last_failed is None or last_failed.action != "resolve":
                return False
            alert = last_failed.alert
        if not self._enqueue(self._event("resolve", alert, key)):
            return False
        self._active.pop(key, None)
        return True

    def active(self) -> Mapping[str, Alert]:
        """The alerts currently raised, by dedup key (a copy)."""
        return dict(self._active)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery task on the running event loop.

        Raises:
            RuntimeError: already started or stopped, or no running event loop.
        """
        if self._task is not None or self._stopped:
            raise RuntimeError("AlertDispatcher can be started once")
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="omni-secrets-alert-dispatcher"
        )

    async def flush(self) -> None:
        """Wait until every queued event has been handled (delivered or failed).

        Raises:
            RuntimeError: the dispatcher is not running (the wait would never end).
        """
        if self._task is None:
            raise RuntimeError("AlertDispatcher is not running")
        await self._queue.join()

    async def stop(self) -> None:
        """Deliver what is queued for up to ``drain_timeout_seconds``, then stop the task.

        Events still queued or in flight after that are reported as ``dropped``. Later
        trigger/resolve calls are dropped as well. Safe to call twice or without :meth:`start`.
        """
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            if self._drain_timeout > 0:
                try:
                    async with asyncio.timeout(self._drain_timeout):
                        await self._queue.join()
                except TimeoutError:
                    pass
            task.cancel()
            # asyncio.wait never raises the task's CancelledError, so a cancel of stop() itself
            # still propagates.
            await asyncio.wait([task])
        while not self._queue.empty():
            event = self._queue.get_nowait()
            self._queue.task_done()
            self._report_dropped(event, "stopped")

    # -- delivery -------------------------------------------------------------------------------

    def _event(self, action: AlertAction, alert: Alert, key: str) -> AlertEvent:
        return AlertEvent(action, alert, key, self._environment, self._clock.now())

    def _enqueue(self, event: AlertEvent) -> bool:
        if self._stopped:
            self._report_dropped(event, "stopped")
            return False
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._report_dropped(event, "queue_full")
            return False
        # A newer event for the key supersedes the failed one; if it fails too, it is recorded.
        self._failed.pop(event.dedup_key, None)
        return True

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._deliver(event)
            except asyncio.CancelledError:
                self._report_dropped(event, "stopped")
                raise
            finally:
                self._queue.task_done()

    async def _deliver(self, event: AlertEvent) -> None:
        failed = False
        for sink in self._sinks:
            try:
                await sink.deliver(event)
            except Exception as exc:  # a sink bug must not stop alerting through the others
                failed = True
                self._log.error(
                    "alert.delivery_failed",
                    sink=type(sink).__name__,
                    alert=event.alert.name,
                    subject=event.alert.subject,
                    action=event.action,
                    error=type(exc).__name__,
                    # Our own errors have safe messages; anything else is named by type only.
                    reason=exc.message if isinstance(exc, OmniSecretsError) else None,
                )
        if failed:
            self._failed[event.dedup_key] = event
        else:
            # Events for one key are handled in order, so a stored failure is older than this.
            self._failed.pop(event.dedup_key, None)
        self._report(event, "failure" if failed else "success")

    def _report_dropped(self, event: AlertEvent, why: str) -> None:
        self._log.error(
            "alert.dropped",
            alert=event.alert.name,
            subject=event.alert.subject,
            severity=event.alert.severity,
            action=event.action,
            dedup_key=event.dedup_key,
            why=why,
        )
        self._report(event, "dropped")

    def _report(self, event: AlertEvent, result: DeliveryResult) -> None:
        if self._on_outcome is None:
            return
        try:
            self._on_outcome(event.alert.name, event.action, result)
        except Exception as exc:  # a metrics bug must not stop alert delivery
            self._log.error("alert.outcome_hook_failed", error=type(exc).__name__)
