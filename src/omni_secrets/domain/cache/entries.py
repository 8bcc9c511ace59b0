"""The cache's state: one :class:`Slot` per catalog type and the snapshots ``get`` reads.

Everything that decides *what is served* lives here, shared by the refresher, the override layer
and the status view: publishing a slot's snapshot into the dict that ``get`` reads (break-glass
override first, else the GSM entry), dropping what has run out (:meth:`CacheEntries.settle`, the
slow path of ``get``), and falling back to GSM when an override ends. Factored out of the
facade so that each of those parts changes the same state through the same few rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain.cache.events import (
    CacheEvent,
    CacheListener,
    Expired,
    ListenerFailed,
    OverrideEnded,
    OverrideStopReason,
)
from omni_secrets.domain.cache.models import CachedSecret, CacheSource, FetchFailure, RefreshOutcome
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import UnknownSecretType


@dataclass(slots=True, eq=False)
class Slot:
    """The mutable bookkeeping of one type; only the event loop touches it."""

    secret_type: SecretType
    required: bool
    gsm: CachedSecret | None = None
    override: CachedSecret | None = None
    failure: FetchFailure | None = None
    consecutive_failures: int = 0
    next_refresh_at: float = -math.inf
    last_attempt_end: float = -math.inf
    last_fetched_at: datetime | None = None
    last_fetched_monotonic: float | None = None
    inflight: asyncio.Task[RefreshOutcome] | None = None
    follow_up: asyncio.Task[RefreshOutcome] | None = None
    # Bumped by revoke(): a fetch that started before a revocation must not re-install its value.
    revocations: int = 0


class CacheEntries:
    """The slots, the served snapshots and the rules that keep the two in step.

    Args:
        catalog: one slot per type, in catalog order.
        clock: wall time for timestamps.
        monotonic: the clock that freshness and deadlines are measured on.
        ttl_seconds, max_stale_seconds: as :class:`OmniSecretCache` takes them.
        retry_floor_seconds: the soonest a type is fetched again after its last attempt when a
            refresh is requested (the cache's ``retry_initial_seconds``).
        listener: receives the cache's events.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        clock: Clock,
        monotonic: Callable[[], float],
        ttl_seconds: float,
        max_stale_seconds: float,
        retry_floor_seconds: float,
        listener: CacheListener | None,
    ) -> None:
        self.clock = clock
        self.monotonic = monotonic
        self.ttl = ttl_seconds
        self.max_stale = max_stale_seconds
        self.retry_floor = retry_floor_seconds
        self.listener = listener
        self.served: dict[SecretType, CachedSecret] = {}
        self.slots: dict[SecretType, Slot] = {
            entry.secret_type: Slot(entry.secret_type, entry.required) for entry in catalog
        }
        # Set when a deadline the background refresher sleeps toward may have moved.
        self.wake = asyncio.Event()
        self.hydrated_at: datetime | None = None
        self.last_refresh_at: datetime | None = None
        self.version = 0

    def get(self, secret_type: SecretType) -> CachedSecret | None:
        """What ``OmniSecretCache.get`` answers (it repeats these lines to spare a call frame)."""
        entry = self.served.get(secret_type)
        if entry is None or self.monotonic() < entry.serve_until:
            return entry
        return self.settle(secret_type, self.monotonic())

    def slot(self, secret_type: SecretType) -> Slot:
        """The slot of ``secret_type``; raises ``UnknownSecretType`` outside the catalog."""
        slot = self.slots.get(secret_type)
        if slot is None:
            raise UnknownSecretType(str(secret_type))
        return slot

    def select(self, types: Iterable[SecretType] | None) -> list[Slot]:
        """The slots of ``types`` (every slot for None), each once, in the order asked."""
        if types is None:
            return list(self.slots.values())
        chosen: dict[SecretType, Slot] = {}
        for secret_type in types:
            slot = self.slot(secret_type)
            chosen.setdefault(slot.secret_type, slot)
        return list(chosen.values())

    def publish(self, slot: Slot) -> None:
        """Make what ``slot`` serves (override first, else GSM, else nothing) visible to ``get``."""
        self.version += 1
        served = slot.override if slot.override is not None else slot.gsm
        if served is None:
            self.served.pop(slot.secret_type, None)
        else:
            self.served[slot.secret_type] = served

    def settle(self, secret_type: SecretType, now: float) -> CachedSecret | None:
        """Drop what has run out for ``secret_type`` at monotonic ``now``; return what is served."""
        slot = self.slots.get(secret_type)
        if slot is None:
            return None
        ended = slot.override
        if ended is not None and now >= ended.serve_until:
            slot.override = None
        else:
            ended = None
        expired = slot.gsm
        if expired is not None and now >= expired.serve_until:
            slot.gsm = None
            slot.next_refresh_at = min(slot.next_refresh_at, now)
        else:
            expired = None
        if ended is None and expired is None:
            return self.served.get(secret_type)
        self.publish(slot)
        if expired is not None:
            self.wake.set()
            self.emit(
                Expired(
                    secret_type=slot.secret_type,
                    version=expired.version,
                    expires_at=expired.expires_at,
                    stale_seconds=expired.serve_until - expired.fresh_until,
                )
            )
        if ended is not None and ended.override_id is not None:
            self.end_override(slot, ended.override_id, OverrideStopReason.EXPIRED)
        return self.served.get(secret_type)

    def end_override(self, slot: Slot, override_id: str, reason: OverrideStopReason) -> None:
        """Report an override that is no longer served; ask for a fetch if GSM has nothing."""
        now = self.monotonic()
        if slot.gsm is not None and now >= slot.gsm.serve_until:
            self.settle(slot.secret_type, now)
        if slot.gsm is None:
            self.request_fetch(slot, now)
        self.emit(
            OverrideEnded(
                secret_type=slot.secret_type,
                override_id=override_id,
                reason=reason,
                reverted_to=CacheSource.GSM if slot.gsm is not None else None,
            )
        )

    def request_fetch(self, slot: Slot, now: float) -> None:
        """Make ``slot`` due now, but no sooner than the retry floor after its last attempt."""
        soonest = max(now, slot.last_attempt_end + self.retry_floor)
        slot.next_refresh_at = min(slot.next_refresh_at, soonest)
        self.wake.set()

    def emit(self, event: CacheEvent) -> None:
        """Hand ``event`` to the listener; a failing listener never breaks serving."""
        listener = self.listener
        if listener is None:
            return
        try:
            listener.on_event(event)
        except Exception as exc:
            # Tell the listener once (its log line); if that fails too, there is no one to tell.
            with contextlib.suppress(Exception):
                listener.on_event(ListenerFailed(event_type=type(event).__name__, error=exc))
