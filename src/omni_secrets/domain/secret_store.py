"""The ``SecretStore`` port: what the cache, the service and ``db seed`` need from GSM.

The production adapter is ``adapters/gsm.py`` (the official async client, our own retries and
CRC32C checks); tests and the benchmark use ``omni_secrets.testing.FakeSecretStore``. Failures
surface as :class:`~omni_secrets.domain.errors.SecretStoreError` whose ``transient`` flag tells a
retryable outage (keep serving the old value) from a permanent refusal (drop the entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from omni_secrets.domain.values import SecretValue

LATEST = "latest"

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
    """A version's metadata (no payload)."""

    version: str
    state: VersionState
    create_time: datetime


class SecretStore(Protocol):
    """Read access to the secrets of one GCP project."""

    async def access(self, secret_id: str, version: str = LATEST) -> AccessedSecret:
        """Read one version's payload.

        Args:
            secret_id: the GSM secret id, e.g. ``apex-omni-api-key``.
            version: a version number as a string, or ``latest`` (the newest version whatever
                its state, as GSM defines it).

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
            ValueError: ``state`` is DESTROYED (destroying is irreversible: use gcloud).
        """
        ...


def newest_enabled(versions: Sequence[VersionInfo]) -> VersionInfo | None:
    """The most recently created ENABLED version, or None when there is none."""
    enabled = [v for v in versions if v.state is VersionState.ENABLED]
    return max(enabled, key=lambda v: int(v.version), default=None)
