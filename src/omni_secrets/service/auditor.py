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
from collections.abc import Callable

import structlog

from omni_secrets.domain.errors import AuditUnavailable
from omni_secrets.domain.models import NewAccessEvent, OmniSecretAccessEvent
from omni_secrets.domain.repositories import UnitOfWork, UnitOfWorkFactory

QUEUE_SIZE = 10_000

log = structlog.get_logger("omni_secrets.audit")


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
