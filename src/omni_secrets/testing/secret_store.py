"""Secret store fakes: :class:`FakeSecretStore`, a dict of versions with GSM's semantics."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from omni_secrets.domain.clock import Clock, SystemClock
from omni_secrets.domain.errors import ChecksumMismatch, SecretStoreError
from omni_secrets.domain.secret_store import (
    LATEST,
    TRANSIENT_REASONS,
    AccessedSecret,
    SecretChanged,
    SecretInfo,
    VersionInfo,
    VersionState,
)
from omni_secrets.domain.values import SecretValue

_FAKE_SECRET_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
_FAKE_VERSION_RE = re.compile(r"latest|[1-9][0-9]{0,18}|[A-Za-z][A-Za-z0-9_-]{0,62}")
_FAKE_ALIAS_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")
FAKE_STORE_METHODS = (
    "access",
    "list_versions",
    "get_version",
    "get_secret",
    "update_aliases",
    "update_annotations",
    "update_rotation",
)
_ETAGS = itertools.count(1)


def _new_etag() -> str:
    return f'"fake-etag-{next(_ETAGS)}"'


@dataclass
class _FakeVersion:
    value: str
    state: VersionState
    created_at: datetime


@dataclass
class _FakeMeta:
    etag: str = field(default_factory=_new_etag)
    aliases: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    next_rotation_time: datetime | None = None
    rotation_period: timedelta | None = None
    has_topics: bool = False

    def info(self, secret_id: str) -> SecretInfo:
        return SecretInfo(
            secret_id=secret_id,
            etag=self.etag,
            aliases=MappingProxyType(dict(self.aliases)),
            annotations=MappingProxyType(dict(self.annotations)),
            next_rotation_time=self.next_rotation_time,
            rotation_period=self.rotation_period,
            has_topics=self.has_topics,
        )


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
        self._meta: dict[str, _FakeMeta] = {}
        self._failures: dict[str, list[_FakeFailure]] = {}
        self._corrupt = 0
        self.calls: Counter[str] = Counter()
        self.latency_seconds = 0.0

    # set-up ------------------------------------------------------------------------------------

    def add_version(self, secret_id: str, value: str) -> str:
        """Add an ENABLED version (creating the secret if needed); return its number."""
        versions = self._secrets.setdefault(secret_id, [])
        self._meta.setdefault(secret_id, _FakeMeta())
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

    def set_aliases(self, secret_id: str, aliases: Mapping[str, str]) -> None:
        """Replace the aliases as someone else would (gcloud): no etag check, a new etag."""
        meta = self._meta[secret_id]
        meta.aliases = dict(aliases)
        meta.etag = _new_etag()

    def set_topics(self, secret_id: str, has_topics: bool = True) -> None:
        """Give the secret notification topics (needed for a rotation schedule)."""
        self._meta[secret_id].has_topics = has_topics

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

    async def get_secret(self, secret_id: str) -> SecretInfo:
        """As :meth:`SecretStore.get_secret`: aliases, etag, annotations, schedule."""
        await self._enter("get_secret", secret_id)
        self._check_ids(secret_id, LATEST)
        self._existing(secret_id)
        return self._meta[secret_id].info(secret_id)

    async def update_aliases(
        self, secret_id: str, aliases: Mapping[str, str], etag: str
    ) -> SecretInfo:
        """As :meth:`SecretStore.update_aliases`: compare-and-set on ``etag``."""
        await self._enter("update_aliases", secret_id)
        meta = self._checked_meta(secret_id, etag)
        for alias, version in aliases.items():
            valid = _FAKE_ALIAS_RE.fullmatch(alias) and alias != LATEST and not alias.isdigit()
            if not valid or not version.isdigit():
                raise SecretStoreError(
                    f"invalid alias {alias!r} -> {version!r}",
                    reason="INVALID_ARGUMENT",
                    transient=False,
                    secret_id=secret_id,
                )
            number, found = self._resolve(secret_id, version)
            if found.state is VersionState.DESTROYED:
                raise SecretChanged(secret_id, f"version {number} is DESTROYED")
        meta.aliases = {alias: str(int(version)) for alias, version in aliases.items()}
        meta.etag = _new_etag()
        return meta.info(secret_id)

    async def update_annotations(
        self, secret_id: str, annotations: Mapping[str, str], etag: str
    ) -> SecretInfo:
        """As :meth:`SecretStore.update_annotations`."""
        await self._enter("update_annotations", secret_id)
        meta = self._checked_meta(secret_id, etag)
        meta.annotations = dict(annotations)
        meta.etag = _new_etag()
        return meta.info(secret_id)

    async def update_rotation(
        self,
        secret_id: str,
        next_rotation_time: datetime | None,
        rotation_period: timedelta | None,
        etag: str,
    ) -> SecretInfo:
        """As :meth:`SecretStore.update_rotation` (a time needs topics: INVALID_ARGUMENT)."""
        await self._enter("update_rotation", secret_id)
        meta = self._checked_meta(secret_id, etag)
        if next_rotation_time is not None and not meta.has_topics:
            raise SecretStoreError(
                f"secret {secret_id!r} has no topics for a rotation schedule",
                reason="INVALID_ARGUMENT",
                transient=False,
                secret_id=secret_id,
            )
        meta.next_rotation_time, meta.rotation_period = next_rotation_time, rotation_period
        meta.etag = _new_etag()
        return meta.info(secret_id)

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

    def _checked_meta(self, secret_id: str, etag: str) -> _FakeMeta:
        self._check_ids(secret_id, LATEST)
        self._existing(secret_id)
        meta = self._meta[secret_id]
        if etag and etag != meta.etag:
            raise SecretChanged(secret_id)
        return meta

    def _resolve(self, secret_id: str, version: str) -> tuple[str, _FakeVersion]:
        versions = self._existing(secret_id)
        if version != LATEST and not version.isdigit():
            alias = self._meta[secret_id].aliases.get(version)
            if alias is None:
                raise SecretStoreError(
                    f"secret {secret_id!r} has no alias {version!r}",
                    reason="NOT_FOUND",
                    transient=False,
                    secret_id=secret_id,
                )
            version = alias
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
