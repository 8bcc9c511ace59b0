"""Retries for adapters: bounded attempts, exponential backoff with full jitter, overall deadline.

A small loop of our own rather than the libraries' retry decorators: it takes injectable
``sleep``/``random``/``monotonic`` (tests run it without waiting), it never sees or records the
arguments of the call it repeats (style §9: nothing here can log a payload), and which
failures are retryable is the caller's explicit decision, never a default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

# An attempt left with less time than this cannot finish a network round trip: not worth making.
MIN_ATTEMPT_SECONDS = 0.01

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_INITIAL_BACKOFF_SECONDS = 0.1
DEFAULT_BACKOFF_MULTIPLIER = 2.0
DEFAULT_MAX_BACKOFF_SECONDS = 2.0
DEFAULT_DEADLINE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry a failing call.

    The sleep before retry ``n`` (``n = 1`` before the second attempt) is drawn uniformly from
    ``[0, min(max_backoff_seconds, initial_backoff_seconds * multiplier ** (n - 1))]`` ("full
    jitter", so synchronised clients spread out). No attempt starts, and no sleep begins, that
    would end past ``deadline_seconds`` after the first attempt started.

    Attributes:
        max_attempts: attempts in total, the first included (1 = no retry).
        initial_backoff_seconds: ceiling of the first sleep.
        multiplier: growth of the ceiling per retry.
        max_backoff_seconds: largest ceiling.
        deadline_seconds: overall budget for all attempts and sleeps.

    Raises:
        ValueError: a value out of range.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    initial_backoff_seconds: float = DEFAULT_INITIAL_BACKOFF_SECONDS
    multiplier: float = DEFAULT_BACKOFF_MULTIPLIER
    max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff_seconds < 0:
            raise ValueError("initial_backoff_seconds must not be negative")
        if self.max_backoff_seconds < 0:
            raise ValueError("max_backoff_seconds must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if self.deadline_seconds <= 0:
            raise ValueError("deadline_seconds must be positive")

    def backoff_ceiling(self, retry: int) -> float:
        """The largest sleep before retry number ``retry`` (1-based)."""
        growth = self.initial_backoff_seconds * self.multiplier ** (retry - 1)
        return min(self.max_backoff_seconds, growth)

    def backoff(self, retry: int, random: Callable[[], float]) -> float:
        """A jittered sleep before retry ``retry``: ``random()`` (in [0, 1)) times the ceiling."""
        return random() * self.backoff_ceiling(retry)


async def retry_async(
    attempt: Callable[[int, float], Awaitable[T]],
    *,
    policy: RetryPolicy,
    retryable: Callable[[Exception], bool],
    attempt_timeout: float,
    sleep: Callable[[float], Awaitable[None]],
    random: Callable[[], float],
    monotonic: Callable[[], float],
    on_retry: Callable[[int, Exception, float], None] | None = None,
) -> T:
    """Call ``attempt(number, timeout)`` until it returns, retrying what ``retryable`` accepts.

    Each attempt gets ``timeout = min(attempt_timeout, time left before the deadline)``.
    ``on_retry(number, error, delay)`` runs before each sleep.

    Args:
        attempt: the call; ``number`` is 1-based, ``timeout`` its deadline in seconds.
        policy: attempts, backoff and overall deadline.
        retryable: True for errors worth another attempt.
        attempt_timeout: the per-attempt deadline.
        sleep: awaitable sleep (``asyncio.sleep`` in production).
        random: uniform [0, 1) source for the jitter.
        monotonic: clock for the deadline.
        on_retry: optional hook, e.g. a log line; must not raise.

    Returns:
        What the first successful attempt returned.

    Raises:
        Exception: the last attempt's error, unchanged, when it is not retryable, the attempts
            are used up, or the deadline leaves no room for another attempt.
    """
    started = monotonic()
    number = 0
    while True:
        number += 1
        remaining = policy.deadline_seconds - (monotonic() - started)
        try:
            return await attempt(number, min(attempt_timeout, remaining))
        except Exception as exc:
            if not retryable(exc) or number >= policy.max_attempts:
                raise
            delay = policy.backoff(number, random)
            remaining = policy.deadline_seconds - (monotonic() - started)
            if delay + MIN_ATTEMPT_SECONDS > remaining:
                raise
            if on_retry is not None:
                on_retry(number, exc, delay)
        await sleep(delay)
