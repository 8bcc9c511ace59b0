"""The ``SecretStore`` port: what the cache, the service and ``db seed`` need from GSM.

The production adapter is ``adapters/gsm.py`` (the official async client, our own retries and
CRC32C checks); tests and the benchmark use ``omni_secrets.testing.FakeSecretStore``. Failures
surface as :class:`~omni_secrets.domain.errors.SecretStoreError` whose ``transient`` flag tells a
retryable outage (keep serving the old value) from a permanent refusal (drop the entry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.values import SecretValue

LATEST = "latest"
#: The version alias naming the version served (contract section 15), and the one before it.
CURRENT_ALIAS = "current"
PREVIOUS_ALIAS = "previous"

# Failures worth retrying and, in the cache, worth riding out on the old value: the outage kinds
# of design.md ("Cache"). Everything else (PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION, ...)
# is permanent: retrying cannot help and the cache fails closed. Adapters and fakes share this set.
TRANSIENT_REASONS = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL", "CHECKSUM_MISMATCH"}
)


class VersionState(StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"
    DESTROYED = "DESTROYED"


@dataclass(frozen=True, slots=True)
class AccessedSecret:
    """A version's payload as read from the store, checksum already verified.

    Attributes:
        secret_id: the GSM secret id (without project).
        version: the resolved version number as a string (never ``latest``).
        value: the payload, redacting.
    """

    secret_id: str
    version: str
    value: SecretValue


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """A version's metadata (no payload).

    ``scheduled_destroy_time`` is set while a destruction waits out the secret's
    ``version_destroy_ttl`` (the version is DISABLED until then).
    """

    version: str
    state: VersionState
    create_time: datetime
    scheduled_destroy_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A secret's own metadata (``GetSecret``): what names its versions, and its schedule.

    Attributes:
        secret_id: the GSM secret id (without project).
        etag: the opaque etag of this read; pass it back to an update to compare-and-set.
        aliases: version alias -> version number as a string (``{"current": "3"}``).
        annotations: the secret's annotations (free-form metadata, no secret value).
        next_rotation_time: when GSM will next publish ``SECRET_ROTATE``, or None.
        rotation_period: how far GSM moves ``next_rotation_time`` on after it, or None.
        has_topics: True when GSM publishes this secret's events (rotation needs topics).
        version_destroy_ttl: how long a destroyed version stays DISABLED first, or None.
    """

    secret_id: str
    etag: str
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    next_rotation_time: datetime | None = None
    rotation_period: timedelta | None = None
    has_topics: bool = False
    version_destroy_ttl: timedelta | None = None

    @property
    def current(self) -> str | None:
        """The version ``current`` names, or None when the secret has no such alias."""
        return self.aliases.get(CURRENT_ALIAS)

    @property
    def previous(self) -> str | None:
        """The version ``previous`` names, or None."""
        return self.aliases.get(PREVIOUS_ALIAS)


class SecretChanged(SecretStoreError):
    """An update's precondition failed in GSM (``FAILED_PRECONDITION``): never retried.

    Most often the secret changed since the read whose etag the update carried (someone else
    moved an alias, or a concurrent commit did); also an alias naming a DESTROYED version.
    Nothing was changed by the refused update: re-read and decide again.
    """

    def __init__(
        self, secret_id: str, detail: str = "the secret changed since it was read"
    ) -> None:
        super().__init__(
            f"Secret Manager refused the update of {secret_id!r}: {detail}",
            reason="FAILED_PRECONDITION",
            transient=False,
            secret_id=secret_id,
        )


