"""Unit tests of ``OmniSecretCache``: a manual clock and stateful fetch fakes, no real sleeps."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from omni_secrets.domain.cache import (
    CachedSecret,
    CacheSource,
    CacheState,
    OmniSecretCache,
)
from omni_secrets.domain.cache.events import (
    CacheEvent,
    Evicted,
    Expired,
    FetchRaisedUnexpectedly,
    Hydrated,
    ListenerFailed,
    OverrideEnded,
    OverrideInstalled,
    OverrideStopReason,
    Refreshed,
    RefresherStepFailed,
    RefreshFailed,
)
from omni_secrets.domain.cache.models import Operation
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import ChecksumMismatch, SecretStoreError
from omni_secrets.domain.secret_store import AccessedSecret
from omni_secrets.domain.values import SecretValue

TTL = 100.0
ALL_TYPES = tuple(SecretType)
REQUIRED = (SecretType.API_KEY, SecretType.API_SECRET, SecretType.API_PASSPHRASE)


# --- fakes ------------------------------------------------------------------------------------


def fake_value(secret_type: SecretType, version: str) -> str:
    return f"fake-{secret_type.value}-v{version}"


class FakeFetch:
    """A stateful stand-in for the service's fetch: pinned versions, scripted failures, a gate."""

    def __init__(self) -> None:
        self.pinned: dict[SecretType, str] = {}
        self.calls: list[SecretType] = []
        self.scripted: dict[SecretType, list[BaseException]] = {}
        self.fail_all: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    def fail_next(self, secret_type: SecretType, *errors: BaseException) -> None:
        self.scripted.setdefault(secret_type, []).extend(errors)

    def count(self, secret_type: SecretType) -> int:
        return self.calls.count(secret_type)

    async def __call__(self, secret_type: SecretType) -> AccessedSecret:
        self.calls.append(secret_type)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            version = self.pinned.get(secret_type, "1")
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
            if self.fail_all is not None:
                raise self.fail_all
            queue = self.scripted.get(secret_type)
            if queue:
                raise queue.pop(0)
            return AccessedSecret(
                secret_id=f"apex-omni-{secret_type.value}",
                version=version,
                value=SecretValue(fake_value(secret_type, version)),
            )
        finally:
            self.in_flight -= 1


