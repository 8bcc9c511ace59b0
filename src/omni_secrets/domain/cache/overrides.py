"""The cache's override layer: what is imposed over the fetched GSM entries from outside.

Two things are: a break-glass override (installed and removed by the break-glass service), served
instead of the GSM entry until it ends; and a revocation (a GSM event said the served version is
disabled or the secret deleted), which drops the GSM entry at once whatever its TTL. Neither
fetches anything; both change what is served through
:class:`~omni_secrets.domain.cache.entries.CacheEntries`, and the refresher picks up from there.
"""

from __future__ import annotations

from datetime import datetime

from omni_secrets.domain.cache.entries import CacheEntries
from omni_secrets.domain.cache.events import (
    Evicted,
    OverrideEnded,
    OverrideInstalled,
    OverrideStopReason,
)
from omni_secrets.domain.cache.models import CachedSecret, CacheSource, FetchFailure
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.values import SecretValue


class OverrideLayer:
    """Installs and removes break-glass overrides and applies revocations.

    The behaviour of each method is documented on :class:`OmniSecretCache`, which delegates here.
    """

    def __init__(self, entries: CacheEntries) -> None:
        self._entries = entries

    def install(
        self,
        secret_type: SecretType,
        value: SecretValue,
        override_id: str,
        activated_at: datetime,
        expires_at: datetime,
    ) -> CachedSecret:
        """Serve ``value`` instead of GSM until ``expires_at``; returns the served snapshot."""
        entries = self._entries
        slot = entries.slot(secret_type)
        entry = self._snapshot(slot.secret_type, value, override_id, activated_at, expires_at)
        previous = slot.override
        slot.override = entry
        entries.publish(slot)
        # The loop may be asleep until a later deadline; it must wake for this expiry.
        entries.wake.set()
        if previous is not None and previous.override_id == override_id:
            return entry
        if previous is not None and previous.override_id is not None:
            entries.emit(
                OverrideEnded(
                    secret_type=slot.secret_type,
                    override_id=previous.override_id,
                    reason=OverrideStopReason.REPLACED,
                    reverted_to=CacheSource.BREAK_GLASS,
                )
            )
        entries.emit(
            OverrideInstalled(
                secret_type=slot.secret_type,
                override_id=override_id,
                activated_at=activated_at,
                expires_at=expires_at,
            )
        )
        return entry

    def _snapshot(
        self,
        secret_type: SecretType,
        value: SecretValue,
        override_id: str,
        activated_at: datetime,
        expires_at: datetime,
    ) -> CachedSecret:
        """The override's snapshot, its expiry converted to the monotonic clock once, here."""
        if not isinstance(value, SecretValue):
            raise TypeError("a break-glass value must be a SecretValue")
        if activated_at.tzinfo is None or expires_at.tzinfo is None:
            raise ValueError("override times must be timezone-aware")
        now_wall = self._entries.clock.now()
        now = self._entries.monotonic()
        remaining = (expires_at - now_wall).total_seconds()
        if remaining <= 0:
            raise ValueError(f"override {override_id!r} has already expired")
        age = max(0.0, (now_wall - activated_at).total_seconds())
        return CachedSecret(
            secret_type=secret_type,
            value=value,
            version=None,
            fetched_at=activated_at,
            expires_at=expires_at,
            source=CacheSource.BREAK_GLASS,
            serve_until=now + remaining,
            fresh_until=now + remaining,
            fetched_monotonic=now - age,
            override_id=override_id,
        )

    def remove(self, secret_type: SecretType, override_id: str | None) -> bool:
        """Stop serving the override of ``secret_type`` (only ``override_id``, when given)."""
        entries = self._entries
        slot = entries.slot(secret_type)
        current = slot.override
        if current is None or current.override_id is None:
            return False
        if override_id is not None and current.override_id != override_id:
            return False
        slot.override = None
        entries.publish(slot)
        entries.end_override(slot, current.override_id, OverrideStopReason.REMOVED)
        return True

    def revoke(self, secret_type: SecretType, version: str | None, code: str, message: str) -> bool:
        """Drop the GSM entry of ``secret_type`` when ``version`` (None: any) is the one held."""
        entries = self._entries
        slot = entries.slot(secret_type)
        current = slot.gsm
        if current is not None and version is not None and current.version != version:
            return False  # another version is served: this revocation is not about it
        now = entries.monotonic()
        slot.revocations += 1
        slot.failure = FetchFailure(
            code=code, message=message, at=entries.clock.now(), transient=False
        )
        entries.version += 1
        # Retry later, not at once: the fetch would only confirm what the event just said.
        slot.next_refresh_at = max(slot.next_refresh_at, now + entries.retry_floor)
        if current is None:
            return False
        slot.gsm = None
        entries.publish(slot)
        entries.emit(Evicted(secret_type=slot.secret_type, version=current.version, reason=code))
        return True
