"""FakeSecretStore's own knobs (its GSM semantics are covered by the shared contract suite)."""

from __future__ import annotations

import pytest

from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import ChecksumMismatch, SecretStoreError
from omni_secrets.testing import FakeSecretStore


class TestFakeSecretStore:
    async def test_latency_goes_through_the_injected_sleep(self) -> None:
        """Injected latency is awaited on the given sleep, once per call."""
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        store = FakeSecretStore(sleep=sleep)
        store.add_version("apex-omni-x", "fake-v1")
        store.latency_seconds = 0.25
        await store.access("apex-omni-x")
        await store.list_versions("apex-omni-x")
        assert slept == [0.25, 0.25]

    async def test_fail_next_counts_down_and_calls_are_counted(self) -> None:
        """Two injected failures, then success; every call is counted."""
        store = FakeSecretStore()
        store.add_version("apex-omni-x", "fake-v1")
        store.fail_next("access", "UNAVAILABLE", 2)
        for _ in range(2):
            with pytest.raises(SecretStoreError) as raised:
                await store.access("apex-omni-x")
            assert raised.value.transient is True
        assert (await store.access("apex-omni-x")).value.reveal() == "fake-v1"
        assert store.call_count("access") == 3

    async def test_checksum_reason_and_corruption_raise_checksum_mismatch(self) -> None:
        """Both ways of injecting a checksum failure raise ChecksumMismatch."""
        store = FakeSecretStore()
        store.add_version("apex-omni-x", "fake-v1")
        store.fail_next("*", "CHECKSUM_MISMATCH")
        store.corrupt_checksum_next(1)
        for _ in range(2):
            with pytest.raises(ChecksumMismatch):
                await store.access("apex-omni-x")
        assert (await store.access("apex-omni-x")).version == "1"

    async def test_create_time_from_the_clock_and_clear_faults(self) -> None:
        """Versions are stamped by the injected clock; clear_faults removes pending failures."""
        clock = ManualClock()
        store = FakeSecretStore(clock=clock)
        store.add_version("apex-omni-x", "fake-v1")
        store.fail_next("list_versions", "INTERNAL", 3)
        store.clear_faults()
        (info,) = await store.list_versions("apex-omni-x")
        assert info.create_time == clock.now()

    def test_unknown_method_refused(self) -> None:
        """fail_next refuses a method the port does not have."""
        with pytest.raises(ValueError, match="unknown method"):
            FakeSecretStore().fail_next("get", "UNAVAILABLE")
