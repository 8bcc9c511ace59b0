"""The cache's refresh scheduler: single-flight fetches and the background refresher.

:class:`Refresher` owns every call to the service's ``fetch``: at most one per type in flight
(every concurrent caller awaits the same task), the outcome written into the type's slot (success:
a new GSM snapshot and the next refresh-ahead point; failure: the last error, a jittered backoff,
and for a permanent refusal the entry dropped at once), and the background loop that starts
whatever is due and sleeps until the next deadline or until woken. It changes what is served only
through :class:`~omni_secrets.domain.cache.entries.CacheEntries`.
"""

from __future__ import annotations

import asyncio
import random
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import timedelta
from typing import Any

from omni_secrets.domain.cache.entries import CacheEntries, Slot
from omni_secrets.domain.cache.events import (
    Evicted,
    FetchRaisedUnexpectedly,
    Refreshed,
    RefresherStepFailed,
    RefreshFailed,
)
from omni_secrets.domain.cache.models import (
    CachedSecret,
    CacheSource,
    FetchFailure,
    Operation,
    RefreshOutcome,
)
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.clock import Sleep
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.secret_store import AccessedSecret
from omni_secrets.domain.values import SecretValue

Fetch = Callable[[SecretType], Awaitable[AccessedSecret]]
"""Reads the version of a type that should be served (the service resolves the pin)."""

_UNEXPECTED_REASON = "UNKNOWN"


