"""One call shared by every caller that arrives while it is in flight (no caching after it).

``/readyz`` under load: sixteen probes arriving together need one database round trip, not
sixteen. Unlike a cache, a caller arriving after the call finished starts a new one, so the
answer is never older than the caller's own wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedCall(Generic[T]):
    """Runs ``call`` at most once at a time; concurrent :meth:`run` calls await the same result.

    Args:
        call: the coroutine function to share. Its exceptions reach every waiter.
    """

    def __init__(self, call: Callable[[], Awaitable[T]]) -> None:
        self._call = call
        self._in_flight: asyncio.Future[T] | None = None

    async def run(self) -> T:
        if self._in_flight is None:
            self._in_flight = asyncio.ensure_future(self._call())
            self._in_flight.add_done_callback(self._finished)
        # shield: one waiter giving up (a client disconnect) must not cancel the others' call.
        return await asyncio.shield(self._in_flight)

    def _finished(self, future: asyncio.Future[T]) -> None:
        if self._in_flight is future:
            self._in_flight = None
        if not future.cancelled():
            future.exception()  # retrieved here so an unawaited failure is not logged as lost
