"""What status, readiness and the CLI read about the cache, without its values.

:class:`CacheReadout` only reads :class:`~omni_secrets.domain.cache.entries.CacheEntries`. It goes
through ``get`` like any reader, so an entry or override that has just run out is dropped before
it is described (the same answer ``get`` would give); it changes nothing else.
"""

from __future__ import annotations

import math
from datetime import datetime

from omni_secrets.domain.cache.entries import CacheEntries, Slot
from omni_secrets.domain.cache.models import (
    CachedSecret,
    CacheEntryInfo,
    CacheState,
    FetchFailure,
    OverrideInfo,
)
from omni_secrets.domain.catalog import SecretType


class CacheReadout:
    """Read-only answers about the cache; each is documented on :class:`OmniSecretCache`."""

    def __init__(self, entries: CacheEntries) -> None:
        self._entries = entries

    @property
    def state(self) -> CacheState:
        """``ready``, ``degraded`` or ``empty`` as the contract defines them, right now."""
        slots = self._entries.slots.values()
        get = self._entries.get
        served = {slot.secret_type for slot in slots if get(slot.secret_type)}
        if not served:
            return CacheState.EMPTY
        if all(slot.secret_type in served for slot in slots if slot.required):
            return CacheState.READY
        return CacheState.DEGRADED

    def missing_required(self) -> tuple[SecretType, ...]:
        """The required types that ``get`` would not serve now, in catalog order."""
        get = self._entries.get
        return tuple(
            slot.secret_type
            for slot in self._entries.slots.values()
            if slot.required and get(slot.secret_type) is None
        )

    def describe(self, secret_type: SecretType) -> CacheEntryInfo:
        """Everything status shows about ``secret_type``, without its value."""
        entries = self._entries
        slot = entries.slot(secret_type)
        served = entries.get(slot.secret_type)
        now = entries.monotonic()
        return CacheEntryInfo(
            secret_type=slot.secret_type,
            required=slot.required,
            source=served.source if served else None,
            version=served.version if served else None,
            fetched_at=served.fetched_at if served else None,
            expires_at=served.expires_at if served else None,
            age_seconds=served.age_seconds(now) if served else None,
            stale=served is not None and served.stale(now),
            last_error=slot.failure,
            consecutive_failures=slot.consecutive_failures,
            override=_override_info(slot),
            gsm_version=slot.gsm.version if slot.gsm else None,
            last_fetched_at=slot.last_fetched_at,
            seconds_since_fetch=(
                now - slot.last_fetched_monotonic
                if slot.last_fetched_monotonic is not None
                else math.inf
            ),
            refreshing=slot.inflight is not None,
            next_refresh_in_seconds=None
            if slot.inflight is not None
            else slot.next_refresh_at - now,
        )

    def status_of(self, secret_type: SecretType) -> tuple[CachedSecret | None, FetchFailure | None]:
        """What ``get`` serves for ``secret_type`` and its last failed fetch."""
        slot = self._entries.slot(secret_type)
        return self._entries.get(slot.secret_type), slot.failure

    def override_info(self, secret_type: SecretType) -> OverrideInfo | None:
        """The break-glass override served for ``secret_type`` now, if any (no value)."""
        slot = self._entries.slot(secret_type)
        self._entries.get(slot.secret_type)  # drops an override that has just run out
        return _override_info(slot)

    def entries(self) -> tuple[CacheEntryInfo, ...]:
        """:meth:`describe` for every catalog type, in catalog order."""
        return tuple(self.describe(secret_type) for secret_type in self._entries.slots)

    @property
    def version(self) -> int:
        """Grows with every change status shows (see ``OmniSecretCache.version``)."""
        return self._entries.version

    @property
    def hydrated_at(self) -> datetime | None:
        """When the last hydration finished; None before."""
        return self._entries.hydrated_at

    @property
    def last_refresh_at(self) -> datetime | None:
        """When the most recent fetch of any type finished; None before."""
        return self._entries.last_refresh_at


def _override_info(slot: Slot) -> OverrideInfo | None:
    override = slot.override
    if override is None or override.override_id is None:
        return None
    return OverrideInfo(
        override_id=override.override_id,
        activated_at=override.fetched_at,
        expires_at=override.expires_at,
    )
