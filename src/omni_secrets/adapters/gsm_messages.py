"""GSM messages to domain values and back, for :mod:`omni_secrets.adapters.gsm`.

Kept apart from the adapter (calls, retries, channel) because it is pure message shaping: which
``UpdateSecret`` mask path each port update writes, and how resource names, maps, durations and
timestamps become the domain's plain values (:class:`~omni_secrets.domain.secret_store.SecretInfo`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from google.cloud.secretmanager_v1.types import resources, service

from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.secret_store import SecretInfo, VersionInfo, VersionState

_STATES = {state.value: state for state in VersionState}

#: An alias GSM accepts: letters, digits, ``-`` and ``_``, at most 63, not all digits, and
#: not ``latest`` (checked in :func:`check_aliases`).
ALIAS_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")
_NUMBER_RE = re.compile(r"[1-9][0-9]{0,18}")


def version_of(name: str) -> str | None:
    """The version number a resource name ends with, or None (``.../versions/3`` -> ``3``)."""
    number = name.rsplit("/", 1)[-1]
    return number if number.isdigit() else None


def as_datetime(value: Any) -> datetime:
    """A proto timestamp as an aware UTC datetime (the epoch when unset)."""
    if value is None:
        return datetime.fromtimestamp(0, UTC)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=UTC,
    )


def version_info(item: Any) -> VersionInfo | None:
    """A ``resources.SecretVersion`` as :class:`VersionInfo`, or None when it names no number.

    STATE_UNSPECIFIED is never sent by GSM; an unknown state is never taken for ENABLED.
    """
    version = version_of(item.name)
    if version is None:
        return None
    state = _STATES.get(item.state.name, VersionState.DISABLED)
    scheduled = (
        as_datetime(item.scheduled_destroy_time) if "scheduled_destroy_time" in item else None
    )
    return VersionInfo(version, state, as_datetime(item.create_time), scheduled)


def secret_info(secret_id: str, secret: Any) -> SecretInfo:
    """The domain view of a ``resources.Secret``."""
    rotation = secret.rotation
    period = rotation.rotation_period if "rotation_period" in rotation else None
    ttl = secret.version_destroy_ttl if "version_destroy_ttl" in secret else None
    return SecretInfo(
        secret_id=secret_id,
        etag=str(secret.etag),
        aliases=MappingProxyType(
            {str(alias): str(number) for alias, number in secret.version_aliases.items()}
        ),
        annotations=MappingProxyType(dict(secret.annotations)),
        next_rotation_time=(
            _aware(rotation.next_rotation_time) if "next_rotation_time" in rotation else None
        ),
        rotation_period=period if period else None,
        has_topics=len(secret.topics) > 0,
        version_destroy_ttl=ttl if ttl else None,
    )


def check_aliases(secret_id: str, aliases: Mapping[str, str]) -> dict[str, int]:
    """The alias map as GSM takes it (numbers), or INVALID_ARGUMENT before any call."""
    checked: dict[str, int] = {}
    for alias, version in aliases.items():
        valid_alias = ALIAS_RE.fullmatch(alias) and alias != "latest" and not alias.isdigit()
        if not valid_alias or not _NUMBER_RE.fullmatch(version):
            raise SecretStoreError(
                f"invalid alias {alias!r} -> version {version!r} for {secret_id!r}",
                reason="INVALID_ARGUMENT",
                transient=False,
                secret_id=secret_id,
            )
        checked[alias] = int(version)
    return checked


def update_request(name: str, etag: str, path: str, value: Any) -> Any:
    """An ``UpdateSecretRequest`` writing one field (``value`` None clears it) under ``etag``."""
    secret = resources.Secret(name=name, etag=etag)
    if value is not None:
        setattr(secret, path, value)
    return service.UpdateSecretRequest(secret=secret, update_mask={"paths": [path]})


def rotation_value(next_time: datetime | None, period: timedelta | None) -> Any:
    """The ``rotation`` field for :func:`update_request` (None clears the schedule)."""
    if next_time is None and period is None:
        return None
    rotation = resources.Rotation()
    if next_time is not None:
        rotation.next_rotation_time = next_time
    if period is not None:
        rotation.rotation_period = period
    return rotation


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
