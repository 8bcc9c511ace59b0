"""The values :class:`~omni_secrets.domain.cache.OmniSecretCache` hands out.

Kept apart from the cache's behaviour (``secret_cache.py`` and the parts it composes) so that
``events.py`` and the cache's users can use these types without importing the cache. Everything
here is a frozen value: the served snapshot (:class:`CachedSecret`, the only one that holds a
value, behind the redacting :class:`~omni_secrets.domain.values.SecretValue`), the outcome of a
fetch, the hydration report, and the per-type description status renders (no values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.values import SecretValue


class Operation(StrEnum):
    """Why a fetch ran: the startup hydration or a (background or requested) refresh."""

    HYDRATE = "hydrate"
    REFRESH = "refresh"


@dataclass(frozen=True, slots=True)
class FetchFailure:
    """The last failed fetch of a type, as status shows it (``lastError``).

    Attributes:
        code: the ``SecretStoreError.reason`` (a gRPC code name such as ``UNAVAILABLE``, or
            ``CHECKSUM_MISMATCH``); ``UNKNOWN`` when ``fetch`` raised something unexpected.
        message: a sentence safe to show (never a value).
        at: when the fetch failed (UTC).
        transient: whether the old value may still be served (within the stale bound).
    """

    code: str
    message: str
    at: datetime
    transient: bool


class CacheSource(StrEnum):
    """Where a served value came from (the contract's ``cacheSource``; ``none`` is ``None``)."""

    GSM = "gsm"
    BREAK_GLASS = "break_glass"


class CacheState(StrEnum):
    """The contract's ``cache.state``.

    ``ready``: every required type is served; ``degraded``: some required type is not, but
    something is; ``empty``: nothing is served.
    """

    READY = "ready"
    DEGRADED = "degraded"
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class CachedSecret:
    """One served value and what is known about it; immutable, shared by every reader.

    Attributes:
        secret_type: the type.
        value: the credential (redacting wrapper).
        version: the GSM version number; None for a break-glass override.
        fetched_at: when it was read from GSM, or when the override was activated (UTC).
        expires_at: end of its TTL (GSM) or the override's expiry (UTC).
        source: ``gsm`` or ``break_glass``.
        serve_until: monotonic deadline after which it is never served (``expires_at`` plus the
            stale bound for GSM entries; the override's expiry for overrides).
        fresh_until: monotonic deadline of ``expires_at``; served past it means stale.
        fetched_monotonic: monotonic time of ``fetched_at`` (ages are measured on it).
        override_id: the break-glass override id; None for GSM entries.
    """

    secret_type: SecretType
    value: SecretValue
    version: str | None
    fetched_at: datetime
    expires_at: datetime
    source: CacheSource
    serve_until: float
    fresh_until: float
    fetched_monotonic: float
    override_id: str | None = None

    def age_seconds(self, now: float) -> float:
        """Seconds since ``fetched_at`` at monotonic ``now`` (never negative)."""
        return max(0.0, now - self.fetched_monotonic)

    def stale(self, now: float) -> bool:
        """Whether a GSM value served at monotonic ``now`` is past its ``expires_at``."""
        return self.source is CacheSource.GSM and now >= self.fresh_until


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """The result of one fetch of one type, shared by every caller that awaited it.

    Attributes:
        ok: the fetch succeeded and its value is now the type's GSM entry.
        version: on success the fetched version; on failure the version still held, if any.
        previous_version: the GSM version held before the fetch.
        error: the failure, when ``ok`` is False.
        duration_seconds: how long the fetch took.
    """

    secret_type: SecretType
    operation: Operation
    ok: bool
    version: str | None
    previous_version: str | None
    error: FetchFailure | None
    duration_seconds: float


@dataclass(frozen=True, slots=True)
class HydrationReport:
    """The outcome of :meth:`OmniSecretCache.hydrate`: one outcome per catalog type."""

    outcomes: Mapping[SecretType, RefreshOutcome]
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    state: CacheState
    missing_required: tuple[SecretType, ...]


@dataclass(frozen=True, slots=True)
class OverrideInfo:
    """The break-glass override of a type, without its value."""

    override_id: str
    activated_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CacheEntryInfo:
    """What status reports about one type; never holds a value.

    Attributes:
        source: what ``get`` serves now; None when nothing is served (``cacheSource: none``).
        version, fetched_at, expires_at, age_seconds: of the served snapshot (None when nothing
            is served; ``version`` is None for an override).
        stale: a GSM value is served past its ``expires_at`` (inside the stale bound).
        last_error: the last failed fetch; cleared by the next success.
        consecutive_failures: failed fetches in a row (0 after a success).
        override: the active break-glass override, if any.
        gsm_version: the GSM version held (also while an override is served).
        last_fetched_at: the last successful GSM fetch (kept after the entry is dropped).
        seconds_since_fetch: seconds since that fetch; ``math.inf`` when never fetched.
        refreshing: a fetch is in flight.
        next_refresh_in_seconds: when the background refresher fetches next (None while in
            flight); negative means overdue.
    """

    secret_type: SecretType
    required: bool
    source: CacheSource | None
    version: str | None
    fetched_at: datetime | None
    expires_at: datetime | None
    age_seconds: float | None
    stale: bool
    last_error: FetchFailure | None
    consecutive_failures: int
    override: OverrideInfo | None
    gsm_version: str | None
    last_fetched_at: datetime | None
    seconds_since_fetch: float
    refreshing: bool
    next_refresh_in_seconds: float | None
