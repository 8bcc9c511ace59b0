"""RetryPolicy and retry_async: attempts, jittered backoff, overall deadline (no real sleeping)."""

from __future__ import annotations

import random

import pytest

from omni_secrets.adapters.retry import MIN_ATTEMPT_SECONDS, RetryPolicy, retry_async


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


class FakeTime:
    """A monotonic clock that only moves when slept on or told to."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """An attempt function that fails with the given errors, then returns ``"done"``."""

    def __init__(self, *errors: Exception, time: FakeTime | None = None, cost: float = 0.0):
        self.errors = list(errors)
        self.timeouts: list[float] = []
        self.time = time
        self.cost = cost

    async def __call__(self, number: int, timeout: float) -> str:
        assert number == len(self.timeouts) + 1
        self.timeouts.append(timeout)
        if self.time is not None:
            self.time.now += min(self.cost, timeout)
        if self.errors:
            raise self.errors.pop(0)
        return "done"


async def run(script: Script, policy: RetryPolicy, time: FakeTime, rnd=lambda: 0.5, **kw):
    return await retry_async(
        script,
        policy=policy,
        retryable=lambda exc: isinstance(exc, Transient),
        attempt_timeout=kw.pop("attempt_timeout", 1.0),
        sleep=time.sleep,
        random=rnd,
        monotonic=time.monotonic,
        **kw,
    )


class TestRetryPolicy:
    def test_ceiling_grows_exponentially_then_caps(self) -> None:
        """The backoff ceiling is initial * multiplier**(n-1), capped at max_backoff."""
        policy = RetryPolicy(initial_backoff_seconds=0.1, multiplier=3, max_backoff_seconds=1.0)
        ceilings = [policy.backoff_ceiling(n) for n in range(1, 5)]
        assert ceilings == pytest.approx([0.1, 0.3, 0.9, 1.0])

    def test_backoff_is_full_jitter(self) -> None:
        """A backoff is random() times the ceiling: 0 at the bottom, just under it at the top."""
        policy = RetryPolicy(initial_backoff_seconds=0.2, multiplier=2, max_backoff_seconds=5)
        assert policy.backoff(2, lambda: 0.0) == 0.0
        assert policy.backoff(2, lambda: 0.25) == pytest.approx(0.1)
        assert policy.backoff(2, lambda: 0.999) == pytest.approx(0.3996)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_attempts": 0},
            {"initial_backoff_seconds": -1},
            {"max_backoff_seconds": -0.1},
            {"multiplier": 0.5},
            {"deadline_seconds": 0},
        ],
    )
    def test_out_of_range_values_rejected(self, kwargs: dict[str, float]) -> None:
        """Each out-of-range field raises ValueError naming the field."""
        with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]


class TestRetryAsync:
    async def test_transient_failures_then_success(self) -> None:
        """Two transient failures then success: three attempts, two sleeps, the value returned."""
        time = FakeTime()
        script = Script(Transient(), Transient())
        result = await run(script, RetryPolicy(max_attempts=3), time)
        assert result == "done"
        assert len(script.timeouts) == 3
        assert len(time.sleeps) == 2

    async def test_attempts_are_bounded(self) -> None:
        """Only transient failures: max_attempts attempts, then the last error is raised."""
        time = FakeTime()
        last = Transient("last")
        script = Script(Transient(), Transient(), Transient(), last)
        with pytest.raises(Transient) as raised:
            await run(script, RetryPolicy(max_attempts=4), time)
        assert raised.value is last
        assert len(script.timeouts) == 4
        assert len(time.sleeps) == 3

    async def test_non_retryable_error_raised_at_once(self) -> None:
        """A non-retryable error ends the loop after one attempt, without sleeping."""
        time = FakeTime()
        script = Script(Permanent(), Transient())
        with pytest.raises(Permanent):
            await run(script, RetryPolicy(max_attempts=5), time)
        assert len(script.timeouts) == 1
        assert time.sleeps == []

    async def test_delays_are_jittered_within_bounds(self) -> None:
        """Every sleep lies in [0, ceiling(n)] and the sleeps are not all the same."""
        policy = RetryPolicy(
            max_attempts=6,
            initial_backoff_seconds=0.1,
            multiplier=2,
            max_backoff_seconds=0.5,
            deadline_seconds=100,
        )
        rng = random.Random(7)
        seen: list[float] = []
        for _ in range(20):
            time = FakeTime()
            script = Script(*[Transient() for _ in range(5)])
            await run(script, policy, time, rnd=rng.random)
            for number, delay in enumerate(time.sleeps, start=1):
                assert 0.0 <= delay <= policy.backoff_ceiling(number)
            seen.extend(time.sleeps)
        assert len(seen) == 100
        assert len({round(d, 9) for d in seen}) > 50

    async def test_overall_deadline_stops_retrying(self) -> None:
        """Attempts that each use their whole timeout stop before the overall deadline passes."""
        time = FakeTime()
        started = time.now
        script = Script(*[Transient() for _ in range(50)], time=time, cost=1.0)
        policy = RetryPolicy(max_attempts=50, initial_backoff_seconds=0.01, deadline_seconds=3.5)
        with pytest.raises(Transient):
            await run(script, policy, time, attempt_timeout=1.0)
        assert time.now - started <= 3.5
        assert 3 <= len(script.timeouts) < 50

    async def test_attempt_timeout_shrinks_to_the_time_left(self) -> None:
        """An attempt never gets a timeout reaching past the overall deadline."""
        time = FakeTime()
        script = Script(Transient(), Transient(), time=time, cost=1.0)
        policy = RetryPolicy(max_attempts=3, initial_backoff_seconds=0.0, deadline_seconds=2.5)
        await run(script, policy, time, attempt_timeout=1.0)
        assert script.timeouts == pytest.approx([1.0, 1.0, 0.5])

    async def test_no_sleep_that_would_pass_the_deadline(self) -> None:
        """When the backoff would end past the deadline, the error is raised without sleeping."""
        time = FakeTime()
        script = Script(Transient(), time=time, cost=0.5)
        policy = RetryPolicy(
            max_attempts=3,
            initial_backoff_seconds=1.0,
            max_backoff_seconds=1.0,
            deadline_seconds=1.0,
        )
        with pytest.raises(Transient):
            await run(script, policy, time, rnd=lambda: 0.9)
        assert time.sleeps == []
        assert len(script.timeouts) == 1

    async def test_min_attempt_time_is_kept(self) -> None:
        """A retry is not scheduled when it would leave less than MIN_ATTEMPT_SECONDS to run."""
        time = FakeTime()
        script = Script(Transient(), time=time, cost=0.5)
        policy = RetryPolicy(max_attempts=3, initial_backoff_seconds=0.5, deadline_seconds=1.0)
        # backoff 0.5 - MIN/2 leaves MIN/2 for the attempt: too little.
        jitter = (0.5 - MIN_ATTEMPT_SECONDS / 2) / 0.5
        with pytest.raises(Transient):
            await run(script, policy, time, rnd=lambda: jitter)
        assert time.sleeps == []

    async def test_on_retry_sees_each_scheduled_retry(self) -> None:
        """on_retry gets the failed attempt's number, its error and the chosen delay."""
        time = FakeTime()
        first, second = Transient("a"), Transient("b")
        events: list[tuple[int, Exception, float]] = []
        await run(
            Script(first, second),
            RetryPolicy(max_attempts=3),
            time,
            on_retry=lambda n, e, d: events.append((n, e, d)),
        )
        assert [(n, e) for n, e, _ in events] == [(1, first), (2, second)]
        assert [d for _, _, d in events] == time.sleeps