class RecordingListener:
    """Keeps every event it receives."""

    def __init__(self) -> None:
        self.events: list[CacheEvent] = []

    def on_event(self, event: CacheEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


class ExplodingListener:
    """A listener whose every call fails."""

    def __init__(self) -> None:
        self.calls = 0

    def on_event(self, event: CacheEvent) -> None:
        self.calls += 1
        raise RuntimeError("listener is broken")


class PickyListener(RecordingListener):
    """Fails on every event of one type; records the others (its own failure reports included)."""

    def __init__(self, fails_on: type[Any]) -> None:
        super().__init__()
        self.fails_on = fails_on

    def on_event(self, event: CacheEvent) -> None:
        if isinstance(event, self.fails_on):
            raise RuntimeError(f"listener cannot take {type(event).__name__}")
        super().on_event(event)


class StumblingClock(ManualClock):
    """A manual clock whose monotonic reading fails once when armed (a bug in bookkeeping)."""

    def __init__(self) -> None:
        super().__init__()
        self.stumble = False

    def monotonic(self) -> float:
        if self.stumble:
            self.stumble = False
            raise RuntimeError("fake bookkeeping fault")
        return super().monotonic()


class EdgeRandom(random.Random):
    """An rng whose ``uniform`` always returns one end of the range."""

    def __init__(self, upper: bool) -> None:
        super().__init__(0)
        self.upper = upper

    def uniform(self, a: float, b: float) -> float:
        return b if self.upper else a


class SteppedSleep:
    """Injectable sleep for the background loop: records each delay, blocks until released."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self._pending: asyncio.Future[None] | None = None

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self._pending = asyncio.get_running_loop().create_future()
        try:
            await self._pending
        finally:
            self._pending = None

    async def next_sleep(self) -> float:
        """Wait until the loop is asleep and stays asleep; return the delay it asked for."""
        quiet, seen = 0, None
        for _ in range(2_000):
            await asyncio.sleep(0)
            if self._pending is not None and self._pending is seen:
                quiet += 1
                if quiet >= 20:
                    return self.delays[-1]
            else:
                quiet, seen = 0, self._pending
        raise AssertionError("the refresher never settled into a sleep")

    def wake(self) -> None:
        """End the current sleep after moving the clock forward by the delay it asked for."""
        assert self._pending is not None
        self.clock.advance(self.delays[-1])
        self._pending.set_result(None)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fetch() -> FakeFetch:
    return FakeFetch()


@pytest.fixture
def listener() -> RecordingListener:
    return RecordingListener()


@pytest.fixture
async def make_cache(
    clock: ManualClock, fetch: FakeFetch, listener: RecordingListener
) -> AsyncIterator[Callable[..., OmniSecretCache]]:
    made: list[OmniSecretCache] = []

    def build(**overrides: Any) -> OmniSecretCache:
        options: dict[str, Any] = {
            "catalog": Catalog(),
            "fetch": fetch,
            "ttl_seconds": TTL,
            "max_stale_seconds": 0,
            "jitter_fraction": 0.0,
            "clock": clock,
            "listener": listener,
            "rng": random.Random(7),
        }
        options.update(overrides)
        cache = OmniSecretCache(**options)
        made.append(cache)
        return cache

    yield build
    if fetch.gate is not None:
        fetch.gate.set()
    for cache in made:
        await cache.stop()


def transient(reason: str = "UNAVAILABLE") -> SecretStoreError:
    return SecretStoreError("GSM is unreachable", reason=reason, transient=True)


def permanent(reason: str) -> SecretStoreError:
    return SecretStoreError(f"GSM refused: {reason}", reason=reason, transient=False)


async def settle_tasks() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


# --- tests ------------------------------------------------------------------------------------


class TestConstruction:
    @pytest.mark.parametrize(
        "overrides",
        [
            {"ttl_seconds": 0},
            {"max_stale_seconds": -1},
            {"refresh_ahead_fraction": 1.0},
            {"refresh_ahead_fraction": 0.0},
            {"jitter_fraction": -0.1},
            {"refresh_ahead_fraction": 0.95, "jitter_fraction": 0.1},
            {"retry_initial_seconds": 0},
            {"retry_initial_seconds": 10, "retry_max_seconds": 5},
        ],
    )
    def test_rejects_out_of_range_settings(
        self, make_cache: Callable[..., OmniSecretCache], overrides: dict[str, Any]
    ) -> None:
        """A setting that would make the cache serve wrongly or spin is refused."""
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            make_cache(**overrides)

    async def test_start_twice_is_refused(self, make_cache: Callable[..., OmniSecretCache]) -> None:
        """Starting a running refresher is a programming error."""
        cache = make_cache(sleep=SteppedSleep(ManualClock()))
        cache.start()
        with pytest.raises(RuntimeError):
            cache.start()
        await cache.stop()
        assert not cache.running


class TestGet:
    async def test_nothing_is_served_before_hydration(
        self, make_cache: Callable[..., OmniSecretCache]
    ) -> None:
        """An empty cache answers None without fetching."""
        cache = make_cache()
        assert cache.get(SecretType.API_KEY) is None
        assert cache.state is CacheState.EMPTY

    async def test_hit_returns_the_immutable_snapshot(
        self, make_cache: Callable[..., OmniSecretCache], clock: ManualClock
    ) -> None:
        """A hit is the snapshot with value, version, timestamps and source."""
        cache = make_cache()
        await cache.hydrate()
        entry = cache.get(SecretType.API_SECRET)
        assert entry is not None
        assert entry.value.reveal() == fake_value(SecretType.API_SECRET, "1")
        assert entry.version == "1"
        assert entry.source is CacheSource.GSM
        assert entry.fetched_at == clock.now()
        assert entry.expires_at == clock.now() + timedelta(seconds=TTL)
        assert cache.get(SecretType.API_SECRET) is entry
        with pytest.raises(AttributeError):
            entry.version = "2"  # type: ignore[misc]

    async def test_entry_is_not_served_past_its_ttl_even_without_a_refresh(
        self, make_cache: Callable[..., OmniSecretCache], clock: ManualClock, listener: Any
    ) -> None:
        """Expiry is enforced by get itself: at expires_at the entry stops being served."""
        cache = make_cache()
        await cache.hydrate()
        clock.advance(TTL - 0.001)
        assert cache.get(SecretType.API_KEY) is not None
        clock.advance(0.001)
        assert cache.get(SecretType.API_KEY) is None
        expired = listener.of(Expired)
        assert [event.secret_type for event in expired] == [SecretType.API_KEY]
        assert expired[0].stale_seconds == 0


class TestHydrate:
    async def test_hydration_fetches_every_type_concurrently(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """All five fetches are in flight at once (one round trip in wall time)."""
        fetch.gate = asyncio.Event()
        cache = make_cache()
        hydration = asyncio.create_task(cache.hydrate())
        await settle_tasks()
        assert fetch.in_flight == len(ALL_TYPES)
        fetch.gate.set()
        report = await hydration
        assert fetch.max_in_flight == len(ALL_TYPES)
        assert sorted(fetch.calls) == sorted(ALL_TYPES)
        assert report.state is CacheState.READY
        assert set(report.outcomes) == set(ALL_TYPES)
        assert all(outcome.ok for outcome in report.outcomes.values())

    async def test_hydration_reports_and_emits(
        self,
        make_cache: Callable[..., OmniSecretCache],
        fetch: FakeFetch,
        listener: RecordingListener,
        clock: ManualClock,
    ) -> None:
        """The report and the events say what loaded and what failed."""
        fetch.fail_next(SecretType.ZK_SEEDS, permanent("NOT_FOUND"))
        cache = make_cache()
        report = await cache.hydrate()
        assert report.state is CacheState.READY
        assert report.missing_required == ()
        assert report.outcomes[SecretType.ZK_SEEDS].error is not None
        assert report.outcomes[SecretType.ZK_SEEDS].error.code == "NOT_FOUND"
        assert cache.hydrated_at == clock.now()
        refreshed = listener.of(Refreshed)
        assert {event.operation for event in refreshed} == {Operation.HYDRATE}
        assert len(refreshed) == 4
        (hydrated,) = listener.of(Hydrated)
        assert hydrated.failed == (SecretType.ZK_SEEDS,)
        assert len(hydrated.loaded) == 4
        assert hydrated.state is CacheState.READY

    async def test_outage_at_startup_leaves_the_cache_empty(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """With GSM down, hydration finishes (no exception) and the state is empty."""
        fetch.fail_all = transient()
        cache = make_cache()
        report = await cache.hydrate()
        assert report.state is CacheState.EMPTY
        assert report.missing_required == REQUIRED
        assert not any(outcome.ok for outcome in report.outcomes.values())


class TestRefreshAhead:
    async def test_refresh_is_due_at_the_refresh_ahead_fraction(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch, clock: ManualClock
    ) -> None:
        """Without jitter the next refresh is due at 80% of the TTL, not before."""
        cache = make_cache()
        await cache.hydrate()
        assert await cache.run_due_refreshes() == pytest.approx(0.8 * TTL)
        clock.advance(0.8 * TTL - 0.01)
        await cache.run_due_refreshes()
        assert len(fetch.calls) == len(ALL_TYPES)
        clock.advance(0.01)
        await cache.run_due_refreshes()
        assert len(fetch.calls) == 2 * len(ALL_TYPES)
        entry = cache.get(SecretType.API_KEY)
        assert entry is not None
        assert entry.expires_at == clock.now() + timedelta(seconds=TTL)

    @pytest.mark.parametrize(("upper", "fraction"), [(False, 0.72), (True, 0.88)])
    async def test_jitter_reaches_but_never_passes_its_bounds(
        self, make_cache: Callable[..., OmniSecretCache], upper: bool, fraction: float
    ) -> None:
        """The jitter spreads the refresh point by at most +/- jitter_fraction."""
        cache = make_cache(jitter_fraction=0.1, rng=EdgeRandom(upper))
        await cache.hydrate()
        for info in cache.entries():
            assert info.next_refresh_in_seconds == pytest.approx(fraction * TTL)

    async def test_jitter_spreads_types_within_bounds(
        self, make_cache: Callable[..., OmniSecretCache]
    ) -> None:
        """With a real rng the refresh points differ and stay inside 80% +/- 10% of the TTL."""
        cache = make_cache(jitter_fraction=0.1, rng=random.Random(1))
        await cache.hydrate()
        points = [info.next_refresh_in_seconds for info in cache.entries()]
        assert all(p is not None and 0.72 * TTL <= p <= 0.88 * TTL for p in points)
        assert len(set(points)) == len(points)

    async def test_failed_refresh_is_retried_long_before_the_next_ttl(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch, clock: ManualClock
    ) -> None:
        """After a failed refresh the next attempt comes after the retry delay, not a TTL."""
        cache = make_cache(retry_initial_seconds=1.0, rng=EdgeRandom(upper=True))
        await cache.hydrate()
        clock.advance(0.8 * TTL)
        fetch.fail_next(SecretType.API_KEY, transient())
        await cache.run_due_refreshes()
        assert cache.describe(SecretType.API_KEY).next_refresh_in_seconds == pytest.approx(1.0)
        clock.advance(1.0)
        await cache.run_due_refreshes()
        assert fetch.count(SecretType.API_KEY) == 3
        info = cache.describe(SecretType.API_KEY)
        assert info.consecutive_failures == 0
        assert info.expires_at == clock.now() + timedelta(seconds=TTL)

    async def test_retry_backoff_doubles_and_is_capped(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch, clock: ManualClock
    ) -> None:
        """Consecutive failures back off exponentially up to retry_max_seconds, jittered down."""
        cache = make_cache(
            retry_initial_seconds=1.0, retry_max_seconds=8.0, rng=EdgeRandom(upper=True)
        )
        fetch.fail_all = transient()
        delays = []
        for _ in range(6):
            await cache.refresh([SecretType.API_KEY])
            delay = cache.describe(SecretType.API_KEY).next_refresh_in_seconds
            delays.append(delay)
            clock.advance(delay or 0)
        assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
        low = make_cache(
            retry_initial_seconds=1.0, retry_max_seconds=8.0, rng=EdgeRandom(upper=False)
        )
        await low.refresh([SecretType.API_KEY])
        assert low.describe(SecretType.API_KEY).next_refresh_in_seconds == pytest.approx(0.5)


class TestFailureClasses:
    async def test_transient_failure_serves_stale_until_the_bound_then_drops(
        self,
        make_cache: Callable[..., OmniSecretCache],
        fetch: FakeFetch,
        clock: ManualClock,
        listener: RecordingListener,
    ) -> None:
        """A transient error keeps the old value until expires_at + max_stale, marked stale."""
        cache = make_cache(max_stale_seconds=50)
        await cache.hydrate()
        fetch.fail_all = transient("DEADLINE_EXCEEDED")
        clock.advance(0.8 * TTL)
        await cache.run_due_refreshes()
        assert cache.get(SecretType.API_KEY) is not None
        assert not cache.describe(SecretType.API_KEY).stale
        clock.advance(0.2 * TTL)
        await cache.run_due_refreshes()
        info = cache.describe(SecretType.API_KEY)
        assert info.source is CacheSource.GSM
        assert info.stale
        assert info.last_error is not None
        assert info.last_error.code == "DEADLINE_EXCEEDED"
        assert info.last_error.transient
        clock.advance(50 - 0.001)
        assert cache.get(SecretType.API_KEY) is not None
        clock.advance(0.001)
        assert cache.get(SecretType.API_KEY) is None
        assert cache.describe(SecretType.API_KEY).source is None
        assert cache.state is CacheState.EMPTY
        assert SecretType.API_KEY in {event.secret_type for event in listener.of(Expired)}
        expired = next(e for e in listener.of(Expired) if e.secret_type is SecretType.API_KEY)
        assert expired.stale_seconds == 50

    async def test_without_a_stale_bound_a_transient_failure_serves_only_until_expiry(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch, clock: ManualClock
    ) -> None:
        """max_stale_seconds=0 means the value is never served past expires_at."""
        cache = make_cache(max_stale_seconds=0)
        await cache.hydrate()
        fetch.fail_all = transient()
        clock.advance(0.8 * TTL)
        await cache.run_due_refreshes()
        assert cache.get(SecretType.API_KEY) is not None
        clock.advance(0.2 * TTL)
        assert cache.get(SecretType.API_KEY) is None

    @pytest.mark.parametrize("reason", ["NOT_FOUND", "PERMISSION_DENIED", "FAILED_PRECONDITION"])
    async def test_permanent_failure_drops_the_entry_at_once(
        self,
        make_cache: Callable[..., OmniSecretCache],
        fetch: FakeFetch,
        listener: RecordingListener,
        reason: str,
    ) -> None:
        """A permanent refusal fails closed: the entry goes even inside its TTL and stale bound."""
        cache = make_cache(max_stale_seconds=1_000)
        await cache.hydrate()
        fetch.fail_next(SecretType.API_SECRET, permanent(reason))
        outcomes = await cache.refresh([SecretType.API_SECRET])
        assert cache.get(SecretType.API_SECRET) is None
        assert not outcomes[SecretType.API_SECRET].ok
        assert outcomes[SecretType.API_SECRET].previous_version == "1"
        assert outcomes[SecretType.API_SECRET].version is None
        assert cache.state is CacheState.DEGRADED
        assert cache.missing_required() == (SecretType.API_SECRET,)
        (evicted,) = listener.of(Evicted)
        assert (evicted.secret_type, evicted.version, evicted.reason) == (
            SecretType.API_SECRET,
            "1",
            reason,
        )
        (failed,) = listener.of(RefreshFailed)
        assert not failed.transient
        assert not failed.serving

    async def test_checksum_mismatch_is_transient(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """A corrupted payload keeps the old value (it is retryable), with its reason recorded."""
        cache = make_cache()
        await cache.hydrate()
        fetch.fail_next(SecretType.API_KEY, ChecksumMismatch("apex-omni-api-key", "1"))
        await cache.refresh([SecretType.API_KEY])
        assert cache.get(SecretType.API_KEY) is not None
        error = cache.describe(SecretType.API_KEY).last_error
        assert error is not None
        assert error.code == "CHECKSUM_MISMATCH"

    async def test_unexpected_exception_is_transient_and_never_echoed(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """Any other exception counts as transient; its text (it could hold anything) is dropped."""
        cache = make_cache()
        await cache.hydrate()
        fetch.fail_next(SecretType.API_KEY, RuntimeError("fake-leaky-text"))
        outcomes = await cache.refresh([SecretType.API_KEY])
        error = outcomes[SecretType.API_KEY].error
        assert error is not None
        assert error.code == "UNKNOWN"
        assert error.transient
        assert "RuntimeError" in error.message
        assert "fake-leaky-text" not in error.message
        assert cache.get(SecretType.API_KEY) is not None

    async def test_unexpected_exception_is_reported_by_type_and_place_only(
        self,
        make_cache: Callable[..., OmniSecretCache],
        fetch: FakeFetch,
        listener: RecordingListener,
    ) -> None:
        """The listener learns the exception's type and where it was raised, before the failure."""
        cache = make_cache()
        await cache.hydrate()
        fetch.fail_next(SecretType.API_KEY, RuntimeError("fake-leaky-text"))
        await cache.refresh([SecretType.API_KEY])
        (raised,) = listener.of(FetchRaisedUnexpectedly)
        assert raised.secret_type is SecretType.API_KEY
        assert raised.error_type == "RuntimeError"
        assert raised.at.startswith(__file__)
        assert "fake-leaky-text" not in repr(raised)
        after = listener.events[listener.events.index(raised) + 1]
        assert isinstance(after, RefreshFailed)
        assert after.reason == "UNKNOWN"

    async def test_fetch_hanging_past_expiry_leaves_nothing_served_until_it_succeeds(
        self,
        make_cache: Callable[..., OmniSecretCache],
        fetch: FakeFetch,
        clock: ManualClock,
        listener: RecordingListener,
    ) -> None:
        """A refresh stuck past the serve window does not keep the old entry alive."""
        cache = make_cache()
        await cache.hydrate()
        clock.advance(0.8 * TTL)
        fetch.gate = asyncio.Event()
        fetch.fail_next(SecretType.API_KEY, transient("DEADLINE_EXCEEDED"))
        stuck = asyncio.create_task(cache.refresh([SecretType.API_KEY]))
        await settle_tasks()
        clock.advance(0.2 * TTL)
        assert cache.get(SecretType.API_KEY) is None
        fetch.gate.set()
        outcome = (await stuck)[SecretType.API_KEY]
        assert not outcome.ok
        assert outcome.version is None
        assert cache.get(SecretType.API_KEY) is None
        assert [e.secret_type for e in listener.of(Expired)] == [SecretType.API_KEY]
        assert (await cache.refresh([SecretType.API_KEY]))[SecretType.API_KEY].ok
        assert cache.get(SecretType.API_KEY) is not None

    async def test_a_malformed_fetch_result_counts_as_an_unexpected_failure(
        self, make_cache: Callable[..., OmniSecretCache]
    ) -> None:
        """A fetch that returns a bare string instead of a SecretValue is refused, not served."""

        async def sloppy_fetch(secret_type: SecretType) -> AccessedSecret:
            return AccessedSecret(secret_id="x", version="1", value="fake-bare")  # type: ignore[arg-type]

        cache = make_cache(fetch=sloppy_fetch)
        outcome = (await cache.refresh([SecretType.API_KEY]))[SecretType.API_KEY]
        assert not outcome.ok
        assert outcome.error is not None
        assert outcome.error.code == "UNKNOWN"
        assert cache.get(SecretType.API_KEY) is None

    async def test_consecutive_failures_count_up_and_reset_on_success(
        self,
        make_cache: Callable[..., OmniSecretCache],
        fetch: FakeFetch,
        clock: ManualClock,
        listener: RecordingListener,
    ) -> None:
        """Each failure in a row counts; a success resets the count and clears the last error."""
        cache = make_cache()
        fetch.fail_next(SecretType.API_KEY, transient(), transient(), transient("INTERNAL"))
        for expected in (1, 2, 3):
            await cache.refresh([SecretType.API_KEY])
            info = cache.describe(SecretType.API_KEY)
            assert info.consecutive_failures == expected
        assert info.last_error is not None
        assert info.last_error.code == "INTERNAL"
        assert info.last_error.at == clock.now()
        assert [e.consecutive_failures for e in listener.of(RefreshFailed)] == [1, 2, 3]
        await cache.refresh([SecretType.API_KEY])
        info = cache.describe(SecretType.API_KEY)
        assert info.consecutive_failures == 0
        assert info.last_error is None
        assert listener.of(Refreshed)[-1].failures_before == 3
        assert cache.describe(SecretType.API_SECRET).consecutive_failures == 0

    async def test_permanent_failure_of_a_missing_type_is_retried_in_the_background(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch, clock: ManualClock
    ) -> None:
        """A dropped type is fetched again after the retry delay and served once GSM allows it."""
        cache = make_cache(rng=EdgeRandom(upper=True))
        await cache.hydrate()
        fetch.fail_next(SecretType.API_KEY, permanent("FAILED_PRECONDITION"))
        await cache.refresh([SecretType.API_KEY])
        assert cache.get(SecretType.API_KEY) is None
        fetch.pinned[SecretType.API_KEY] = "2"
        clock.advance(1.0)
        await cache.run_due_refreshes()
        entry = cache.get(SecretType.API_KEY)
        assert entry is not None
        assert entry.version == "2"


class TestSingleFlight:
    async def test_a_thousand_concurrent_refreshes_make_one_fetch_per_type(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """Concurrent callers coalesce: one fetch per type, every caller gets the same outcome."""
        cache = make_cache()
        await cache.hydrate()
        fetch.calls.clear()
        fetch.gate = asyncio.Event()
        callers = [asyncio.create_task(cache.refresh()) for _ in range(1_000)]
        await settle_tasks()
        fetch.gate.set()
        results = await asyncio.gather(*callers)
        assert sorted(fetch.calls) == sorted(ALL_TYPES)
        for secret_type in ALL_TYPES:
            outcomes = {id(result[secret_type]) for result in results}
            assert len(outcomes) == 1
            assert results[0][secret_type].ok

    async def test_a_refresh_after_completion_fetches_again(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """Single-flight coalesces only while in flight; it does not cache outcomes."""
        cache = make_cache()
        await cache.refresh([SecretType.API_KEY])
        await cache.refresh([SecretType.API_KEY])
        assert fetch.count(SecretType.API_KEY) == 2

    async def test_readers_keep_the_old_snapshot_while_a_refresh_is_in_flight(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """A hanging fetch does not disturb readers; the new snapshot appears when it completes."""
        cache = make_cache()
        await cache.hydrate()
        before = cache.get(SecretType.API_KEY)
        fetch.pinned[SecretType.API_KEY] = "2"
        fetch.gate = asyncio.Event()
        pending = asyncio.create_task(cache.refresh([SecretType.API_KEY]))
        await settle_tasks()
        assert fetch.in_flight == 1
        assert cache.describe(SecretType.API_KEY).refreshing
        assert cache.get(SecretType.API_KEY) is before
        assert cache.state is CacheState.READY
        fetch.gate.set()
        await pending
        after = cache.get(SecretType.API_KEY)
        assert after is not None
        assert after is not before
        assert after.version == "2"
        assert before is not None
        assert before.version == "1"

    async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """One caller giving up leaves the fetch running for the others."""
        cache = make_cache()
        fetch.gate = asyncio.Event()
        quitter = asyncio.create_task(cache.refresh([SecretType.API_KEY]))
        stayer = asyncio.create_task(cache.refresh([SecretType.API_KEY]))
        await settle_tasks()
        quitter.cancel()
        await settle_tasks()
        fetch.gate.set()
        outcome = (await stayer)[SecretType.API_KEY]
        assert outcome.ok
        assert quitter.cancelled()
        assert fetch.count(SecretType.API_KEY) == 1

    async def test_force_new_waits_for_the_fetch_in_flight_then_fetches_once_more(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """After a re-pin, forced callers get a fetch that started after them, still coalesced."""
        cache = make_cache()
        fetch.gate = asyncio.Event()
        old = asyncio.create_task(cache.refresh([SecretType.API_KEY]))
        await settle_tasks()
        fetch.pinned[SecretType.API_KEY] = "2"
        forced = [
            asyncio.create_task(cache.refresh([SecretType.API_KEY], force_new=True))
            for _ in range(10)
        ]
        await settle_tasks()
        assert fetch.count(SecretType.API_KEY) == 1
        fetch.gate.set()
        assert (await old)[SecretType.API_KEY].version == "1"
        versions = {(await task)[SecretType.API_KEY].version for task in forced}
        assert versions == {"2"}
        assert fetch.count(SecretType.API_KEY) == 2
        entry = cache.get(SecretType.API_KEY)
        assert entry is not None
        assert entry.version == "2"


class TestBackgroundRefresher:
    async def test_outage_at_startup_recovers_through_the_background_retry(
        self,
        make_cache: Callable[..., OmniSecretCache],
        fetch: FakeFetch,
        clock: ManualClock,
    ) -> None:
        """Empty after a failed hydration, ready once GSM answers again, with no restart."""
        sleep = SteppedSleep(clock)
        cache = make_cache(sleep=sleep, retry_initial_seconds=1.0)
        fetch.fail_all = transient()
        assert (await cache.hydrate()).state is CacheState.EMPTY
        cache.start()
        started = clock.monotonic()
        assert 0 < await sleep.next_sleep() <= 1.0
        fetch.fail_all = None
        for _ in range(len(ALL_TYPES)):  # each type retries on its own jittered schedule
            sleep.wake()
            delay = await sleep.next_sleep()
            if cache.state is CacheState.READY:
                break
        assert cache.state is CacheState.READY
        assert clock.monotonic() - started <= 1.0
        assert all(info.consecutive_failures == 0 for info in cache.entries())
        assert 0.8 * TTL - 1.0 <= delay <= 0.8 * TTL

    async def test_loop_refreshes_ahead_of_expiry_without_gaps(
        self,
        make_cache: Callable[..., OmniSecretCache],
        fetch: FakeFetch,
        clock: ManualClock,
    ) -> None:
        """Driven by its own sleeps, the loop refreshes at 80% of the TTL, so get never misses."""
        sleep = SteppedSleep(clock)
        cache = make_cache(sleep=sleep)
        await cache.hydrate()
        cache.start()
        for round_ in range(1, 4):
            assert await sleep.next_sleep() == pytest.approx(0.8 * TTL)
            assert cache.state is CacheState.READY
            sleep.wake()
            await sleep.next_sleep()
            assert len(fetch.calls) == (round_ + 1) * len(ALL_TYPES)

    async def test_loop_wakes_up_for_a_new_override_expiry(
        self,
        make_cache: Callable[..., OmniSecretCache],
        clock: ManualClock,
        listener: RecordingListener,
    ) -> None:
        """Installing an override shortens the loop's sleep to the override's expiry."""
        sleep = SteppedSleep(clock)
        cache = make_cache(sleep=sleep)
        await cache.hydrate()
        cache.start()
        assert await sleep.next_sleep() == pytest.approx(0.8 * TTL)
        cache.install_override(
            SecretType.API_KEY,
            SecretValue("fake-override"),
            "ovr-1",
            clock.now(),
            clock.now() + timedelta(seconds=30),
        )
        assert await sleep.next_sleep() == pytest.approx(30)
        sleep.wake()
        await sleep.next_sleep()
        (ended,) = listener.of(OverrideEnded)
        assert ended.reason is OverrideStopReason.EXPIRED
        assert ended.reverted_to is CacheSource.GSM

    async def test_refresher_survives_a_broken_listener(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch, clock: ManualClock
    ) -> None:
        """Listener exceptions are swallowed: serving and refreshing go on."""
        broken = ExplodingListener()
        sleep = SteppedSleep(clock)
        cache = make_cache(listener=broken, sleep=sleep)
        report = await cache.hydrate()
        assert report.state is CacheState.READY
        cache.start()
        await sleep.next_sleep()
        sleep.wake()
        await sleep.next_sleep()
        assert cache.running
        assert len(fetch.calls) == 2 * len(ALL_TYPES)
        assert broken.calls >= 2 * len(ALL_TYPES) + 1

    async def test_a_failing_listener_is_told_once_and_serving_goes_on(
        self, make_cache: Callable[..., OmniSecretCache]
    ) -> None:
        """Each event the listener fails on is reported back to it as ListenerFailed."""
        picky = PickyListener(fails_on=Refreshed)
        cache = make_cache(listener=picky)
        report = await cache.hydrate()
        assert report.state is CacheState.READY
        failures = picky.of(ListenerFailed)
        assert [f.event_type for f in failures] == ["Refreshed"] * len(ALL_TYPES)
        assert all(isinstance(f.error, RuntimeError) for f in failures)
        assert len(picky.of(Hydrated)) == 1

    async def test_a_failing_refresher_step_is_reported_and_retried(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """A bug in the loop's own bookkeeping is reported; the loop retries it shortly."""
        clock = StumblingClock()
        listener = RecordingListener()
        sleep = SteppedSleep(clock)
        cache = make_cache(clock=clock, listener=listener, sleep=sleep)
        await cache.hydrate()
        cache.start()
        await sleep.next_sleep()
        clock.stumble = True
        sleep.wake()
        assert await sleep.next_sleep() == pytest.approx(1.0)  # retry_initial_seconds
        (step,) = listener.of(RefresherStepFailed)
        assert str(step.error) == "fake bookkeeping fault"
        assert cache.running
        sleep.wake()
        await sleep.next_sleep()
        assert len(fetch.calls) == 2 * len(ALL_TYPES)

    async def test_request_refresh_wakes_the_loop_but_respects_the_retry_floor(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch, clock: ManualClock
    ) -> None:
        """A requested refresh runs now, except right after an attempt (no request-driven storm)."""
        sleep = SteppedSleep(clock)
        cache = make_cache(sleep=sleep, retry_initial_seconds=2.0)
        await cache.hydrate()
        cache.start()
        await sleep.next_sleep()
        cache.request_refresh([SecretType.API_KEY])
        assert await sleep.next_sleep() == pytest.approx(2.0)
        clock.advance(2.0)
        cache.request_refresh([SecretType.API_KEY])
        await sleep.next_sleep()
        assert fetch.count(SecretType.API_KEY) == 2
        assert fetch.count(SecretType.API_SECRET) == 1

    async def test_stop_cancels_fetches_in_flight(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """stop ends the loop and pending fetches; snapshots stay readable."""
        cache = make_cache()
        await cache.hydrate()
        fetch.gate = asyncio.Event()
        pending = asyncio.create_task(cache.refresh())
        await settle_tasks()
        await cache.stop()
        with pytest.raises(asyncio.CancelledError):
            await pending
        assert cache.get(SecretType.API_KEY) is not None
        assert not cache.describe(SecretType.API_KEY).refreshing


class TestBreakGlass:
    def install(
        self,
        cache: OmniSecretCache,
        clock: ManualClock,
        *,
        override_id: str = "ovr-1",
        seconds: float = 900,
        secret_type: SecretType = SecretType.API_SECRET,
    ) -> CachedSecret:
        return cache.install_override(
            secret_type,
            SecretValue(f"fake-break-glass-{override_id}"),
            override_id,
            clock.now(),
            clock.now() + timedelta(seconds=seconds),
        )

    async def test_override_wins_over_gsm(
        self,
        make_cache: Callable[..., OmniSecretCache],
        clock: ManualClock,
        listener: RecordingListener,
    ) -> None:
        """While active, the override is what get serves, and status says so."""
        cache = make_cache()
        await cache.hydrate()
        installed = self.install(cache, clock)
        entry = cache.get(SecretType.API_SECRET)
        assert entry is installed
        assert entry.source is CacheSource.BREAK_GLASS
        assert entry.override_id == "ovr-1"
        assert entry.value.reveal() == "fake-break-glass-ovr-1"
        info = cache.describe(SecretType.API_SECRET)
        assert info.source is CacheSource.BREAK_GLASS
        assert info.override is not None
        assert info.override.override_id == "ovr-1"
        assert info.gsm_version == "1"
        (event,) = listener.of(OverrideInstalled)
        assert event.override_id == "ovr-1"

    async def test_override_expiry_reverts_to_gsm_on_the_hot_path(
        self,
        make_cache: Callable[..., OmniSecretCache],
        clock: ManualClock,
        listener: RecordingListener,
    ) -> None:
        """At its expiry the override stops being served, even with no background task."""
        cache = make_cache(ttl_seconds=3_600)
        await cache.hydrate()
        self.install(cache, clock, seconds=60)
        clock.advance(59.999)
        entry = cache.get(SecretType.API_SECRET)
        assert entry is not None
        assert entry.source is CacheSource.BREAK_GLASS
        clock.advance(0.001)
        entry = cache.get(SecretType.API_SECRET)
        assert entry is not None
        assert entry.source is CacheSource.GSM
        assert entry.value.reveal() == fake_value(SecretType.API_SECRET, "1")
        (ended,) = listener.of(OverrideEnded)
        assert (ended.reason, ended.reverted_to) == (OverrideStopReason.EXPIRED, CacheSource.GSM)
        assert cache.describe(SecretType.API_SECRET).override is None

    async def test_override_serves_through_a_gsm_outage_and_kicks_a_refresh_when_it_ends(
        self,
        make_cache: Callable[..., OmniSecretCache],
        fetch: FakeFetch,
        clock: ManualClock,
        listener: RecordingListener,
    ) -> None:
        """With GSM down the override keeps the type served; when it ends a fetch is due at once."""
        cache = make_cache(retry_max_seconds=30)
        fetch.fail_all = transient()
        await cache.hydrate()
        for secret_type in REQUIRED:
            self.install(
                cache,
                clock,
                override_id=f"ovr-{secret_type.value}",
                seconds=120,
                secret_type=secret_type,
            )
        assert cache.state is CacheState.READY  # every required type served, zk types missing
        assert cache.missing_required() == ()
        assert cache.get(SecretType.ZK_SEEDS) is None
        clock.advance(100)
        fetch.fail_all = None
        clock.advance(20)
        assert cache.get(SecretType.API_KEY) is None
        ended = listener.of(OverrideEnded)
        assert ended[0].reverted_to is None
        info = cache.describe(SecretType.API_KEY)
        assert info.next_refresh_in_seconds is not None
        assert info.next_refresh_in_seconds <= 0
        await cache.run_due_refreshes()
        assert cache.get(SecretType.API_KEY) is not None
        assert cache.state is CacheState.READY

    async def test_remove_override_checks_the_id_and_reverts(
        self,
        make_cache: Callable[..., OmniSecretCache],
        clock: ManualClock,
        listener: RecordingListener,
    ) -> None:
        """Removing another id is refused; removing the active one reverts to GSM."""
        cache = make_cache()
        await cache.hydrate()
        self.install(cache, clock)
        assert not cache.remove_override(SecretType.API_SECRET, "ovr-other")
        assert cache.remove_override(SecretType.API_KEY) is False
        entry = cache.get(SecretType.API_SECRET)
        assert entry is not None
        assert entry.source is CacheSource.BREAK_GLASS
        assert cache.remove_override(SecretType.API_SECRET, "ovr-1")
        entry = cache.get(SecretType.API_SECRET)
        assert entry is not None
        assert entry.source is CacheSource.GSM
        (ended,) = listener.of(OverrideEnded)
        assert ended.reason is OverrideStopReason.REMOVED
        assert not cache.remove_override(SecretType.API_SECRET)

    async def test_a_newer_override_replaces_and_a_reinstall_is_quiet(
        self,
        make_cache: Callable[..., OmniSecretCache],
        clock: ManualClock,
        listener: RecordingListener,
    ) -> None:
        """A second override replaces the first; re-installing the same id emits nothing."""
        cache = make_cache()
        self.install(cache, clock, override_id="ovr-1")
        self.install(cache, clock, override_id="ovr-2")
        self.install(cache, clock, override_id="ovr-2", seconds=600)
        entry = cache.get(SecretType.API_SECRET)
        assert entry is not None
        assert entry.override_id == "ovr-2"
        assert entry.expires_at == clock.now() + timedelta(seconds=600)
        assert [e.override_id for e in listener.of(OverrideInstalled)] == ["ovr-1", "ovr-2"]
        (ended,) = listener.of(OverrideEnded)
        assert (ended.override_id, ended.reason) == ("ovr-1", OverrideStopReason.REPLACED)

    async def test_install_refuses_expired_naive_or_unwrapped_input(
        self, make_cache: Callable[..., OmniSecretCache], clock: ManualClock
    ) -> None:
        """An already expired override, a naive time or a bare string is a programming error."""
        cache = make_cache()
        now = clock.now()
        with pytest.raises(ValueError, match="expired"):
            cache.install_override(
                SecretType.API_KEY, SecretValue("fake-x"), "ovr", now - timedelta(hours=1), now
            )
        with pytest.raises(ValueError, match="timezone"):
            cache.install_override(
                SecretType.API_KEY,
                SecretValue("fake-x"),
                "ovr",
                now.replace(tzinfo=None),
                now + timedelta(minutes=5),
            )
        with pytest.raises(TypeError):
            cache.install_override(
                SecretType.API_KEY,
                "fake-x",  # type: ignore[arg-type]
                "ovr",
                now,
                now + timedelta(minutes=5),
            )
        assert cache.get(SecretType.API_KEY) is None

    async def test_gsm_keeps_refreshing_behind_an_override(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch, clock: ManualClock
    ) -> None:
        """Refreshes update the GSM entry held behind the override without unseating it."""
        cache = make_cache()
        await cache.hydrate()
        self.install(cache, clock)
        fetch.pinned[SecretType.API_SECRET] = "2"
        await cache.refresh([SecretType.API_SECRET])
        entry = cache.get(SecretType.API_SECRET)
        assert entry is not None
        assert entry.source is CacheSource.BREAK_GLASS
        assert cache.describe(SecretType.API_SECRET).gsm_version == "2"


class TestIntrospection:
    async def test_state_follows_required_types(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """ready needs every required type; degraded when one is missing; empty when none."""
        cache = make_cache()
        assert cache.state is CacheState.EMPTY
        await cache.refresh([SecretType.ZK_SEEDS])
        assert cache.state is CacheState.DEGRADED
        assert cache.missing_required() == REQUIRED
        await cache.refresh(REQUIRED)
        assert cache.state is CacheState.READY
        assert cache.missing_required() == ()

    async def test_describe_reports_ages_and_never_fetched(
        self, make_cache: Callable[..., OmniSecretCache], clock: ManualClock
    ) -> None:
        """Ages run on the clock; a never-fetched type has no source and an infinite age."""
        cache = make_cache()
        never = cache.describe(SecretType.API_KEY)
        assert never.source is None
        assert never.version is None
        assert never.age_seconds is None
        assert never.seconds_since_fetch == math.inf
        await cache.refresh([SecretType.API_KEY])
        clock.advance(12.5)
        info = cache.describe(SecretType.API_KEY)
        assert info.age_seconds == pytest.approx(12.5)
        assert info.seconds_since_fetch == pytest.approx(12.5)
        assert info.fetched_at == clock.now() - timedelta(seconds=12.5)
        assert info.required
        assert [e.secret_type for e in cache.entries()] == list(ALL_TYPES)

    async def test_timestamps_of_hydration_and_last_refresh(
        self, make_cache: Callable[..., OmniSecretCache], clock: ManualClock, fetch: FakeFetch
    ) -> None:
        """hydrated_at marks the hydration; last_refresh_at moves with every fetch, failed too."""
        cache = make_cache()
        assert cache.hydrated_at is None
        assert cache.last_refresh_at is None
        await cache.hydrate()
        hydrated = clock.now()
        clock.advance(5)
        fetch.fail_all = transient()
        await cache.refresh([SecretType.API_KEY])
        assert cache.hydrated_at == hydrated
        assert cache.last_refresh_at == clock.now()

    async def test_unknown_type_is_refused(
        self, make_cache: Callable[..., OmniSecretCache]
    ) -> None:
        """A type outside the catalog is a domain error, not a silent no-op."""
        from omni_secrets.domain.errors import UnknownSecretType

        cache = make_cache()
        with pytest.raises(UnknownSecretType):
            cache.describe("not_a_type")  # type: ignore[arg-type]
        with pytest.raises(UnknownSecretType):
            await cache.refresh(["not_a_type"])  # type: ignore[list-item]


class TestNoValueLeaks:
    async def test_reprs_and_events_never_show_a_value(
        self,
        make_cache: Callable[..., OmniSecretCache],
        fetch: FakeFetch,
        clock: ManualClock,
        listener: RecordingListener,
    ) -> None:
        """Snapshots, descriptions, outcomes, reports, events and the cache itself redact."""
        cache = make_cache()
        report = await cache.hydrate()
        cache.install_override(
            SecretType.API_KEY,
            SecretValue("fake-canary-override"),
            "ovr-1",
            clock.now(),
            clock.now() + timedelta(minutes=5),
        )
        fetch.fail_next(SecretType.API_SECRET, permanent("NOT_FOUND"))
        outcomes = await cache.refresh()
        clock.advance(TTL)
        cache.get(SecretType.API_PASSPHRASE)
        texts = [
            repr(cache),
            str(cache),
            repr(report),
            repr(outcomes),
            repr(cache.entries()),
            repr(listener.events),
            repr(cache.get(SecretType.API_KEY)),
            str(cache.get(SecretType.API_KEY)),
        ]
        assert any("SecretValue('**********')" in text for text in texts)
        canaries = ["fake-canary-override", *(fake_value(t, "1") for t in ALL_TYPES)]
        for text in texts:
            for canary in canaries:
                assert canary not in text


class TestRevoke:
    async def test_revoke_drops_the_entry_whatever_the_ttl_and_stale_window(
        self, make_cache: Callable[..., OmniSecretCache]
    ) -> None:
        """A revoked version stops being served at once, even with a long stale window."""
        cache = make_cache(max_stale_seconds=3600)
        await cache.hydrate()
        assert cache.revoke(SecretType.API_SECRET, "1", "VERSION_DISABLED", "disabled in GSM")
        assert cache.get(SecretType.API_SECRET) is None
        info = cache.describe(SecretType.API_SECRET)
        assert info.last_error is not None and info.last_error.code == "VERSION_DISABLED"
        # Another version's revocation leaves the served one alone.
        assert not cache.revoke(SecretType.API_KEY, "7", "VERSION_DISABLED", "other version")
        assert cache.get(SecretType.API_KEY) is not None

    async def test_a_fetch_in_flight_during_a_revoke_does_not_reinstall_its_value(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch
    ) -> None:
        """The value a fetch read before the revocation is discarded, not served."""
        cache = make_cache()
        await cache.hydrate()
        fetch.gate = asyncio.Event()
        refresh = asyncio.ensure_future(cache.refresh([SecretType.API_SECRET]))
        await settle_tasks()
        cache.revoke(SecretType.API_SECRET, "1", "VERSION_DISABLED", "disabled in GSM")
        fetch.gate.set()
        outcomes = await refresh
        assert outcomes[SecretType.API_SECRET].ok is False
        assert cache.get(SecretType.API_SECRET) is None
        error = cache.describe(SecretType.API_SECRET).last_error
        assert error is not None and error.code == "VERSION_DISABLED"

    async def test_an_override_still_wins_over_a_revocation(
        self, make_cache: Callable[..., OmniSecretCache], clock: ManualClock
    ) -> None:
        """Break-glass keeps being served after the GSM version is revoked."""
        cache = make_cache()
        await cache.hydrate()
        now = clock.now()
        cache.install_override(
            SecretType.API_SECRET,
            SecretValue("fake-override"),
            "ovr-1",
            now,
            now + timedelta(minutes=10),
        )
        cache.revoke(SecretType.API_SECRET, "1", "VERSION_DISABLED", "disabled in GSM")
        served = cache.get(SecretType.API_SECRET)
        assert served is not None and served.override_id == "ovr-1"


class TestVersion:
    """``version`` grows with every change status shows, and only then (status shares a view
    between the calls of one millisecond while it stays the same)."""

    async def test_each_change_status_shows_moves_it_and_reads_do_not(
        self, make_cache: Callable[..., OmniSecretCache], fetch: FakeFetch, clock: ManualClock
    ) -> None:
        cache = make_cache(max_stale_seconds=60)
        seen = [cache.version]

        def moved() -> bool:
            seen.append(cache.version)
            return seen[-1] > seen[-2]

        await cache.hydrate()
        assert moved()
        cache.get(SecretType.API_KEY)
        cache.describe(SecretType.API_KEY)
        assert cache.state is not None
        assert not moved()
        fetch.fail_next(SecretType.API_KEY, transient())
        await cache.refresh([SecretType.API_KEY])  # a failure: lastError appears
        assert moved()
        await cache.refresh([SecretType.API_KEY])  # a success: lastError goes, a new fetch
        assert moved()
        assert cache.revoke(SecretType.API_SECRET, "1", "VERSION_DISABLED", "disabled in GSM")
        assert moved()
        clock.advance(TTL + 61)  # everything has outlived its stale bound
        assert cache.get(SecretType.API_KEY) is None  # the read drops what ran out
        assert moved()
