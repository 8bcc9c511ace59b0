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
:class:`~omni_secrets.domain.cache.events.CacheListener` (see ``events.py``); the cache does not
log.

:class:`OmniSecretCache` is the one object the rest of the code holds. It keeps the hot path
(``get``) itself and hands everything else to one part per job, all sharing one
:class:`~omni_secrets.domain.cache.entries.CacheEntries` (the slots and the served snapshots):
:class:`~omni_secrets.domain.cache.refresher.Refresher` (single-flight fetches, the background
refresher), :class:`~omni_secrets.domain.cache.overrides.OverrideLayer` (break-glass overrides,
revocations) and :class:`~omni_secrets.domain.cache.readout.CacheReadout` (what status reads).

Threading: the cache belongs to one event loop; call its methods, ``get`` included, on that loop's
thread. (A hit only reads, but the slow path of ``get`` does bookkeeping and wakes the refresher.)
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from omni_secrets.domain.cache.entries import CacheEntries
from omni_secrets.domain.cache.events import CacheListener, Hydrated
from omni_secrets.domain.cache.models import (
    CachedSecret,
    CacheEntryInfo,
    CacheState,
    FetchFailure,
    HydrationReport,
    Operation,
    OverrideInfo,
    RefreshOutcome,
)
from omni_secrets.domain.cache.overrides import OverrideLayer
from omni_secrets.domain.cache.readout import CacheReadout
from omni_secrets.domain.cache.refresher import Fetch, Refresher
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import Clock, Sleep, SystemClock
from omni_secrets.domain.values import SecretValue

__all__ = ["Fetch", "OmniSecretCache"]

