"""The verified-token cache: never more lenient than verification, bounded, holds no token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from omni_secrets.api.auth import Hs256Verifier, Principal, Scope, Unauthenticated
from omni_secrets.api.token_cache import CachingVerifier

SECRET = "fake-hs256-secret-for-token-cache-tests"
AUDIENCE = "omni-secrets"
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


class Clocks:
    def __init__(self) -> None:
        self.wall = NOW.timestamp()
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class CountingVerifier:
    """The real HS256 verifier, counting calls (with its own clock through PyJWT's leeway)."""

    def __init__(self) -> None:
        self.inner = Hs256Verifier(secret=SECRET, audience=AUDIENCE)
        self.calls = 0

    async def verify(self, token: str) -> Principal:
        self.calls += 1
        return await self.inner.verify(token)


def token(ttl: timedelta = timedelta(minutes=5), secret: str = SECRET, **claims: Any) -> str:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "sub": "alice",
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "scope": Scope.READ.value,
    }
    body.update(claims)
    return jwt.encode(body, secret, algorithm="HS256")


def caching(inner: CountingVerifier, clocks: Clocks, **kwargs: Any) -> CachingVerifier:
    return CachingVerifier(
        inner, wall_clock=lambda: clocks.wall, monotonic=lambda: clocks.mono, **kwargs
    )


@pytest.fixture
def clocks() -> Clocks:
    clocks = Clocks()
    clocks.wall = datetime.now(UTC).timestamp()
    return clocks


async def test_a_verified_token_is_answered_from_memory(clocks: Clocks) -> None:
    inner = CountingVerifier()
    verifier = caching(inner, clocks)
    good = token()
    first = await verifier.verify(good)
    second = await verifier.verify(good)
    assert first == second == Principal("alice", frozenset({Scope.READ.value}))
    assert inner.calls == 1


async def test_refusals_are_never_remembered(clocks: Clocks) -> None:
    inner = CountingVerifier()
    verifier = caching(inner, clocks)
    forged = token(secret="fake-some-other-secret-entirely-for-forging")
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await verifier.verify(forged)
    assert inner.calls == 3
    assert len(verifier) == 0


async def test_a_token_is_not_served_from_memory_at_or_after_its_exp(clocks: Clocks) -> None:
    inner = CountingVerifier()
    verifier = caching(inner, clocks, max_age_seconds=3600)
    short = token(ttl=timedelta(seconds=20))
    exp = jwt.decode(short, options={"verify_signature": False})["exp"]
    await verifier.verify(short)
    clocks.wall = exp - 0.001
    await verifier.verify(short)
    assert inner.calls == 1
    clocks.wall = exp
    await verifier.verify(short)  # still within PyJWT's leeway: verified again, not cached
    assert inner.calls == 2


async def test_an_expired_token_gets_the_verifiers_own_refusal(clocks: Clocks) -> None:
    inner = CountingVerifier()
    verifier = caching(inner, clocks)
    expired = token(ttl=timedelta(seconds=-120))  # past exp and past the 30 s leeway
    with pytest.raises(Unauthenticated, match="token expired"):
        await verifier.verify(expired)
    assert len(verifier) == 0


async def test_max_age_bounds_trust_in_a_long_lived_token(clocks: Clocks) -> None:
    inner = CountingVerifier()
    verifier = caching(inner, clocks, max_age_seconds=60)
    long_lived = token(ttl=timedelta(hours=12))
    await verifier.verify(long_lived)
    clocks.advance(59)
    await verifier.verify(long_lived)
    assert inner.calls == 1
    clocks.advance(2)
    await verifier.verify(long_lived)
    assert inner.calls == 2


async def test_clear_forgets_everything(clocks: Clocks) -> None:
    inner = CountingVerifier()
    verifier = caching(inner, clocks)
    good = token()
    await verifier.verify(good)
    verifier.clear()
    await verifier.verify(good)
    assert inner.calls == 2


async def test_the_cache_is_bounded_and_drops_the_oldest(clocks: Clocks) -> None:
    inner = CountingVerifier()
    verifier = caching(inner, clocks, max_entries=2)
    first, second, third = (token(sub=name) for name in ("a", "b", "c"))
    for each in (first, second, third):
        await verifier.verify(each)
    assert len(verifier) == 2
    await verifier.verify(third)
    await verifier.verify(second)
    assert inner.calls == 3
    await verifier.verify(first)  # evicted: verified again
    assert inner.calls == 4


async def test_a_token_without_exp_is_never_remembered(clocks: Clocks) -> None:
    class NoExpAccepted:
        async def verify(self, token: str) -> Principal:
            return Principal("alice", frozenset())

    verifier = CachingVerifier(NoExpAccepted())
    no_exp = jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    await verifier.verify(no_exp)
    assert len(verifier) == 0


async def test_a_different_token_never_hits_another_tokens_entry(clocks: Clocks) -> None:
    inner = CountingVerifier()
    verifier = caching(inner, clocks)
    good = token()
    await verifier.verify(good)
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    with pytest.raises(Unauthenticated):
        await verifier.verify(tampered)
    assert inner.calls == 2


async def test_the_cache_keeps_no_bearer_token(clocks: Clocks) -> None:
    inner = CountingVerifier()
    verifier = caching(inner, clocks)
    good = token()
    await verifier.verify(good)
    kept = repr(verifier) + repr(verifier._entries)
    assert good not in kept
    assert good.split(".")[2] not in kept


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        CachingVerifier(CountingVerifier(), max_entries=0)
    with pytest.raises(ValueError, match="max_age_seconds"):
        CachingVerifier(CountingVerifier(), max_age_seconds=0)
