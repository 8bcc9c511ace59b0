"""Secret store fakes: :class:`FakeSecretStore`, a dict of versions with GSM's semantics."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain.clock import Clock, SystemClock
from omni_secrets.domain.errors import ChecksumMismatch, SecretStoreError
from omni_secrets.domain.secret_store import (
    LATEST,
    TRANSIENT_REASONS,
    AccessedSecret,
    VersionInfo,
    VersionState,
)
from omni_secrets.domain.values import SecretValue

_FAKE_SECRET_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
_FAKE_VERSION_RE = re.compile(r"latest|[1-9][0-9]{0,18}")
FAKE_STORE_METHODS = ("access", "list_versions", "get_version")


@dataclass
class _FakeVersion:
    value: str
    state: VersionState
    created_at: datetime


@dataclass
class _FakeFailure:
    reason: str
    remaining: int


class FakeSecretStore:
    """An in-memory :class:`~omni_secrets.domain.secret_store.SecretStore` with GSM's semantics.

    Same rules as Secret Manager and the emulator-backed adapter (a shared contract suite keeps
    them in step): versions numbered from 1 per secret, never reused; ``latest`` is the newest
    version whatever its state; a version that is not ENABLED fails with FAILED_PRECONDITION;
    unknown secrets and versions fail with NOT_FOUND; a malformed id fails INVALID_ARGUMENT.

    Fault injection works per port method (``access``, ``list_versions``, or ``*``). The fake
    stands for the port *after* the adapter's retries: one injected failure is one failed call.

    Args:
        clock: stamps ``create_time`` (the system clock by default).
        sleep: awaitable sleep used for injected latency (``asyncio.sleep`` by default).

    Attributes:
        calls: calls received per method, failed ones included.
        latency_seconds: delay added to every call.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._sleep = sleep or asyncio.sleep
        self._secrets: dict[str, list[_FakeVersion]] = {}
        self._failures: dict[str, list[_FakeFailure]] = {}
        self._corrupt = 0
        self.calls: Counter[str] = Counter()
        self.latency_seconds = 0.0

    # set-up ------------------------------------------------------------------------------------

    def add_version(self, secret_id: str, value: str) -> str:
        """Add an ENABLED version (creating the secret if needed); return its number."""
        versions = self._secrets.setdefault(secret_id, [])
        versions.append(_FakeVersion(value, VersionState.ENABLED, self._clock.now()))
        return str(len(versions))

    def seed(self, secrets: Mapping[str, Sequence[str]]) -> None:
        """Add the given versions in order, per secret."""
        for secret_id, values in secrets.items():
            for value in values:
                self.add_version(secret_id, value)

    def enable(self, secret_id: str, version: str) -> None:
        self._set_state(secret_id, version, VersionState.ENABLED)

    def disable(self, secret_id: str, version: str) -> None:
        self._set_state(secret_id, version, VersionState.DISABLED)

    def destroy(self, secret_id: str, version: str) -> None:
        """Destroy a version: its value is cleared for good."""
        self._set_state(secret_id, version, VersionState.DESTROYED)
        self._secrets[secret_id][int(version) - 1].value = ""

    # faults ------------------------------------------------------------------------------------

    def fail_next(self, method: str, reason: str, count: int = 1) -> None:
        """Fail the next ``count`` calls of ``method`` (or ``*``) with ``reason``.

        ``reason`` is a gRPC code name or ``CHECKSUM_MISMATCH``; transient per
        :data:`~omni_secrets.domain.secret_store.TRANSIENT_REASONS`.
        """
        if method != "*" and method not in FAKE_STORE_METHODS:
            raise ValueError(f"unknown method {method!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        self._failures.setdefault(method, []).append(_FakeFailure(reason, count))

    def corrupt_checksum_next(self, count: int = 1) -> None:
        """Make the next ``count`` successful accesses fail as a checksum mismatch would."""
        self._corrupt += count

    def clear_faults(self) -> None:
        """Remove injected failures, corruption and latency."""
        self._failures.clear()
        self._corrupt = 0
        self.latency_seconds = 0.0

    def call_count(self, method: str) -> int:
        return self.calls[method]

    # the port ----------------------------------------------------------------------------------

    async def access(self, secret_id: str, version: str = LATEST) -> AccessedSecret:
        """As :meth:`SecretStore.access <omni_secrets.domain.secret_store.SecretStore.access>`."""
        await self._enter("access", secret_id)
        self._check_ids(secret_id, version)
        number, found = self._resolve(secret_id, version)
        if found.state is not VersionState.ENABLED:
            raise SecretStoreError(
                f"secret {secret_id!r} version {number} is {found.state.value}",
                reason="FAILED_PRECONDITION",
                transient=False,
                secret_id=secret_id,
            )
        if self._corrupt > 0:
            self._corrupt -= 1
            raise ChecksumMismatch(secret_id, number)
        return AccessedSecret(secret_id, number, SecretValue(found.value))

    async def list_versions(self, secret_id: str) -> Sequence[VersionInfo]:
        """As :meth:`SecretStore.list_versions`: every version, newest first."""
        await self._enter("list_versions", secret_id)
        self._check_ids(secret_id, LATEST)
        versions = self._existing(secret_id)
        infos = [VersionInfo(str(n), v.state, v.created_at) for n, v in enumerate(versions, 1)]
        return infos[::-1]

    async def get_version(self, secret_id: str, version: str) -> VersionInfo:
        """As :meth:`SecretStore.get_version`: one version's state, no payload."""
        await self._enter("get_version", secret_id)
        self._check_ids(secret_id, version)
        number, found = self._resolve(secret_id, version)
        return VersionInfo(number, found.state, found.created_at)

    # internals ---------------------------------------------------------------------------------

    async def _enter(self, method: str, secret_id: str) -> None:
        self.calls[method] += 1
        if self.latency_seconds:
            await self._sleep(self.latency_seconds)
        reason = self._take_failure(method)
        if reason == "CHECKSUM_MISMATCH":
            raise ChecksumMismatch(secret_id)
        if reason is not None:
            raise SecretStoreError(
                f"injected fault: {reason}",
                reason=reason,
                transient=reason in TRANSIENT_REASONS,
                secret_id=secret_id,
            )

    def _take_failure(self, method: str) -> str | None:
        for key in (method, "*"):
            queue = self._failures.get(key)
            if queue:
                failure = queue[0]
                failure.remaining -= 1
                if failure.remaining <= 0:
                    queue.pop(0)
                return failure.reason
        return None

    @staticmethod
    def _check_ids(secret_id: str, version: str) -> None:
        if not _FAKE_SECRET_ID_RE.fullmatch(secret_id) or not _FAKE_VERSION_RE.fullmatch(version):
            raise SecretStoreError(
                f"invalid secret id {secret_id!r} or version {version!r}",
                reason="INVALID_ARGUMENT",
                transient=False,
                secret_id=secret_id,
            )

    def _existing(self, secret_id: str) -> list[_FakeVersion]:
        versions = self._secrets.get(secret_id)
        if versions is None:
            raise SecretStoreError(
                f"secret {secret_id!r} not found",
                reason="NOT_FOUND",
                transient=False,
                secret_id=secret_id,
            )
        return versions

    def _resolve(self, secret_id: str, version: str) -> tuple[str, _FakeVersion]:
        versions = self._existing(secret_id)
        number = len(versions) if version == LATEST else int(version)
        if not 1 <= number <= len(versions):
            raise SecretStoreError(
                f"secret {secret_id!r} version {version} not found",
                reason="NOT_FOUND",
                transient=False,
                secret_id=secret_id,
            )
        return str(number), versions[number - 1]

    def _set_state(self, secret_id: str, version: str, state: VersionState) -> None:
        number, found = self._resolve(secret_id, version)
        if found.state is VersionState.DESTROYED:
            raise SecretStoreError(
                f"secret {secret_id!r} version {number} is DESTROYED",
                reason="FAILED_PRECONDITION",
                transient=False,
                secret_id=secret_id,
            )
        found.state = state
