"""Writing audit events: synchronously where the action depends on it, in the background otherwise.

:meth:`Auditor.record` awaits the write in its own transaction and raises
:class:`~omni_secrets.domain.errors.AuditUnavailable` when it fails: callers that must fail closed
(break-glass activation, rotation commit) write first and act only after it returned.
:meth:`Auditor.record_later` queues events whose loss must be visible but must not slow the
request path (status views, background refreshes); a bounded queue drained by one task.
Every failed write increments ``omni_audit_write_failures_total`` and raises the
``audit_write_failures`` alert; the next successful write resolves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from omni_secrets.domain.errors import AuditUnavailable
from omni_secrets.domain.models import (
    AuditAction,
    AuditResult,
    NewAccessEvent,
    OmniSecretAccessEvent,
)
from omni_secrets.domain.repositories import UnitOfWork, UnitOfWorkFactory

QUEUE_SIZE = 10_000

log = structlog.get_logger("omni_secrets.audit")


def access_event(
    *,
    action: AuditAction,
    at: datetime,
    actor: str,
    result: AuditResult = "success",
    secret_type: str | None = None,
    correlation_id: str | None = None,
    started: float | None = None,
    details: Mapping[str, Any] | None = None,
) -> NewAccessEvent:
    """The audit event of one operation: the one place events are built and timed.

    Args:
        action: the contract's action name.
        at: when the operation happened (the service's clock).
        actor: the token's subject, or ``system``.
        result: ``success``, ``failure``, ``denied`` or ``conflict``.
        secret_type: the type concerned, None for events about no single type.
        correlation_id: the request id.
        started: ``time.perf_counter()`` at the operation's start; the event's ``duration_ms`` is
            measured from it (None: not measured).
        details: JSON-able context, never a secret value.
    """
    return NewAccessEvent(
        occurred_at=at,
        secret_type=secret_type,
        action=action,
        actor=actor,
        result=result,
        duration_ms=elapsed_ms(started) if started is not None else None,
        correlation_id=correlation_id,
        details=dict(details or {}),
    )


def elapsed_ms(started: float) -> int:
    """Whole milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return max(0, int((time.perf_counter() - started) * 1000))


class Auditor:
    """Appends :class:`NewAccessEvent` rows through units of work.

    Args:
        uow_factory: opens a unit of work per write.
        on_write_failure: called once per failed write (metrics + alerting).
        on_write_success: called after a successful write (resolves the alert).
    """

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        on_write_failure: Callable[[], object] = lambda: None,
        on_write_success: Callable[[], object] = lambda: None,
    ) -> None:
        self._uow_factory = uow_factory
        self._on_failure = on_write_failure
        self._on_success = on_write_success
        self._queue: asyncio.Queue[NewAccessEvent] | None = None
        self._task: asyncio.Task[None] | None = None

    async def record(self, event: NewAccessEvent) -> OmniSecretAccessEvent:
        """Write ``event`` now, in its own transaction.

        Raises:
            AuditUnavailable: the row could not be written (nothing was written).
        """
        try:
            async with self._uow_factory() as uow:
                stored = await uow.audit.append(event)
                await uow.commit()
        except Exception as exc:
            self._failed(event, exc)
            raise AuditUnavailable("the audit event could not be written") from None
        self._on_success()
        return stored

    async def append_in(self, uow: UnitOfWork, event: NewAccessEvent) -> OmniSecretAccessEvent:
        """Append ``event`` inside the caller's unit of work (committed with its other changes).

        Raises:
            AuditUnavailable: the append failed; the caller's transaction must roll back.
        """
        try:
            return await uow.audit.append(event)
        except Exception as exc:
            self._failed(event, exc)
            raise AuditUnavailable("the audit event could not be written") from None

    def record_later(self, event: NewAccessEvent) -> None:
        """Queue ``event`` for the background writer; a full queue drops it (counted)."""
        if self._queue is None:
            raise RuntimeError("Auditor.start() was not called")
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._failed(event, None)

    def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._task = asyncio.create_task(self._drain(), name="audit-writer")

    async def stop(self) -> None:
        """Flush what is queued (best effort), then stop the writer."""
        if self._queue is not None and self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout=5)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            try:
                await self.record(event)
            except AuditUnavailable:
                pass  # counted and alerted in record()
            finally:
                self._queue.task_done()

    def _failed(self, event: NewAccessEvent, exc: Exception | None) -> None:
        log.error(
            "audit.write_failed",
            action=event.action,
            secret_type=event.secret_type,
            error_type=type(exc).__name__ if exc else "QueueFull",
        )
        self._on_failure()
