"""Writing audit events: one batching writer per process that loses nothing (contract section 10).

Every event goes through one in-memory, ordered buffer drained by one writer task. The writer
takes up to :data:`BATCH_MAX` events, appends them in **one transaction under one chain lock**
(:meth:`~omni_secrets.domain.repositories.AuditLog.append_many`; group commit) and only then
removes them from the buffer, so a failed batch is retried as it was, in order.

- :meth:`Auditor.submit` (async; status views, refresh requests) returns once the event is
  buffered. When the buffer is full it raises :class:`~omni_secrets.domain.errors.AuditUnavailable`
  at once (503 ``AUDIT_UNAVAILABLE``): the caller refuses the request instead of answering it
  without its row (contract section 18; nothing is lost, nothing waits).
- :meth:`Auditor.record_later` is the same for synchronous callers (cache listeners, jobs): it
  never blocks, so a full buffer drops the event.
- :meth:`Auditor.record` (fail-closed operations: break-glass revoke, …) awaits its own row's
  commit and raises :class:`~omni_secrets.domain.errors.AuditUnavailable` when the batch holding
  it fails — that event is then taken out of the buffer, never written later: the caller did not
  act on it.
- :meth:`Auditor.append_in` writes inside the caller's own unit of work (activation, commit).

While the database is unreachable up to :data:`MAX_PENDING` (10,000) events are held and written,
in order, when it returns (retries back off up to :data:`RETRY_MAX_SECONDS`; a batch that gets no
answer within ``write_timeout_seconds`` counts as a failure, so a stalled network is retried like a
refused one). Only an event that does not fit (:meth:`record_later`) is lost: it counts in
``omni_audit_write_failures_total`` and ``omni_audit_events_lost_total`` and raises the
``audit_write_failures`` alert (``on_write_failure``, ``on_lost``); the next successful batch
resolves it (``on_write_success``). On :meth:`Auditor.stop` the writer drains what is pending for
at most ``drain_seconds`` (10 s), then stops; whatever is still pending is counted as lost in one
go (``on_lost``), logged once and paged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from omni_secrets.domain.errors import AuditUnavailable, DatabaseUnavailable
from omni_secrets.domain.models import (
    AuditAction,
    AuditResult,
    NewAccessEvent,
    OmniSecretAccessEvent,
)
from omni_secrets.domain.repositories import UnitOfWork, UnitOfWorkFactory

MAX_PENDING = 10_000
"""Events held in memory per process (while the database is down); past that they are lost."""
BATCH_MAX = 500
"""Events per transaction at most."""
RETRY_MIN_SECONDS = 0.05
RETRY_MAX_SECONDS = 2.0
DEFAULT_WRITE_TIMEOUT_SECONDS = 10.0
DEFAULT_DRAIN_SECONDS = 10.0
RECORD_TIMEOUT_SECONDS = 10.0
STOP_GRACE_SECONDS = 1.0
"""How long :meth:`Auditor.stop` waits for the cancelled writer after the drain bound."""
QUEUE_SIZE = MAX_PENDING  # the old name, kept for callers that size things by it

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


@dataclass(slots=True, eq=False)
class _Pending:
    event: NewAccessEvent
    # Set for fail-closed events: the caller awaits the commit (or the failure) of its row.
    done: asyncio.Future[OmniSecretAccessEvent] | None = None
    cancelled: bool = field(default=False)


class Auditor:
    """Appends :class:`NewAccessEvent` rows through one batching writer (module docstring).

    Args:
        uow_factory: opens a unit of work per batch.
        on_write_failure: called once per event lost or fail-closed write refused (metrics +
            alerting).
        on_write_success: called after each committed batch (resolves the alert).
        on_batch: called with the size of each committed batch (``omni_audit_batch_size``).
        on_lost: called with a number of events accepted and then lost (never written).
        max_pending: how many events may be held (10,000).
        write_timeout_seconds: how long one batch may take before it counts as failed.
        drain_seconds: how long :meth:`stop` drains (10 s).
    """

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        on_write_failure: Callable[[], object] = lambda: None,
        on_write_success: Callable[[], object] = lambda: None,
        on_batch: Callable[[int], object] = lambda _size: None,
        on_lost: Callable[[int], object] = lambda _count: None,
        max_pending: int = MAX_PENDING,
        write_timeout_seconds: float = DEFAULT_WRITE_TIMEOUT_SECONDS,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
    ) -> None:
        self._uow_factory = uow_factory
        self._on_failure = on_write_failure
        self._on_success = on_write_success
        self._on_batch = on_batch
        self._on_lost = on_lost
        self._max_pending = max_pending
        self._write_timeout = write_timeout_seconds
        self._drain_seconds = drain_seconds
        self._pending: deque[_Pending] = deque()
        self._has_work: asyncio.Event | None = None
        self._has_room: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._database_down = False
        self._stopping = False
        self.written = 0
        self.lost = 0

    @property
    def pending(self) -> int:
        """Events accepted and not yet committed (``omni_audit_queue_depth``)."""
        return len(self._pending)

    # -- producers -------------------------------------------------------------------------------

    async def record(self, event: NewAccessEvent) -> OmniSecretAccessEvent:
        """Write ``event`` through the writer and wait for its commit.

        Raises:
            AuditUnavailable: the row could not be written (it never will be).
        """
        if self._task is None or self._stopping:
            return await self._record_directly(event)
        loop = asyncio.get_running_loop()
        item = _Pending(event, loop.create_future())
        if not self._enqueue(item):
            raise AuditUnavailable("the audit event could not be written")
        assert item.done is not None
        try:
            return await asyncio.wait_for(asyncio.shield(item.done), RECORD_TIMEOUT_SECONDS)
        except TimeoutError:
            # Still pending: make sure it is never written after we told the caller it failed.
            if not item.done.done():
                item.cancelled = True
                self._failed(event, "Timeout")
            else:
                return item.done.result()
            raise AuditUnavailable("the audit event could not be written in time") from None

    async def _record_directly(self, event: NewAccessEvent) -> OmniSecretAccessEvent:
        try:
            async with self._uow_factory() as uow:
                stored = await uow.audit.append(event)
                await uow.commit()
        except Exception as exc:
            self._failed(event, type(exc).__name__)
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
            self._failed(event, type(exc).__name__)
            raise AuditUnavailable("the audit event could not be written") from None

    async def submit(self, event: NewAccessEvent) -> None:
        """Buffer ``event`` for the writer; refuse it at once when the buffer is full.

        Raises:
            AuditUnavailable: :data:`MAX_PENDING` events are held (the database does not keep
                up or does not answer): the caller must not answer its request (503).
        """
        if self._has_work is None:
            raise RuntimeError("Auditor.start() was not called")
        if len(self._pending) >= self._max_pending:
            raise AuditUnavailable("the audit buffer is full: the request is refused")
        self._pending.append(_Pending(event))
        self._has_work.set()

    def record_later(self, event: NewAccessEvent) -> None:
        """Buffer ``event`` without waiting (synchronous callers); a full buffer loses it."""
        if not self._enqueue(_Pending(event)):
            self._on_lost(1)

    def _enqueue(self, item: _Pending) -> bool:
        if self._has_work is None:
            raise RuntimeError("Auditor.start() was not called")
        if len(self._pending) >= self._max_pending:
            self._failed(item.event, "BufferFull")
            return False
        self._pending.append(item)
        self._has_work.set()
        return True

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._has_work = asyncio.Event()
        self._has_room = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._write_forever(), name="audit-writer")

    async def stop(self, *, drain_seconds: float | None = None) -> None:
        """Drain what is pending (at most ``drain_seconds``, by default the constructor's), then
        stop the writer."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        drain = self._drain_seconds if drain_seconds is None else drain_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained(task), drain)
        task.cancel()
        # A write stalled on the network may take seconds to honour the cancellation (the
        # driver first tries to cancel the query on the server): do not wait for it.
        await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
        held = [item for item in self._pending if not item.cancelled]
        self._pending.clear()
        if held:
            # Logged once and counted once (not once per event: there may be 10,000).
            log.error("audit.drain_incomplete", lost=len(held), drain_seconds=drain)
            for item in held:
                if item.done is not None and not item.done.done():
                    item.done.set_exception(AuditUnavailable("the audit writer stopped"))
            self.lost += len(held)
            self._on_lost(len(held))
            self._on_failure()
        else:
            log.info("audit.drained", written=self.written, lost=self.lost)

    async def _drained(self, task: asyncio.Task[None]) -> None:
        assert self._has_room is not None
        while self._pending and not task.done():
            self._has_room.clear()
            await self._has_room.wait()

    # -- the writer ------------------------------------------------------------------------------

    async def _write_forever(self) -> None:
        assert self._has_work is not None
        delay = RETRY_MIN_SECONDS
        limit = BATCH_MAX
        while True:
            if not self._pending:
                self._has_work.clear()
                await self._has_work.wait()
                continue
            # Only this task removes items from the front, so the first len(taken) items are
            # still these when the batch ends; producers only append at the back.
            taken = _take(self._pending, limit)
            batch = [item for item in taken if not item.cancelled]
            if batch:
                try:
                    async with asyncio.timeout(self._write_timeout):
                        stored = await self._write(batch)
                except asyncio.CancelledError:
                    raise
                except (AuditUnavailable, DatabaseUnavailable, TimeoutError) as exc:
                    self._batch_failed(batch, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
                    continue
                except Exception as exc:
                    # Not an outage but a row the database refuses (a bug): retrying the same
                    # batch for ever would block every later event. Narrow down to the one
                    # row, then give that one up (counted, paged) and carry on.
                    if len(taken) > 1:
                        limit = 1
                        continue
                    self._pending.popleft()
                    log.error("audit.row_refused", error_type=type(exc).__name__)
                    for item in batch:
                        if item.done is not None and not item.done.done():
                            item.done.set_exception(
                                AuditUnavailable("the audit event could not be written")
                            )
                        self._failed(item.event, type(exc).__name__)
                        if item.done is None:
                            self._on_lost(1)
                    continue
                delay = RETRY_MIN_SECONDS
            limit = BATCH_MAX
            for _ in taken:
                self._pending.popleft()
            if batch:
                self._batch_written(batch, stored)

    async def _write(self, batch: list[_Pending]) -> Sequence[OmniSecretAccessEvent]:
        async with self._uow_factory() as uow:
            stored = await uow.audit.append_many([item.event for item in batch])
            await uow.commit()
        return stored

    def _batch_written(
        self, batch: list[_Pending], stored: Sequence[OmniSecretAccessEvent]
    ) -> None:
        for item, row in zip(batch, stored, strict=False):
            if item.done is not None and not item.done.done():
                item.done.set_result(row)
        self.written += len(batch)
        self._on_batch(len(batch))
        if self._database_down:
            log.info("audit.writer_recovered", pending=len(self._pending))
            self._database_down = False
        self._on_success()
        if self._has_room is not None:
            self._has_room.set()

    def _batch_failed(self, batch: list[_Pending], exc: Exception) -> None:
        if not self._database_down:
            log.warning(
                "audit.writer_waiting",
                error_type=type(exc).__name__,
                pending=len(self._pending),
                hint="events are held in memory (up to 10,000) and written when the DB returns",
            )
        self._database_down = True
        # A fail-closed caller is told now, and its row is taken out: it must never appear
        # later for an action that was refused.
        for item in batch:
            if item.done is not None and not item.done.done():
                item.cancelled = True
                self._failed(item.event, type(exc).__name__)
                item.done.set_exception(AuditUnavailable("the audit event could not be written"))
        self._drop_cancelled()
        if self._has_room is not None:
            self._has_room.set()

    def _drop_cancelled(self) -> None:
        if any(item.cancelled for item in self._pending):
            self._pending = deque(item for item in self._pending if not item.cancelled)

    def _failed(self, event: NewAccessEvent, error_type: str) -> None:
        self.lost += 1
        log.error(
            "audit.write_failed",
            action=event.action,
            secret_type=event.secret_type,
            error_type=error_type,
        )
        self._on_failure()


def _take(pending: deque[_Pending], count: int) -> list[_Pending]:
    return [pending[i] for i in range(min(count, len(pending)))]