class SecretStore(Protocol):
    """Read access to the secrets of one GCP project, and compare-and-set on their aliases.

    The service writes only a secret's own metadata (aliases, annotations, rotation schedule),
    always under the etag it read; versions are written by operator tooling
    (:class:`SecretVersionAdmin`).
    """

    async def access(self, secret_id: str, version: str = LATEST) -> AccessedSecret:
        """Read one version's payload.

        Args:
            secret_id: the GSM secret id, e.g. ``apex-omni-api-key``.
            version: a version number as a string, ``latest`` (the newest version whatever
                its state, as GSM defines it), or a version alias such as ``current``
                (``NOT_FOUND`` when the secret has no such alias).

        Raises:
            SecretStoreError: with ``reason`` the gRPC code name (``NOT_FOUND``,
                ``FAILED_PRECONDITION`` for a disabled/destroyed version, ``PERMISSION_DENIED``,
                ``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, …) or ``CHECKSUM_MISMATCH``; transient
                failures have already been retried by the adapter when this is raised.
        """
        ...

    async def list_versions(self, secret_id: str) -> Sequence[VersionInfo]:
        """Every version of a secret with its state, newest first.

        Raises:
            SecretStoreError: as :meth:`access`.
        """
        ...

    async def get_version(self, secret_id: str, version: str) -> VersionInfo:
        """One version's state, no payload (``GetSecretVersion``): confirms a GSM event.

        Raises:
            SecretStoreError: as :meth:`access` (``NOT_FOUND`` when the secret or the version
                does not exist).
        """
        ...

    async def get_secret(self, secret_id: str) -> SecretInfo:
        """The secret's aliases, etag, annotations and rotation schedule (``GetSecret``).

        Raises:
            SecretStoreError: as :meth:`access`.
        """
        ...

    async def update_aliases(
        self, secret_id: str, aliases: Mapping[str, str], etag: str
    ) -> SecretInfo:
        """Replace every version alias of the secret, if its etag is still ``etag``.

        Args:
            aliases: the whole new map, alias -> version number (an alias left out is removed).
            etag: from the :meth:`get_secret` this decision was based on (compare-and-set).

        Returns:
            The secret after the update (with its new etag).

        Raises:
            SecretChanged: the etag no longer matches, or an alias names a DESTROYED version.
            SecretStoreError: ``NOT_FOUND`` (the secret, or a version an alias names),
                ``INVALID_ARGUMENT`` (a malformed alias or version), outages. Not retried: a
                retry after a lost answer would fail on the etag the first attempt changed.
        """
        ...

    async def update_annotations(
        self, secret_id: str, annotations: Mapping[str, str], etag: str
    ) -> SecretInfo:
        """Replace the secret's annotations under ``etag``. Raises as :meth:`update_aliases`."""
        ...

    async def update_rotation(
        self,
        secret_id: str,
        next_rotation_time: datetime | None,
        rotation_period: timedelta | None,
        etag: str,
    ) -> SecretInfo:
        """Set (or, with None, clear) GSM's rotation reminder under ``etag``.

        Raises:
            SecretChanged / SecretStoreError: as :meth:`update_aliases` (``INVALID_ARGUMENT``
                when the secret has no topics and a time is set).
        """
        ...


class SecretVersionAdmin(Protocol):
    """Write access to a secret's versions: what ``omni-secrets gsm versions`` needs.

    The service itself never writes to GSM; only operator tooling does.
    """

    async def add_version(self, secret_id: str, value: SecretValue) -> VersionInfo:
        """Add a new ENABLED version holding ``value``; returns its metadata (never the value).

        Not retried (a retried add could create two versions).

        Raises:
            SecretStoreError: as :meth:`SecretStore.access`.
        """
        ...

    async def set_version_state(
        self, secret_id: str, version: str, state: VersionState
    ) -> VersionInfo:
        """Enable or disable one version (``state`` ENABLED or DISABLED); returns its metadata.

        Raises:
            SecretStoreError: as :meth:`SecretStore.access` (``FAILED_PRECONDITION`` for a
                destroyed version, ``NOT_FOUND``).
            ValueError: ``state`` is DESTROYED (see :meth:`destroy_version`).
        """
        ...

    async def destroy_version(self, secret_id: str, version: str) -> VersionInfo:
        """Destroy one version (irreversible; DISABLED with ``scheduled_destroy_time`` first
        where the secret has a ``version_destroy_ttl``). Sent once.

        Raises:
            SecretStoreError: as :meth:`SecretStore.access` (``FAILED_PRECONDITION`` for a
                version already destroyed, ``NOT_FOUND``).
        """
        ...


def newest_enabled(versions: Sequence[VersionInfo]) -> VersionInfo | None:
    """The most recently created ENABLED version, or None when there is none."""
    enabled = [v for v in versions if v.state is VersionState.ENABLED]
    return max(enabled, key=lambda v: int(v.version), default=None)
