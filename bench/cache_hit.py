"""Cache hit latency: ``OmniSecretCache.get`` vs the AWS caching client vs the floor.

- ours: ``OmniSecretCache.get`` on a hydrated cache with the real ``SystemClock``;
- AWS: ``aws_secretsmanager_caching.SecretCache.get_secret_string`` on a warm cache, with a fake
  boto-shaped client (``describe_secret`` / ``get_secret_value``) so no network is involved;
- floor: a bare dict lookup plus a ``time.monotonic()`` comparison, the least a TTL cache can do.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_secretsmanager_caching import SecretCache, SecretCacheConfig  # type: ignore[import-untyped]

from bench._fakes import LatencyFetch
from bench._stats import Distribution, distribution, time_batched, time_single, timer_overhead
from omni_secrets.domain.cache import CachedSecret, OmniSecretCache
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import SystemClock

_AWS_VERSION_ID = "01234567-89ab-cdef-0123-456789abcdef"  # >= 32 chars, as the library expects
_AWS_SECRET_ID = "apex-omni-api-key"
_AWS_PAYLOAD = "fake-bench-aws-value"


class FakeAwsClient:
    """The two calls ``SecretCache`` makes, answered from memory."""

    def __init__(self) -> None:
        self.calls = 0

    def describe_secret(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto's casing
        self.calls += 1
        return {
            "ARN": f"arn:aws:secretsmanager:eu-west-1:000000000000:secret:{SecretId}",
            "Name": SecretId,
            "VersionIdsToStages": {_AWS_VERSION_ID: ["AWSCURRENT"]},
        }

    def get_secret_value(self, SecretId: str, VersionId: str) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        return {
            "ARN": f"arn:aws:secretsmanager:eu-west-1:000000000000:secret:{SecretId}",
            "Name": SecretId,
            "VersionId": VersionId,
            "SecretString": _AWS_PAYLOAD,
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": datetime(2026, 1, 1, tzinfo=UTC),
        }


@dataclass(frozen=True, slots=True)
class Contender:
    batched: Distribution
    single: Distribution


@dataclass(frozen=True, slots=True)
class HitResult:
    ours: Contender
    aws: Contender
    floor: Contender
    timer: Distribution
    aws_client_calls_during_run: int

    @property
    def ratio_vs_aws(self) -> float:
        """How many times faster ours is than AWS at p50 (batched)."""
        return self.aws.batched.p50 / self.ours.batched.p50

    @property
    def ratio_vs_floor(self) -> float:
        return self.ours.batched.p50 / self.floor.batched.p50


def hydrated_cache() -> OmniSecretCache:
    cache = OmniSecretCache(
        catalog=Catalog(),
        fetch=LatencyFetch(),
        ttl_seconds=300,
        max_stale_seconds=0,
        clock=SystemClock(),
    )
    asyncio.run(cache.hydrate())
    return cache


def floor_get() -> Any:
    """The floor: a dict of (value, monotonic deadline) and one comparison."""
    store = {SecretType.API_KEY: ("fake-bench-floor", time.monotonic() + 300.0)}

    def get(key: SecretType, _get: Any = store.get, _now: Any = time.monotonic) -> str | None:
        entry = _get(key)
        if entry is not None and _now() < entry[1]:
            return entry[0]  # type: ignore[no-any-return]
        return None

    return get


def _measure(call: Any, arg: Any, *, batch: int, batches: int, singles: int) -> Contender:
    for _ in range(1_000):  # warm up caches and the specialising interpreter
        call(arg)
    return Contender(
        batched=distribution(time_batched(call, arg, batch=batch, batches=batches)),
        single=distribution(time_single(call, arg, calls=singles)),
    )


def run(*, quick: bool = False) -> HitResult:
    """Measure the three contenders back to back in this process."""
    batch, batches = 100, (500 if quick else 5_000)
    singles = 20_000 if quick else 200_000
    cache = hydrated_cache()
    hit: CachedSecret | None = cache.get(SecretType.API_KEY)
    if hit is None:
        raise RuntimeError("the benchmark cache did not hydrate")

    client = FakeAwsClient()
    aws = SecretCache(SecretCacheConfig(), client=client)
    if aws.get_secret_string(_AWS_SECRET_ID) != _AWS_PAYLOAD:
        raise RuntimeError("the AWS cache did not warm up")
    warm_calls = client.calls

    ours = _measure(cache.get, SecretType.API_KEY, batch=batch, batches=batches, singles=singles)
    # The AWS client is ~100x slower per call: fewer samples keep the run short, same percentiles.
    theirs = _measure(
        aws.get_secret_string,
        _AWS_SECRET_ID,
        batch=batch // 10,
        batches=batches,
        singles=singles // 10,
    )
    floor = _measure(floor_get(), SecretType.API_KEY, batch=batch, batches=batches, singles=singles)
    return HitResult(
        ours=ours,
        aws=theirs,
        floor=floor,
        timer=timer_overhead(calls=singles),
        aws_client_calls_during_run=client.calls - warm_calls,
    )
