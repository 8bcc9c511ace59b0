"""``OmniSecretCache``: the in-process cache that serves ApeX Omni credentials on the hot path.

Readers call :meth:`OmniSecretCache.get` and receive an immutable :class:`CachedSecret` snapshot:
one dict lookup and one monotonic-clock comparison, with no lock, copy, I/O or ``await``. Everything
else (fetching, expiry, break-glass precedence) happens off the hot path and publishes a new
snapshot into the dict that ``get`` reads; a dict assignment is atomic, so a reader sees either the
old snapshot or the new one, never half of each.

Behaviour (design.md, "Cache" and "Break-glass"):

- **Hydration** fetches every catalog type concurrently (one GSM round trip in wall time).
- **Refresh-ahead.** A background task (:meth:`OmniSecretCache.start`) refreshes each entry at
  about ``refresh_ahead_fraction`` of the TTL, jittered; a failed fetch is retried with a bounded,
  jittered exponential backoff, and a missing type (never fetched, or dropped) is retried the same
  way, so an outage at startup heals without a restart.
- **Single-flight.** At most one ``fetch`` per type is in flight; every concurrent
  :meth:`~OmniSecretCache.refresh` caller awaits the same result. Readers keep the old snapshot
  meanwhile.
- **Failure classes.** A transient ``SecretStoreError`` (and any unexpected exception) keeps the old
  value served until ``expires_at + max_stale_seconds``; a permanent one drops the entry at once
  (fail closed). Per type the last failure and the consecutive-failure count are kept.
- **Expiry** is enforced by ``get`` itself: an entry past its serve window is never returned, even
  when no refresh ran.
- **Break-glass.** An installed override is served instead of the GSM entry until it ends (expiry
  on the monotonic clock, checked by ``get``, or removal); then the GSM entry is served again, and
  if there is none a refresh is requested.

The cache knows neither the database nor GSM: the service hands it a ``fetch`` coroutine that
resolves the pinned version and reads it. What the cache does is reported to a
:class:`~omni_secrets.domain.cache.events.CacheListener` (see ``cache_events.py``).

Threading: the cache belongs to one event loop; call its methods, ``get`` included, on that loop's
thread. (A hit only reads, but the slow path of ``get`` does bookkeeping and wakes the refresher.)
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from omni_secrets.domain.cache.events import (
    CacheEvent,
    CacheListener,
    Evicted,
    Expired,
    Hydrated,
    OverrideEnded,
    OverrideInstalled,
    OverrideStopReason,
    Refreshed,
    RefreshFailed,
)
from omni_secrets.domain.cache.models import (
    CachedSecret,
    CacheEntryInfo,
    CacheSource,
    CacheState,
    FetchFailure,
    HydrationReport,
    Operation,
    OverrideInfo,
    RefreshOutcome,
)
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import Clock, Sleep, SystemClock
from omni_secrets.domain.errors import SecretStoreError, UnknownSecretType
from omni_secrets.domain.secret_store import AccessedSecret
from omni_secrets.domain.values import SecretValue

__all__ = [
    "CacheEntryInfo",
    "CacheSource",
    "CacheState",
    "CachedSecret",
    "Fetch",
    "HydrationReport",
    "OmniSecretCache",
    "OverrideInfo",
    "RefreshOutcome",
]

logger = logging.getLogger(__name__)

Fetch = Callable[[SecretType], Awaitable[AccessedSecret]]
"""Reads the version of a type that should be served (the service resolves the pin)."""


DEFAULT_REFRESH_AHEAD_FRACTION = 0.8
DEFAULT_JITTER_FRACTION = 0.05
DEFAULT_RETRY_INITIAL_SECONDS = 1.0
DEFAULT_RETRY_MAX_SECONDS = 30.0
_UNEXPECTED_REASON = "UNKNOWN"


@dataclass(slots=True, eq=False)
class _Slot:
    """The mutable bookkeeping of one type; only the event loop touches it."""

    secret_type: SecretType
    required: bool
    gsm: CachedSecret | None = None
    override: CachedSecret | None = None
    failure: FetchFailure | None = None
    consecutive_failures: int = 0
    next_refresh_at: float = -math.inf
    last_attempt_end: float = -math.inf
    last_fetched_at: datetime | None = None
    last_fetched_monotonic: float | None = None
    inflight: asyncio.Task[RefreshOutcome] | None = None
    follow_up: asyncio.Task[RefreshOutcome] | None = None
    # Bumped by revoke(): a fetch that started before a revocation must not re-install its value.
    revocations: int = 0


class OmniSecretCache:
    """Serves the catalog's secrets from memory; refreshes them from GSM in the background.

    Typical wiring (the service does this)::

        cache = OmniSecretCache(catalog=catalog, fetch=service.fetch_pinned, ttl_seconds=300,
                                max_stale_seconds=0, clock=SystemClock(), listener=observer)
        await cache.hydrate()
        cache.start()
        ...
        entry = cache.get(SecretType.API_KEY)      # hot path; None when not served
        ...
        await cache.stop()

    Args:
        catalog: the types to serve; each is hydrated and kept fresh.
        fetch: reads the version of a type to serve. It raises ``SecretStoreError`` with
            ``transient`` set; anything else it raises counts as transient (reason ``UNKNOWN``).
        ttl_seconds: lifetime of a fetched value.
        max_stale_seconds: how long past its TTL a value may still be served while no fetch has
            succeeded (GSM failing transiently or hanging). 0 = never past the TTL.
        refresh_ahead_fraction: refresh at this fraction of the TTL (before expiry).
        jitter_fraction: relative spread of that point (``0.05`` = +/-5%), so replicas and
            types do not refresh in lockstep.
        clock: wall time for timestamps, monotonic time for freshness.
        listener: receives :mod:`~omni_secrets.domain.cache.events` events; its exceptions are
            logged and swallowed.
        rng: source of jitter (seed it in tests).
        sleep: how the background loop waits (inject one driven by a manual clock in tests).
        retry_initial_seconds: first retry delay after a failed fetch; doubles per failure.
        retry_max_seconds: cap of the retry delay (also the slowest retry of a missing type).

    Raises:
        ValueError: an argument is out of range (non-positive TTL, negative stale bound,
            refresh point or jitter that would land at or past the TTL, ...).

    .. warning:: ``max_stale_seconds`` trades availability for freshness: a value revoked in GSM
       keeps being served up to that long while GSM is unreachable. Permanent refusals
       (NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION) are never covered by it.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        fetch: Fetch,
        ttl_seconds: float,
        max_stale_seconds: float,
        refresh_ahead_fraction: float = DEFAULT_REFRESH_AHEAD_FRACTION,
        jitter_fraction: float = DEFAULT_JITTER_FRACTION,
        clock: Clock,
        listener: CacheListener | None = None,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        retry_initial_seconds: float = DEFAULT_RETRY_INITIAL_SECONDS,
        retry_max_seconds: float = DEFAULT_RETRY_MAX_SECONDS,
    ) -> None:
        if not ttl_seconds > 0:
            raise ValueError("ttl_seconds must be positive")
        if not max_stale_seconds >= 0:
            raise ValueError("max_stale_seconds must be >= 0")
        if not 0 < refresh_ahead_fraction < 1:
            raise ValueError("refresh_ahead_fraction must be between 0 and 1 (exclusive)")
        if not 0 <= jitter_fraction < 1:
            raise ValueError("jitter_fraction must be in [0, 1)")
        if refresh_ahead_fraction * (1 + jitter_fraction) >= 1:
            raise ValueError("refresh_ahead_fraction with jitter must stay below the TTL")
        if not 0 < retry_initial_seconds <= retry_max_seconds:
            raise ValueError("need 0 < retry_initial_seconds <= retry_max_seconds")
        self._catalog = catalog
        self._fetch = fetch
        self._ttl = float(ttl_seconds)
        self._max_stale = float(max_stale_seconds)
        self._ahead = float(refresh_ahead_fraction)
        self._jitter = float(jitter_fraction)
        self._clock = clock
        # SystemClock.monotonic is a Python wrapper around time.monotonic; calling the C function
        # directly takes a call frame off every cache hit.
        self._monotonic: Callable[[], float] = (
            time.monotonic if type(clock) is SystemClock else clock.monotonic
        )
        self._listener = listener
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not crypto
        self._sleep = sleep
        self._retry_initial = float(retry_initial_seconds)
        self._retry_max = float(retry_max_seconds)
        self._served: dict[SecretType, CachedSecret] = {}
        self._slots: dict[SecretType, _Slot] = {
            entry.secret_type: _Slot(entry.secret_type, entry.required) for entry in catalog
        }
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._hydrated_at: datetime | None = None
        self._last_refresh_at: datetime | None = None
        self._version = 0

    def __repr__(self) -> str:
        return (
            f"OmniSecretCache(types={len(self._slots)}, served={len(self._served)}, "
            f"ttl_seconds={self._ttl:g}, running={self.running})"
        )

    # --- the hot path ---------------------------------------------------------------------

    def get(self, secret_type: SecretType) -> CachedSecret | None:
        """The snapshot to serve for ``secret_type``, or None when nothing may be served.

        One dict lookup and one monotonic comparison: no lock, no copy, no I/O. Only when the
        served snapshot has just run out (an override expired, a GSM entry outlived its stale
        bound) does it take the slow path, which drops what ended and falls back (override →
        GSM entry) before answering.

        Args:
            secret_type: the type to read.

        Returns:
            The immutable snapshot (break-glass override first, else the GSM entry), or None:
            never fetched, dropped after a permanent error, expired, or not in the catalog.
        """
        entry = self._served.get(secret_type)
        if entry is None or self._monotonic() < entry.serve_until:
            return entry
        return self._settle(secret_type, self._monotonic())

    # --- lifecycle ------------------------------------------------------------------------

    async def hydrate(self) -> HydrationReport:
        """Fetch every catalog type concurrently, as at startup.

        Failures do not raise: they are in the report (and the background refresher, once
        started, retries the missing types).

        Returns:
            One outcome per catalog type, the duration and the resulting state.
        """
        started_at = self._clock.now()
        started = self._monotonic()
        outcomes = await self._refresh(None, Operation.HYDRATE, force_new=False)
        duration = self._monotonic() - started
        finished_at = self._clock.now()
        self._hydrated_at = finished_at
        self._version += 1
        state = self.state
        report = HydrationReport(
            outcomes=outcomes,
            started_at=started_at,
            finished_at=finished_at,
            duration_seconds=duration,
            state=state,
            missing_required=self.missing_required(),
        )
        self._emit(
            Hydrated(
                duration_seconds=duration,
                state=state,
                loaded=tuple(t for t, o in outcomes.items() if o.ok),
                failed=tuple(t for t, o in outcomes.items() if not o.ok),
            )
        )
        return report

    def start(self) -> None:
        """Start the background refresher on the running event loop.

        It refreshes each entry ahead of its expiry, retries failed and missing types with
        backoff (a type never fetched is fetched at once), drops what runs out and ends expired
        overrides. It never stops on a fetch error; :meth:`stop` ends it.

        Raises:
            RuntimeError: it is already running, or no event loop is running.
        """
        if self.running:
            raise RuntimeError("the cache refresher is already running")
        loop = asyncio.get_running_loop()
        self._runner = loop.create_task(self._run(), name="omni-secret-cache-refresher")

    async def stop(self) -> None:
        """Stop the background refresher and cancel fetches in flight; idempotent.

        Callers still awaiting :meth:`refresh` get ``CancelledError``. Served snapshots stay
        readable.
        """
        runner, self._runner = self._runner, None
        tasks = [task for task in (runner, *self._tasks) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for slot in self._slots.values():
            slot.inflight = None
            slot.follow_up = None

    @property
    def running(self) -> bool:
        """Whether the background refresher is running."""
        return self._runner is not None and not self._runner.done()

    # --- refreshing -----------------------------------------------------------------------

    async def refresh(
        self, types: Iterable[SecretType] | None = None, *, force_new: bool = False
    ) -> dict[SecretType, RefreshOutcome]:
        """Fetch ``types`` (default: the whole catalog) now, single-flight per type.

        A type whose fetch is already in flight is not fetched again: the caller awaits that
        fetch's outcome, however many callers there are. Readers keep the old snapshot until a
        fetch succeeds. Failures do not raise; they are in the outcomes.

        Args:
            types: the types to refresh; None for every catalog type.
            force_new: use after changing what ``fetch`` resolves (a rotation commit pinned a
                new version): a fetch already in flight may have resolved the old pin, so the
                caller waits for it and then joins a fetch that started after this call
                (concurrent ``force_new`` callers still share one).

        Returns:
            One outcome per requested type.

        Raises:
            UnknownSecretType: a type is not in the catalog.
        """
        return await self._refresh(types, Operation.REFRESH, force_new=force_new)

    def request_refresh(self, types: Iterable[SecretType] | None = None) -> None:
        """Ask the background refresher to fetch ``types`` soon, without waiting (FR-012 path).

        Cheap and safe to call on every request: a type fetched in flight is left alone, and a
        type whose last attempt ended less than ``retry_initial_seconds`` ago waits for that
        long, so a burst of requests cannot turn into a burst of GSM calls. Has no effect until
        :meth:`start` runs the refresher.

        Raises:
            UnknownSecretType: a type is not in the catalog.
        """
        now = self._monotonic()
        for slot in self._select(types):
            self._kick(slot, now)

    async def run_due_refreshes(self) -> float:
        """Run one step of the background refresher and wait for the fetches it started.

        Drops what ran out, starts a fetch for every type whose refresh (or retry) is due and
        that has none in flight, and awaits them. The background loop runs the same step
        without waiting; this awaiting form lets tests and tools drive the refresher by hand.

        Returns:
            Seconds until the next thing is due (a refresh, a retry, an expiry).
        """
        started = self._start_due()
        if started:
            await asyncio.wait(started)
        return self._seconds_until_due()

    # --- break-glass ----------------------------------------------------------------------

    def install_override(
        self,
        secret_type: SecretType,
        value: SecretValue,
        override_id: str,
        activated_at: datetime,
        expires_at: datetime,
    ) -> CachedSecret:
        """Serve ``value`` for ``secret_type`` instead of GSM until ``expires_at``.

        Expiry is converted to the monotonic clock once, here, and checked by ``get`` on every
        read, so the override stops being served at its expiry even if nothing else runs. A
        newer override replaces the current one; re-installing the same ``override_id`` (a
        reconcile after a restart or a notification) updates it without events.

        Args:
            secret_type: the type to override.
            value: the decrypted break-glass value.
            override_id: the override's id (as stored by the service).
            activated_at: when it was activated (UTC, aware).
            expires_at: when it ends (UTC, aware).

        Returns:
            The snapshot now served.

        Raises:
            UnknownSecretType: the type is not in the catalog.
            ValueError: a naive datetime, or ``expires_at`` is not in the future.
            TypeError: ``value`` is not a ``SecretValue``.
        """
        slot = self._slot(secret_type)
        if not isinstance(value, SecretValue):
            raise TypeError("a break-glass value must be a SecretValue")
        if activated_at.tzinfo is None or expires_at.tzinfo is None:
            raise ValueError("override times must be timezone-aware")
        now_wall = self._clock.now()
        now = self._monotonic()
        remaining = (expires_at - now_wall).total_seconds()
        if remaining <= 0:
            raise ValueError(f"override {override_id!r} has already expired")
        age = max(0.0, (now_wall - activated_at).total_seconds())
        entry = CachedSecret(
            secret_type=slot.secret_type,
            value=value,
            version=None,
            fetched_at=activated_at,
            expires_at=expires_at,
            source=CacheSource.BREAK_GLASS,
            serve_until=now + remaining,
            fresh_until=now + remaining,
            fetched_monotonic=now - age,
            override_id=override_id,
        )
        previous = slot.override
        slot.override = entry
        self._publish(slot)
        # The loop may be asleep until a later deadline; it must wake for this expiry.
        self._wake.set()
        if previous is not None and previous.override_id == override_id:
            return entry
        if previous is not None and previous.override_id is not None:
            self._emit(
                OverrideEnded(
                    secret_type=slot.secret_type,
                    override_id=previous.override_id,
                    reason=OverrideStopReason.REPLACED,
                    reverted_to=CacheSource.BREAK_GLASS,
                )
            )
        self._emit(
            OverrideInstalled(
                secret_type=slot.secret_type,
                override_id=override_id,
                activated_at=activated_at,
                expires_at=expires_at,
            )
        )
        return entry

    def remove_override(self, secret_type: SecretType, override_id: str | None = None) -> bool:
        """Stop serving the break-glass override of ``secret_type`` (a revoke).

        The type reverts to its GSM entry; when that is missing or has run out, a refresh is
        requested from the background refresher.

        Args:
            secret_type: the overridden type.
            override_id: remove only this override; None removes whichever is active.

        Returns:
            True when an override was removed; False when none (or another one) was active.

        Raises:
            UnknownSecretType: the type is not in the catalog.
        """
        slot = self._slot(secret_type)
        current = slot.override
        if current is None or current.override_id is None:
            return False
        if override_id is not None and current.override_id != override_id:
            return False
        slot.override = None
        self._publish(slot)
        self._end_override(slot, current.override_id, OverrideStopReason.REMOVED)
        return True

    def revoke(self, secret_type: SecretType, version: str | None, code: str, message: str) -> bool:
        """Stop serving the GSM entry of ``secret_type`` at once: GSM revoked its version.

        Whatever the TTL or the stale window, the entry is dropped when ``version`` is the one
        served (or None: any version, the secret is gone), and ``code``/``message`` become the
        type's last error. A break-glass override is untouched and keeps being served. The
        background refresher keeps retrying the type; the service's ``fetch`` decides whether
        GSM allows serving it again.

        Args:
            secret_type: the type.
            version: the revoked version; None for every version.
            code: the ``lastError.code`` (``VERSION_DISABLED``, ``SECRET_DELETED``).
            message: a sentence safe to show.

        Returns:
            True when a served GSM entry was dropped.

        Raises:
            UnknownSecretType: the type is not in the catalog.
        """
        slot = self._slot(secret_type)
        current = slot.gsm
        if current is not None and version is not None and current.version != version:
            return False  # another version is served: this revocation is not about it
        now = self._monotonic()
        slot.revocations += 1
        slot.failure = FetchFailure(
            code=code, message=message, at=self._clock.now(), transient=False
        )
        self._version += 1
        # Retry later, not at once: the fetch would only confirm what the event just said.
        slot.next_refresh_at = max(slot.next_refresh_at, now + self._retry_initial)
        if current is None:
            return False
        slot.gsm = None
        self._publish(slot)
        self._emit(Evicted(secret_type=slot.secret_type, version=current.version, reason=code))
        return True

    # --- introspection --------------------------------------------------------------------

    @property
    def state(self) -> CacheState:
        """``ready``, ``degraded`` or ``empty`` as the contract defines them, right now."""
        served = {slot.secret_type for slot in self._slots.values() if self.get(slot.secret_type)}
        if not served:
            return CacheState.EMPTY
        if all(slot.secret_type in served for slot in self._slots.values() if slot.required):
            return CacheState.READY
        return CacheState.DEGRADED

    def missing_required(self) -> tuple[SecretType, ...]:
        """The required types that ``get`` would not serve now, in catalog order."""
        return tuple(
            slot.secret_type
            for slot in self._slots.values()
            if slot.required and self.get(slot.secret_type) is None
        )

    def describe(self, secret_type: SecretType) -> CacheEntryInfo:
        """Everything status shows about ``secret_type``, without its value.

        Raises:
            UnknownSecretType: the type is not in the catalog.
        """
        slot = self._slot(secret_type)
        served = self.get(slot.secret_type)
        now = self._monotonic()
        return CacheEntryInfo(
            secret_type=slot.secret_type,
            required=slot.required,
            source=served.source if served else None,
            version=served.version if served else None,
            fetched_at=served.fetched_at if served else None,
            expires_at=served.expires_at if served else None,
            age_seconds=served.age_seconds(now) if served else None,
            stale=served is not None and served.stale(now),
            last_error=slot.failure,
            consecutive_failures=slot.consecutive_failures,
            override=_override_info(slot),
            gsm_version=slot.gsm.version if slot.gsm else None,
            last_fetched_at=slot.last_fetched_at,
            seconds_since_fetch=(
                now - slot.last_fetched_monotonic
                if slot.last_fetched_monotonic is not None
                else math.inf
            ),
            refreshing=slot.inflight is not None,
            next_refresh_in_seconds=None
            if slot.inflight is not None
            else slot.next_refresh_at - now,
        )

    def status_of(self, secret_type: SecretType) -> tuple[CachedSecret | None, FetchFailure | None]:
        """What ``get`` serves for ``secret_type`` and the last failed fetch (None after a
        success): the two immutable snapshots status is drawn from, without building the rest
        of :meth:`describe` (status asks for every type on every call).

        Raises:
            UnknownSecretType: the type is not in the catalog.
        """
        slot = self._slot(secret_type)
        return self.get(slot.secret_type), slot.failure

    def monotonic(self) -> float:
        """The monotonic clock that ages and deadlines are measured on."""
        return self._monotonic()

    def override_info(self, secret_type: SecretType) -> OverrideInfo | None:
        """The break-glass override served for ``secret_type`` now, if any (no value).

        The same as ``describe(secret_type).override``, for status's break-glass column, which
        needs nothing else.

        Raises:
            UnknownSecretType: the type is not in the catalog.
        """
        slot = self._slot(secret_type)
        self.get(slot.secret_type)  # drops an override that has just run out, as describe does
        return _override_info(slot)

    def entries(self) -> tuple[CacheEntryInfo, ...]:
        """:meth:`describe` for every catalog type, in catalog order."""
        return tuple(self.describe(secret_type) for secret_type in self._slots)

    @property
    def version(self) -> int:
        """Grows with every change status shows: what is served, a fetch's failure, a hydration.

        Every successful fetch counts (it publishes a new snapshot, even of the same version), and
        so does every failed one. Lets a reader tell "nothing changed" without comparing.
        """
        return self._version

    @property
    def hydrated_at(self) -> datetime | None:
        """When the last :meth:`hydrate` finished (whatever its outcome); None before."""
        return self._hydrated_at

    @property
    def last_refresh_at(self) -> datetime | None:
        """When the most recent fetch of any type finished (success or failure); None before."""
        return self._last_refresh_at

    @property
    def ttl_seconds(self) -> float:
        """The configured entry lifetime."""
        return self._ttl

    # --- internals: fetching ---------------------------------------------------------------

    def _slot(self, secret_type: SecretType) -> _Slot:
        slot = self._slots.get(secret_type)
        if slot is None:
            raise UnknownSecretType(str(secret_type))
        return slot

    def _select(self, types: Iterable[SecretType] | None) -> list[_Slot]:
        if types is None:
            return list(self._slots.values())
        chosen: dict[SecretType, _Slot] = {}
        for secret_type in types:
            slot = self._slot(secret_type)
            chosen.setdefault(slot.secret_type, slot)
        return list(chosen.values())

    async def _refresh(
        self, types: Iterable[SecretType] | None, operation: Operation, *, force_new: bool
    ) -> dict[SecretType, RefreshOutcome]:
        tasks = [self._join(slot, operation, force_new) for slot in self._select(types)]
        pending = [task for task in tasks if not task.done()]
        if pending:
            # asyncio.wait, unlike gather, does not cancel the tasks when this caller is
            # cancelled: a caller that gives up must not cancel a fetch other callers share.
            await asyncio.wait(pending)
        return {outcome.secret_type: outcome for outcome in (task.result() for task in tasks)}

    def _join(
        self, slot: _Slot, operation: Operation, force_new: bool
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
        self, slot: _Slot, current: asyncio.Task[RefreshOutcome], operation: Operation
    ) -> RefreshOutcome:
        await asyncio.wait((current,))
        slot.follow_up = None
        # Any fetch in flight now started after ``current`` ended, hence after our callers.
        return await asyncio.shield(self._join(slot, operation, force_new=False))

    def _start_fetch(self, slot: _Slot, operation: Operation) -> asyncio.Task[RefreshOutcome]:
        task = self._spawn(self._run_fetch(slot, operation))
        slot.inflight = task
        return task

    def _spawn(self, coro: Coroutine[Any, Any, RefreshOutcome]) -> asyncio.Task[RefreshOutcome]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run_fetch(self, slot: _Slot, operation: Operation) -> RefreshOutcome:
        started = self._monotonic()
        revocations = slot.revocations
        try:
            try:
                accessed = await self._fetch(slot.secret_type)
                value, version = accessed.value, str(accessed.version)
                if not isinstance(value, SecretValue):
                    raise TypeError("fetch returned a value that is not a SecretValue")
            except SecretStoreError as exc:
                return self._record_failure(
                    slot, operation, exc.reason, exc.message, exc.transient, started
                )
            except Exception as exc:
                # fetch belongs to the service; a bug there must not stop the refresher. Only the
                # type and the place are logged: an unknown exception's text could hold anything.
                where = traceback.extract_tb(exc.__traceback__)[-1:]
                logger.warning(
                    "cache.fetch_unexpected_error secret_type=%s error=%s at=%s",
                    slot.secret_type.value,
                    type(exc).__name__,
                    f"{where[0].filename}:{where[0].lineno}" if where else "?",
                )
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
            self._wake.set()

    def _record_success(
        self,
        slot: _Slot,
        operation: Operation,
        value: SecretValue,
        version: str,
        started: float,
    ) -> RefreshOutcome:
        now = self._monotonic()
        now_wall = self._clock.now()
        previous = slot.gsm.version if slot.gsm else None
        failures_before = slot.consecutive_failures
        slot.gsm = CachedSecret(
            secret_type=slot.secret_type,
            value=value,
            version=version,
            fetched_at=now_wall,
            expires_at=now_wall + timedelta(seconds=self._ttl),
            source=CacheSource.GSM,
            serve_until=now + self._ttl + self._max_stale,
            fresh_until=now + self._ttl,
            fetched_monotonic=now,
        )
        slot.failure = None
        slot.consecutive_failures = 0
        slot.next_refresh_at = now + self._refresh_delay()
        slot.last_attempt_end = now
        slot.last_fetched_at = now_wall
        slot.last_fetched_monotonic = now
        self._last_refresh_at = now_wall
        self._publish(slot)
        duration = now - started
        self._emit(
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
        slot: _Slot,
        operation: Operation,
        reason: str,
        message: str,
        transient: bool,
        started: float,
    ) -> RefreshOutcome:
        now = self._monotonic()
        now_wall = self._clock.now()
        failure = FetchFailure(code=reason, message=message, at=now_wall, transient=transient)
        previous = slot.gsm
        slot.failure = failure
        self._version += 1
        slot.consecutive_failures += 1
        slot.next_refresh_at = now + self._retry_delay(slot.consecutive_failures)
        slot.last_attempt_end = now
        self._last_refresh_at = now_wall
        if not transient and previous is not None:
            slot.gsm = None  # fail closed: GSM refused this version for good
            self._publish(slot)
        elif previous is not None and now >= previous.serve_until:
            self._settle(slot.secret_type, now)
        self._emit(
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
            self._emit(
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
        return self._ttl * self._ahead * (1.0 + spread)

    def _retry_delay(self, failures: int) -> float:
        ceiling = min(self._retry_max, self._retry_initial * 2.0 ** min(failures - 1, 32))
        # Half fixed, half random: spread out, but never a tight loop against a failing GSM.
        return ceiling * self._rng.uniform(0.5, 1.0)

    # --- internals: serving ---------------------------------------------------------------

    def _publish(self, slot: _Slot) -> None:
        self._version += 1
        served = slot.override if slot.override is not None else slot.gsm
        if served is None:
            self._served.pop(slot.secret_type, None)
        else:
            self._served[slot.secret_type] = served

    def _settle(self, secret_type: SecretType, now: float) -> CachedSecret | None:
        """Drop what has run out for ``secret_type`` at monotonic ``now``; return what is served."""
        slot = self._slots.get(secret_type)
        if slot is None:
            return None
        ended = slot.override
        if ended is not None and now >= ended.serve_until:
            slot.override = None
        else:
            ended = None
        expired = slot.gsm
        if expired is not None and now >= expired.serve_until:
            slot.gsm = None
            slot.next_refresh_at = min(slot.next_refresh_at, now)
        else:
            expired = None
        if ended is None and expired is None:
            return self._served.get(secret_type)
        self._publish(slot)
        if expired is not None:
            self._wake.set()
            self._emit(
                Expired(
                    secret_type=slot.secret_type,
                    version=expired.version,
                    expires_at=expired.expires_at,
                    stale_seconds=expired.serve_until - expired.fresh_until,
                )
            )
        if ended is not None and ended.override_id is not None:
            self._end_override(slot, ended.override_id, OverrideStopReason.EXPIRED)
        return self._served.get(secret_type)

    def _end_override(self, slot: _Slot, override_id: str, reason: OverrideStopReason) -> None:
        now = self._monotonic()
        if slot.gsm is not None and now >= slot.gsm.serve_until:
            self._settle(slot.secret_type, now)
        if slot.gsm is None:
            self._kick(slot, now)
        self._emit(
            OverrideEnded(
                secret_type=slot.secret_type,
                override_id=override_id,
                reason=reason,
                reverted_to=CacheSource.GSM if slot.gsm is not None else None,
            )
        )

    def _kick(self, slot: _Slot, now: float) -> None:
        soonest = max(now, slot.last_attempt_end + self._retry_initial)
        slot.next_refresh_at = min(slot.next_refresh_at, soonest)
        self._wake.set()

    # --- internals: the background loop ----------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                self._start_due()
                delay = self._seconds_until_due()
            except Exception:
                # Our own bookkeeping failed (a bug): keep refreshing rather than go silent.
                logger.exception("cache.refresher_step_failed")
                delay = self._retry_initial
            await self._nap(delay)

    def _start_due(self) -> list[asyncio.Task[RefreshOutcome]]:
        now = self._monotonic()
        for secret_type in self._slots:
            self._settle(secret_type, now)
        return [
            self._start_fetch(slot, Operation.REFRESH)
            for slot in self._slots.values()
            if slot.inflight is None and slot.next_refresh_at <= now
        ]

    def _seconds_until_due(self) -> float:
        deadlines: list[float] = []
        for slot in self._slots.values():
            if slot.inflight is None:  # a fetch in flight wakes the loop when it ends
                deadlines.append(slot.next_refresh_at)
            if slot.override is not None:
                deadlines.append(slot.override.serve_until)
            if slot.gsm is not None:
                deadlines.append(slot.gsm.serve_until)
        if not deadlines:
            return self._ttl
        return max(0.0, min(deadlines) - self._monotonic())

    async def _nap(self, delay: float) -> None:
        if not self._wake.is_set():
            sleeper = asyncio.ensure_future(self._sleep(delay))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
        self._wake.clear()

    def _emit(self, event: CacheEvent) -> None:
        if self._listener is None:
            return
        try:
            self._listener.on_event(event)
        except Exception:
            # Observability must never break serving; the event carries no value to leak.
            logger.exception("cache.listener_failed event=%s", type(event).__name__)


def _override_info(slot: _Slot) -> OverrideInfo | None:
    override = slot.override
    if override is None or override.override_id is None:
        return None
    return OverrideInfo(
        override_id=override.override_id,
        activated_at=override.fetched_at,
        expires_at=override.expires_at,
    )
