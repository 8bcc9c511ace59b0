"""Fetch functions for the benchmarks: fixed latency, counted calls, optional hang."""

from __future__ import annotations

import asyncio
from collections import Counter

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.secret_store import AccessedSecret
from omni_secrets.domain.values import SecretValue


class LatencyFetch:
    """Answers every type after ``latency`` seconds of (asyncio) sleep; counts calls per type.

    ``hang`` makes calls wait for it before answering (a GSM call stuck until its deadline).
    """

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.calls: Counter[SecretType] = Counter()
        self.hang: asyncio.Event | None = None

    async def __call__(self, secret_type: SecretType) -> AccessedSecret:
        self.calls[secret_type] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.hang is not None:
            await self.hang.wait()
        return AccessedSecret(
            secret_id=f"apex-omni-{secret_type.value}",
            version="1",
            value=SecretValue(f"fake-bench-{secret_type.value}"),
        )