DEFAULT_REFRESH_AHEAD_FRACTION = 0.8
DEFAULT_JITTER_FRACTION = 0.05
DEFAULT_RETRY_INITIAL_SECONDS = 1.0
DEFAULT_RETRY_MAX_SECONDS = 30.0


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
            swallowed and reported back to it once (``ListenerFailed``).
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
        _check_settings(
            ttl_seconds=ttl_seconds,
            max_stale_seconds=max_stale_seconds,
            refresh_ahead_fraction=refresh_ahead_fraction,
            jitter_fraction=jitter_fraction,
            retry_initial_seconds=retry_initial_seconds,
            retry_max_seconds=retry_max_seconds,
        )
        self._clock = clock
        entries = CacheEntries(
            catalog=catalog,
            clock=clock,
            # SystemClock.monotonic is a Python wrapper around time.monotonic; calling the C
            # function directly takes a call frame off every cache hit.
            monotonic=time.monotonic if type(clock) is SystemClock else clock.monotonic,
            ttl_seconds=float(ttl_seconds),
            max_stale_seconds=float(max_stale_seconds),
            retry_floor_seconds=float(retry_initial_seconds),
            listener=listener,
        )
        self._entries = entries
        self._refresher = Refresher(
            entries,
            fetch=fetch,
            refresh_ahead_fraction=float(refresh_ahead_fraction),
            jitter_fraction=float(jitter_fraction),
            rng=rng if rng is not None else random.Random(),  # noqa: S311 - jitter, not crypto
            sleep=sleep,
            retry_initial_seconds=float(retry_initial_seconds),
            retry_max_seconds=float(retry_max_seconds),
        )
        self._overrides = OverrideLayer(entries)
        self._readout = CacheReadout(entries)
        # The hot path reads these directly: the same dict and clock the parts use, one attribute
        # lookup each, as when they lived on this class.
        self._served = entries.served
        self._monotonic: Callable[[], float] = entries.monotonic
        self._settle = entries.settle

    def __repr__(self) -> str:
        return (
            f"OmniSecretCache(types={len(self._entries.slots)}, served={len(self._served)}, "
            f"ttl_seconds={self._entries.ttl:g}, running={self.running})"
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
        outcomes = await self._refresher.refresh(None, Operation.HYDRATE, force_new=False)
        duration = self._monotonic() - started
        finished_at = self._clock.now()
        self._entries.hydrated_at = finished_at
        self._entries.version += 1
        state = self.state
        report = HydrationReport(
            outcomes=outcomes,
            started_at=started_at,
            finished_at=finished_at,
            duration_seconds=duration,
            state=state,
            missing_required=self.missing_required(),
        )
        self._entries.emit(
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
        self._refresher.start()

    async def stop(self) -> None:
        """Stop the background refresher and cancel fetches in flight; idempotent.

        Callers still awaiting :meth:`refresh` get ``CancelledError``. Served snapshots stay
        readable.
        """
        await self._refresher.stop()

    @property
    def running(self) -> bool:
        """Whether the background refresher is running."""
        return self._refresher.running

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
        return await self._refresher.refresh(types, Operation.REFRESH, force_new=force_new)

    def request_refresh(self, types: Iterable[SecretType] | None = None) -> None:
        """Ask the background refresher to fetch ``types`` soon, without waiting (FR-012 path).

        Cheap and safe to call on every request: a type fetched in flight is left alone, and a
        type whose last attempt ended less than ``retry_initial_seconds`` ago waits for that
        long, so a burst of requests cannot turn into a burst of GSM calls. Has no effect until
        :meth:`start` runs the refresher.

        Raises:
            UnknownSecretType: a type is not in the catalog.
        """
        self._refresher.request_refresh(types)

    async def run_due_refreshes(self) -> float:
        """Run one step of the background refresher and wait for the fetches it started.

        Drops what ran out, starts a fetch for every type whose refresh (or retry) is due and
        that has none in flight, and awaits them. The background loop runs the same step
        without waiting; this awaiting form lets tests and tools drive the refresher by hand.

        Returns:
            Seconds until the next thing is due (a refresh, a retry, an expiry).
        """
        return await self._refresher.run_due_refreshes()

    # --- overrides: break-glass and revocation -------------------------------------------

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
        return self._overrides.install(secret_type, value, override_id, activated_at, expires_at)

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
        return self._overrides.remove(secret_type, override_id)

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
        return self._overrides.revoke(secret_type, version, code, message)

    # --- introspection --------------------------------------------------------------------

    @property
    def state(self) -> CacheState:
        """``ready``, ``degraded`` or ``empty`` as the contract defines them, right now."""
        return self._readout.state

    def missing_required(self) -> tuple[SecretType, ...]:
        """The required types that ``get`` would not serve now, in catalog order."""
        return self._readout.missing_required()

    def describe(self, secret_type: SecretType) -> CacheEntryInfo:
        """Everything status shows about ``secret_type``, without its value.

        Raises:
            UnknownSecretType: the type is not in the catalog.
        """
        return self._readout.describe(secret_type)

    def status_of(self, secret_type: SecretType) -> tuple[CachedSecret | None, FetchFailure | None]:
        """What ``get`` serves for ``secret_type`` and the last failed fetch (None after a
        success): the two immutable snapshots status is drawn from, without building the rest
        of :meth:`describe` (status asks for every type on every call).

        Raises:
            UnknownSecretType: the type is not in the catalog.
        """
        return self._readout.status_of(secret_type)

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
        return self._readout.override_info(secret_type)

    def entries(self) -> tuple[CacheEntryInfo, ...]:
        """:meth:`describe` for every catalog type, in catalog order."""
        return self._readout.entries()

    @property
    def version(self) -> int:
        """Grows with every change status shows: what is served, a fetch's failure, a hydration.

        Every successful fetch counts (it publishes a new snapshot, even of the same version), and
        so does every failed one. Lets a reader tell "nothing changed" without comparing.
        """
        return self._readout.version

    @property
    def hydrated_at(self) -> datetime | None:
        """When the last :meth:`hydrate` finished (whatever its outcome); None before."""
        return self._readout.hydrated_at

    @property
    def last_refresh_at(self) -> datetime | None:
        """When the most recent fetch of any type finished (success or failure); None before."""
        return self._readout.last_refresh_at

    @property
    def ttl_seconds(self) -> float:
        """The configured entry lifetime."""
        return self._entries.ttl


def _check_settings(
    *,
    ttl_seconds: float,
    max_stale_seconds: float,
    refresh_ahead_fraction: float,
    jitter_fraction: float,
    retry_initial_seconds: float,
    retry_max_seconds: float,
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