class Refresher:
    """Fetches types on demand and in the background, one fetch per type at a time.

    Args:
        entries: the state it refreshes.
        fetch, refresh_ahead_fraction, jitter_fraction, rng, sleep, retry_initial_seconds,
            retry_max_seconds: as :class:`OmniSecretCache` takes them (already validated).
    """

    def __init__(
        self,
        entries: CacheEntries,
        *,
        fetch: Fetch,
        refresh_ahead_fraction: float,
        jitter_fraction: float,
        rng: random.Random,
        sleep: Sleep,
        retry_initial_seconds: float,
        retry_max_seconds: float,
    ) -> None:
        self._entries = entries
        self._fetch = fetch
        self._ahead = refresh_ahead_fraction
        self._jitter = jitter_fraction
        self._rng = rng
        self._sleep = sleep
        self._retry_initial = retry_initial_seconds
        self._retry_max = retry_max_seconds
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the background loop is running."""
        return self._runner is not None and not self._runner.done()

    def start(self) -> None:
        """Start the background loop on the running event loop (see ``OmniSecretCache.start``)."""
        if self.running:
            raise RuntimeError("the cache refresher is already running")
        loop = asyncio.get_running_loop()
        self._runner = loop.create_task(self._run(), name="omni-secret-cache-refresher")

    async def stop(self) -> None:
        """Cancel the background loop and every fetch in flight; idempotent."""
        runner, self._runner = self._runner, None
        tasks = [task for task in (runner, *self._tasks) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for slot in self._entries.slots.values():
            slot.inflight = None
            slot.follow_up = None

    # --- on demand ------------------------------------------------------------------------

    async def refresh(
        self, types: Iterable[SecretType] | None, operation: Operation, *, force_new: bool
    ) -> dict[SecretType, RefreshOutcome]:
        """Fetch ``types`` now, joining fetches in flight (see ``OmniSecretCache.refresh``)."""
        slots = self._entries.select(types)
        tasks = [self._join(slot, operation, force_new) for slot in slots]
        pending = [task for task in tasks if not task.done()]
        if pending:
            # asyncio.wait, unlike gather, does not cancel the tasks when this caller is
            # cancelled: a caller that gives up must not cancel a fetch other callers share.
            await asyncio.wait(pending)
        return {outcome.secret_type: outcome for outcome in (task.result() for task in tasks)}

    def request_refresh(self, types: Iterable[SecretType] | None) -> None:
        """Make ``types`` due soon, respecting the retry floor; wakes the background loop."""
        now = self._entries.monotonic()
        for slot in self._entries.select(types):
            self._entries.request_fetch(slot, now)

    async def run_due_refreshes(self) -> float:
        """One step of the background loop, awaiting the fetches it started; seconds to next."""
        started = self._start_due()
        if started:
            await asyncio.wait(started)
        return self._seconds_until_due()

    # --- single-flight --------------------------------------------------------------------

    def _join(
        self, slot: Slot, operation: Operation, force_new: bool
    ) -> asyncio.Task[RefreshOutcome]:
        current = slot.inflight
        if current is None:
            return self._start_fetch(slot, operation)
        if not force_new:
            return current
        if slot.follow_up is None:
            slot.follow_up = self._spawn(self._fetch_after(slot, current, operation))
        return slot.follow_up

    async def _fetch_after(
        self, slot: Slot, current: asyncio.Task[RefreshOutcome], operation: Operation
    ) -> RefreshOutcome:
        await asyncio.wait((current,))
        slot.follow_up = None
        # Any fetch in flight now started after ``current`` ended, hence after our callers.
        return await asyncio.shield(self._join(slot, operation, force_new=False))

    def _start_fetch(self, slot: Slot, operation: Operation) -> asyncio.Task[RefreshOutcome]:
        task = self._spawn(self._run_fetch(slot, operation))
        slot.inflight = task
        return task

    def _spawn(self, coro: Coroutine[Any, Any, RefreshOutcome]) -> asyncio.Task[RefreshOutcome]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- one fetch and its outcome --------------------------------------------------------

    async def _run_fetch(self, slot: Slot, operation: Operation) -> RefreshOutcome:
        started = self._entries.monotonic()
        revocations = slot.revocations
        try:
            try:
                value, version = await self._read(slot.secret_type)
            except SecretStoreError as exc:
                return self._record_failure(
                    slot, operation, exc.reason, exc.message, exc.transient, started
                )
            except Exception as exc:
                # fetch belongs to the service; a bug there must not stop the refresher. Only the
                # type and the place are reported: an unknown exception's text could hold anything.
                self._entries.emit(_raised_unexpectedly(slot.secret_type, exc))
                return self._record_failure(
                    slot,
                    operation,
                    _UNEXPECTED_REASON,
                    f"unexpected {type(exc).__name__} while fetching {slot.secret_type.value}",
                    True,
                    started,
                )
            revoked = slot.failure if slot.revocations != revocations else None
            if revoked is not None:
                # Revoked while this fetch was in flight: what it read may be the revoked version.
                return self._record_failure(
                    slot, operation, revoked.code, revoked.message, False, started
                )
            return self._record_success(slot, operation, value, version, started)
        finally:
            # Cleared synchronously at completion, so a caller arriving later starts a new fetch.
            if slot.inflight is asyncio.current_task():
                slot.inflight = None
            self._entries.wake.set()

    async def _read(self, secret_type: SecretType) -> tuple[SecretValue, str]:
        accessed = await self._fetch(secret_type)
        value, version = accessed.value, str(accessed.version)
        if not isinstance(value, SecretValue):
            raise TypeError("fetch returned a value that is not a SecretValue")
        return value, version

    def _record_success(
        self,
        slot: Slot,
        operation: Operation,
        value: SecretValue,
        version: str,
        started: float,
    ) -> RefreshOutcome:
        entries = self._entries
        now = entries.monotonic()
        now_wall = entries.clock.now()
        previous = slot.gsm.version if slot.gsm else None
        failures_before = slot.consecutive_failures
        slot.gsm = CachedSecret(
            secret_type=slot.secret_type,
            value=value,
            version=version,
            fetched_at=now_wall,
            expires_at=now_wall + timedelta(seconds=entries.ttl),
            source=CacheSource.GSM,
            serve_until=now + entries.ttl + entries.max_stale,
            fresh_until=now + entries.ttl,
            fetched_monotonic=now,
        )
        slot.failure = None
        slot.consecutive_failures = 0
        slot.next_refresh_at = now + self._refresh_delay()
        slot.last_attempt_end = now
        slot.last_fetched_at = now_wall
        slot.last_fetched_monotonic = now
        entries.last_refresh_at = now_wall
        entries.publish(slot)
        duration = now - started
        entries.emit(
            Refreshed(
                secret_type=slot.secret_type,
                operation=operation,
                version=version,
                previous_version=previous,
                duration_seconds=duration,
                failures_before=failures_before,
            )
        )
        return RefreshOutcome(
            secret_type=slot.secret_type,
            operation=operation,
            ok=True,
            version=version,
            previous_version=previous,
            error=None,
            duration_seconds=duration,
        )

    def _record_failure(
        self,
        slot: Slot,
        operation: Operation,
        reason: str,
        message: str,
        transient: bool,
        started: float,
    ) -> RefreshOutcome:
        entries = self._entries
        now = entries.monotonic()
        now_wall = entries.clock.now()
        failure = FetchFailure(code=reason, message=message, at=now_wall, transient=transient)
        previous = slot.gsm
        slot.failure = failure
        entries.version += 1
        slot.consecutive_failures += 1
        slot.next_refresh_at = now + self._retry_delay(slot.consecutive_failures)
        slot.last_attempt_end = now
        entries.last_refresh_at = now_wall
        if not transient and previous is not None:
            slot.gsm = None  # fail closed: GSM refused this version for good
            entries.publish(slot)
        elif previous is not None and now >= previous.serve_until:
            entries.settle(slot.secret_type, now)
        entries.emit(
            RefreshFailed(
                secret_type=slot.secret_type,
                operation=operation,
                reason=reason,
                message=message,
                transient=transient,
                duration_seconds=now - started,
                consecutive_failures=slot.consecutive_failures,
                serving=slot.gsm is not None,
            )
        )
        if not transient and previous is not None:
            entries.emit(
                Evicted(secret_type=slot.secret_type, version=previous.version, reason=reason)
            )
        return RefreshOutcome(
            secret_type=slot.secret_type,
            operation=operation,
            ok=False,
            version=slot.gsm.version if slot.gsm else None,
            previous_version=previous.version if previous else None,
            error=failure,
            duration_seconds=now - started,
        )

    def _refresh_delay(self) -> float:
        spread = self._rng.uniform(-self._jitter, self._jitter)
        return self._entries.ttl * self._ahead * (1.0 + spread)

    def _retry_delay(self, failures: int) -> float:
        ceiling = min(self._retry_max, self._retry_initial * 2.0 ** min(failures - 1, 32))
        # Half fixed, half random: spread out, but never a tight loop against a failing GSM.
        return ceiling * self._rng.uniform(0.5, 1.0)

    # --- the background loop --------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                self._start_due()
                delay = self._seconds_until_due()
            except Exception as exc:
                # Our own bookkeeping failed (a bug): keep refreshing rather than go silent.
                self._entries.emit(RefresherStepFailed(error=exc))
                delay = self._retry_initial
            await self._nap(delay)

    def _start_due(self) -> list[asyncio.Task[RefreshOutcome]]:
        entries = self._entries
        now = entries.monotonic()
        for secret_type in entries.slots:
            entries.settle(secret_type, now)
        return [
            self._start_fetch(slot, Operation.REFRESH)
            for slot in entries.slots.values()
            if slot.inflight is None and slot.next_refresh_at <= now
        ]

    def _seconds_until_due(self) -> float:
        deadlines: list[float] = []
        for slot in self._entries.slots.values():
            if slot.inflight is None:  # a fetch in flight wakes the loop when it ends
                deadlines.append(slot.next_refresh_at)
            if slot.override is not None:
                deadlines.append(slot.override.serve_until)
            if slot.gsm is not None:
                deadlines.append(slot.gsm.serve_until)
        if not deadlines:
            return self._entries.ttl
        return max(0.0, min(deadlines) - self._entries.monotonic())

    async def _nap(self, delay: float) -> None:
        wake = self._entries.wake
        if not wake.is_set():
            sleeper = asyncio.ensure_future(self._sleep(delay))
            waker = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
        wake.clear()


def _raised_unexpectedly(secret_type: SecretType, exc: Exception) -> FetchRaisedUnexpectedly:
    where = traceback.extract_tb(exc.__traceback__)[-1:]
    return FetchRaisedUnexpectedly(
        secret_type=secret_type,
        error_type=type(exc).__name__,
        at=f"{where[0].filename}:{where[0].lineno}" if where else "?",
    )
