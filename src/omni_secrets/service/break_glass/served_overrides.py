"""``ServedOverrides``: the decrypted break-glass overrides this process holds, and the cache sync.

The break-glass service decides *whether* an override exists (the database is the truth); this
registry keeps the ones this process has decrypted and makes the cache serve the right one per
type: the newest activation still inside its window, or none (the type reverts to GSM). Several
overrides of one type may be active at once; when the served one ends, the next newest takes over.

Values live here only as :class:`~omni_secrets.domain.values.SecretValue` (redacting), and the
cache is the only place they are handed to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.models import BreakGlassOverrideRecord
from omni_secrets.domain.values import SecretValue


@dataclass(frozen=True, slots=True)
class KnownOverride:
    """An override this process can serve: its stored record and the decrypted value."""

    record: BreakGlassOverrideRecord
    value: SecretValue


class ServedOverrides:
    """Known overrides by id, kept in line with what ``cache`` serves.

    Args:
        cache: where the served override of each type is installed.
        clock: decides which overrides are still inside their window.
    """

    def __init__(self, cache: OmniSecretCache, clock: Clock) -> None:
        self._cache = cache
        self._clock = clock
        self._known: dict[str, KnownOverride] = {}

    def __contains__(self, override_id: object) -> bool:
        return override_id in self._known

    def get(self, override_id: str) -> KnownOverride | None:
        """The known override with this id, if any."""
        return self._known.get(override_id)

    def records(self) -> dict[str, BreakGlassOverrideRecord]:
        """A snapshot of the known overrides' records by id."""
        return {oid: known.record for oid, known in self._known.items()}

    def add(self, record: BreakGlassOverrideRecord, value: SecretValue) -> None:
        """Know ``record`` with its decrypted ``value`` and re-serve its type."""
        self._known[record.override_id] = KnownOverride(record, value)
        self.sync(record.secret_type)

    def forget(self, records: Iterable[BreakGlassOverrideRecord]) -> set[SecretType]:
        """Drop ``records`` (ended) and re-serve their types.

        Returns:
            The types touched that now have no active override left (their alert may end).
        """
        types: set[SecretType] = set()
        for record in records:
            self._known.pop(record.override_id, None)
            types.add(record.secret_type)
        idle = set()
        for secret_type in types:
            self.sync(secret_type)
            if not self.active_of(secret_type):
                idle.add(secret_type)
        return idle

    def active_of(self, secret_type: SecretType) -> list[KnownOverride]:
        """The known overrides of ``secret_type`` inside their window now."""
        now = self._clock.now()
        return [
            known
            for known in self._known.values()
            if known.record.secret_type == secret_type and known.record.is_active(now)
        ]

    def sync(self, secret_type: SecretType) -> None:
        """Make the cache serve the type's newest active override, or none."""
        candidates = self.active_of(secret_type)
        if not candidates:
            self._cache.remove_override(secret_type)
            return
        newest = max(candidates, key=lambda k: (k.record.activated_at, k.record.override_id))
        current = self._cache.describe(secret_type).override
        if current is not None and current.override_id == newest.record.override_id:
            return
        # ValueError: it expired between the check and the install; nothing to serve then.
        with contextlib.suppress(ValueError):
            self._cache.install_override(
                secret_type,
                newest.value,
                newest.record.override_id,
                newest.record.activated_at,
                newest.record.expires_at,
            )
