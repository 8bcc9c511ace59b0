"""Coalescing the GSM calls that Pub/Sub events cause (contract section 17: events are hints).

Anyone with publish rights on the topic can send hundreds of events a second; each must not
cost a GSM call. :class:`FreshReads` answers every request for a key with a call that *started
no earlier than* the request's ``not_before`` (the event's publish time, or its arrival), so no
event is answered from a read that may predate the change it announces. A call already running
or already done is shared when it is fresh enough; otherwise the request joins the next call,
which starts when the running one has ended and at least ``min_interval`` seconds after the
previous one: at most one call per key in flight, at most one per ``min_interval`` after.

A flood published within a second therefore costs one or two calls per key, however many
events it holds. Only successful answers are reused; a failed call fails the requests that
joined it, and the next request starts a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from omni_secrets.domain.clock import Clock

T = TypeVar("T")

DEFAULT_MIN_INTERVAL_SECONDS = 1.0


@dataclass
class _Slot(Generic[T]):
    running: asyncio.Future[T] | None = None
    running_since: datetime | None = None
    waiting: asyncio.Future[T] | None = None
    done: tuple[datetime, T] | None = None
    ended: float = float("-inf")


class FreshReads(Generic[T]):
    """At most one call per key in flight and one per ``min_interval``; fresh answers shared.

    Args:
        clock: when each call starts (compared with each request's ``not_before``).
        min_interval: the least time between the end of one call and the start of the next.
    """

    def __init__(self, clock: Clock, min_interval: float = DEFAULT_MIN_INTERVAL_SECONDS) -> None:
        self._clock = clock
        self._min_interval = min_interval
        self._slots: dict[Hashable, _Slot[T]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0
        """How many calls were started (tests and the flood test read it)."""

    async def run(self, key: Hashable, not_before: datetime, call: Callable[[], Awaitable[T]]) -> T:
        """The answer of a ``call`` for ``key`` that started at or after ``not_before``.

        Raises:
            Exception: whatever that call raised.
        """
        slot = self._slots.setdefault(key, _Slot())
        if slot.done is not None and slot.done[0] >= not_before:
            return slot.done[1]
        running = slot.running
        since = slot.running_since
        if running is not None and since is not None and since >= not_before:
            return await asyncio.shield(running)
        if slot.waiting is None:
            loop = asyncio.get_running_loop()
            slot.waiting = loop.create_future()
            task = loop.create_task(self._next(slot, call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(slot.waiting)

    async def _next(self, slot: _Slot[T], call: Callable[[], Awaitable[T]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if slot.running is not None:
                await asyncio.wait({slot.running})
                continue
            pause = slot.ended + self._min_interval - loop.time()
            if pause <= 0:
                break
            await asyncio.sleep(pause)
        future, slot.waiting = slot.waiting, None
        assert future is not None
        slot.running, slot.running_since = future, self._clock.now()
        started = slot.running_since
        self.calls += 1
        try:
            result = await call()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody may be waiting any more
        else:
            slot.done = (started, result)
            future.set_result(result)
        finally:
            slot.running, slot.running_since = None, None
            slot.ended = loop.time()
