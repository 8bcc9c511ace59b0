"""GsmSecretManagerClient against the emulator over real gRPC: values, errors, retries."""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import pytest

from omni_secrets.adapters.gsm import GsmCallRecord, GsmSecretManagerClient
from omni_secrets.adapters.retry import RetryPolicy
from omni_secrets.domain.errors import ChecksumMismatch, SecretStoreError
from omni_secrets.domain.secret_store import VersionState, newest_enabled
from omni_secrets.emulator import GsmEmulator

from .conftest import GSM_PROJECT

KEY = "apex-omni-api-key"
CANARY = "fake-canary-0c1d2e3f"
ACCESS = "AccessSecretVersion"


@pytest.fixture
def seeded(gsm_emulator: GsmEmulator) -> GsmEmulator:
    gsm_emulator.seed(GSM_PROJECT, {KEY: ["fake-key-v1", "fake-key-v2"]})
    return gsm_emulator


class TestGsmSecretManagerClient:
    async def test_access_latest_and_pinned(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """latest resolves to version 2; a pinned version 1 answers its own value."""
        latest = await gsm_store.access(KEY)
        pinned = await gsm_store.access(KEY, "1")
        assert (latest.version, latest.value.reveal()) == ("2", "fake-key-v2")
        assert (pinned.version, pinned.value.reveal()) == ("1", "fake-key-v1")

    async def test_disabled_latest_is_a_permanent_failed_precondition(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """A disabled newest version makes latest fail permanently, after a single call."""
        seeded.disable(GSM_PROJECT, KEY, 2)
        with pytest.raises(SecretStoreError) as raised:
            await gsm_store.access(KEY)
        assert (raised.value.reason, raised.value.transient) == ("FAILED_PRECONDITION", False)
        assert seeded.call_count(ACCESS) == 1

    async def test_unavailable_twice_then_success(
        self,
        seeded: GsmEmulator,
        gsm_store: GsmSecretManagerClient,
        gsm_calls: list[GsmCallRecord],
    ) -> None:
        """Two UNAVAILABLE answers are retried: the value comes back, the emulator saw 3 calls."""
        seeded.fail_next(ACCESS, "UNAVAILABLE", 2)
        accessed = await gsm_store.access(KEY)
        assert accessed.value.reveal() == "fake-key-v2"
        assert seeded.call_count(ACCESS) == 3
        assert [(r.code, r.attempt) for r in gsm_calls] == [
            ("UNAVAILABLE", 1),
            ("UNAVAILABLE", 2),
            ("OK", 3),
        ]
        assert all(r.method == ACCESS and r.duration_seconds > 0 for r in gsm_calls)

    async def test_permission_denied_is_not_retried(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """PERMISSION_DENIED fails at once: one call, a permanent error."""
        seeded.fail_next(ACCESS, "PERMISSION_DENIED", 5)
        with pytest.raises(SecretStoreError) as raised:
            await gsm_store.access(KEY)
        assert (raised.value.reason, raised.value.transient) == ("PERMISSION_DENIED", False)
        assert seeded.call_count(ACCESS) == 1

    async def test_latency_beyond_the_deadline(self, seeded: GsmEmulator) -> None:
        """Latency past a 0.3 s deadline ends as DEADLINE_EXCEEDED in about the deadline."""
        seeded.inject_latency(ACCESS, 5.0)
        client = GsmSecretManagerClient(
            project_id=GSM_PROJECT,
            endpoint=seeded.address,
            timeout_seconds=0.3,
            retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.01, deadline_seconds=0.5),
        )
        started = time.monotonic()
        try:
            with pytest.raises(SecretStoreError) as raised:
                await client.access(KEY)
        finally:
            await client.aclose()
        elapsed = time.monotonic() - started
        assert (raised.value.reason, raised.value.transient) == ("DEADLINE_EXCEEDED", True)
        assert 0.3 <= elapsed < 1.5
        assert seeded.call_count(ACCESS) == 2

    async def test_corrupted_checksum_is_retried_then_refused(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """Corrupted CRC32C on every attempt: three calls, then CHECKSUM_MISMATCH, no value."""
        seeded.corrupt_checksum_next(10)
        with pytest.raises(ChecksumMismatch) as raised:
            await gsm_store.access(KEY)
        assert raised.value.reason == "CHECKSUM_MISMATCH"
        assert seeded.call_count(ACCESS) == 3

    async def test_one_corrupted_response_recovers(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """A single corrupted response is retried and the correct value returned."""
        seeded.corrupt_checksum_next(1)
        assert (await gsm_store.access(KEY)).value.reveal() == "fake-key-v2"
        assert seeded.call_count(ACCESS) == 2

    async def test_missing_checksum_counts_as_a_checksum_failure(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """No data_crc32c at all is unverifiable: retried, then CHECKSUM_MISMATCH, no value."""
        seeded.omit_checksum_next(10)
        with pytest.raises(ChecksumMismatch) as raised:
            await gsm_store.access(KEY)
        assert raised.value.reason == "CHECKSUM_MISMATCH"
        assert seeded.call_count(ACCESS) == 3

    async def test_one_response_without_checksum_recovers(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        seeded.omit_checksum_next(1)
        assert (await gsm_store.access(KEY)).value.reveal() == "fake-key-v2"
        assert seeded.call_count(ACCESS) == 2

    async def test_list_versions_states_newest_first(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """Versions come newest first with their states; newest_enabled skips a disabled one."""
        seeded.add_version(GSM_PROJECT, KEY, "fake-key-v3")
        seeded.add_version(GSM_PROJECT, KEY, "fake-key-v4")
        seeded.disable(GSM_PROJECT, KEY, 4)
        seeded.destroy(GSM_PROJECT, KEY, 1)
        versions = await gsm_store.list_versions(KEY)
        assert [(v.version, v.state) for v in versions] == [
            ("4", VersionState.DISABLED),
            ("3", VersionState.ENABLED),
            ("2", VersionState.ENABLED),
            ("1", VersionState.DESTROYED),
        ]
        assert versions[0].create_time >= versions[-1].create_time
        assert versions[0].create_time.tzinfo is not None
        newest = newest_enabled(versions)
        assert newest is not None
        assert newest.version == "3"

    async def test_list_versions_follows_pages(
        self, gsm_emulator: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """1,001 versions take two ListSecretVersions pages and come back complete."""
        gsm_emulator.seed(GSM_PROJECT, {KEY: [f"fake-{i}" for i in range(1001)]})
        versions = await gsm_store.list_versions(KEY)
        assert len(versions) == 1001
        assert (versions[0].version, versions[-1].version) == ("1001", "1")
        assert gsm_emulator.call_count("ListSecretVersions") == 2

    async def test_unknown_secret_is_not_found(
        self, gsm_emulator: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """A secret that does not exist is a permanent NOT_FOUND for access and list."""
        for call in (gsm_store.access(KEY), gsm_store.list_versions(KEY)):
            with pytest.raises(SecretStoreError) as raised:
                await call
            assert (raised.value.reason, raised.value.transient) == ("NOT_FOUND", False)

    async def test_non_utf8_payload_is_refused(
        self, gsm_emulator: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """Stored bytes that are not UTF-8 are a permanent INVALID_PAYLOAD error."""
        gsm_emulator.seed(GSM_PROJECT, {KEY: [b"\xff\xfefake"]})
        with pytest.raises(SecretStoreError) as raised:
            await gsm_store.access(KEY)
        assert (raised.value.reason, raised.value.transient) == ("INVALID_PAYLOAD", False)

    async def test_library_debug_logging_never_shows_payloads(
        self, gsm_emulator: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """With the google loggers at DEBUG, a read logs neither the value nor its base64."""
        gsm_emulator.seed(GSM_PROJECT, {KEY: [CANARY]})
        records: list[logging.LogRecord] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.append(record)

        google_logger = logging.getLogger("google")
        handler = Keep(logging.DEBUG)
        saved = google_logger.level
        google_logger.addHandler(handler)
        google_logger.setLevel(logging.DEBUG)
        try:
            await gsm_store.access(KEY)
        finally:
            google_logger.removeHandler(handler)
            google_logger.setLevel(saved)
        dumped = " ".join(f"{r.getMessage()} {r.__dict__}" for r in records)
        assert CANARY not in dumped
        assert base64.b64encode(CANARY.encode()).decode() not in dumped

    async def test_bound_to_its_first_event_loop(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """Using the client from a second event loop is refused with a clear RuntimeError."""
        await gsm_store.access(KEY)
        with pytest.raises(RuntimeError, match="event loop"):
            await asyncio.to_thread(asyncio.run, gsm_store.access(KEY))

    async def test_aclose_is_idempotent_and_reopens_lazily(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """After aclose (twice) the next call opens a fresh channel and works."""
        await gsm_store.access(KEY)
        await gsm_store.aclose()
        await gsm_store.aclose()
        assert (await gsm_store.access(KEY, "1")).value.reveal() == "fake-key-v1"

    def test_repr_shows_no_secrets(self, gsm_store: GsmSecretManagerClient) -> None:
        """The client's repr names the project and endpoint only."""
        assert repr(gsm_store).startswith("GsmSecretManagerClient(project_id='omni-it'")


class TestVersionAdmin:
    """The write side used by `omni-secrets gsm versions` (real gRPC to the emulator)."""

    async def test_add_version_stores_the_value_with_a_checksum(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """add_version creates version 3, ENABLED, readable back with its CRC32C verified."""
        from omni_secrets.domain.values import SecretValue

        added = await gsm_store.add_version(KEY, SecretValue("fake-key-v3"))
        assert (added.version, added.state) == ("3", VersionState.ENABLED)
        assert "fake-key-v3" not in repr(added)
        read = await gsm_store.access(KEY, "3")
        assert read.value.reveal() == "fake-key-v3"
        assert seeded.call_count("AddSecretVersion") == 1

    async def test_disable_then_enable(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """set_version_state flips a version's state in GSM and answers the new state."""
        disabled = await gsm_store.set_version_state(KEY, "1", VersionState.DISABLED)
        assert disabled.state is VersionState.DISABLED
        assert seeded.version_state(GSM_PROJECT, KEY, 1) == "DISABLED"
        enabled = await gsm_store.set_version_state(KEY, "1", VersionState.ENABLED)
        assert enabled.state is VersionState.ENABLED
        assert seeded.enabled_payloads(GSM_PROJECT, KEY) == [b"fake-key-v2", b"fake-key-v1"]

    async def test_unknown_version_is_not_found_and_destroy_is_refused(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """A missing version is a permanent NOT_FOUND; DESTROYED is not offered at all."""
        with pytest.raises(SecretStoreError) as raised:
            await gsm_store.set_version_state(KEY, "9", VersionState.ENABLED)
        assert (raised.value.reason, raised.value.transient) == ("NOT_FOUND", False)
        assert raised.value.message.startswith(f"{KEY} version 9: NOT_FOUND")
        with pytest.raises(SecretStoreError) as pinned:
            await gsm_store.access(KEY, "7")  # issue 26: the error names the version it was about
        assert pinned.value.message == (
            "apex-omni-api-key version 7: NOT_FOUND (Secret Manager AccessSecretVersion)"
        )
        with pytest.raises(ValueError, match="cannot be undone"):
            await gsm_store.set_version_state(KEY, "1", VersionState.DESTROYED)

    async def test_a_failed_add_is_not_retried(
        self, seeded: GsmEmulator, gsm_store: GsmSecretManagerClient
    ) -> None:
        """An UNAVAILABLE add is reported, not retried (a retry could add two versions)."""
        from omni_secrets.domain.values import SecretValue

        seeded.fail_next("AddSecretVersion", "UNAVAILABLE")
        with pytest.raises(SecretStoreError) as raised:
            await gsm_store.add_version(KEY, SecretValue("fake-key-v3"))
        assert (raised.value.reason, raised.value.transient) == ("UNAVAILABLE", True)
        assert seeded.call_count("AddSecretVersion") == 1
        assert [v.version for v in await gsm_store.list_versions(KEY)] == ["2", "1"]
