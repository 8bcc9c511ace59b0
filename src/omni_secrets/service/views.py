"""Read models the service hands to the edges (API, CLI). No values, ever.

Field names match ``api/schemas.py`` so routes validate them with ``from_attributes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LastErrorView:
    code: str
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RotationView:
    group: str
    last_rotated_at: datetime | None
    due_at: datetime | None
    status: str
    days_until_due: int | None
    preview_open: bool
    candidate_version: str | None = None
    alias_version: str | None = None
    """The version GSM's ``current`` alias names, as the last refresh read it (None: absent)."""
    previous_version: str | None = None
    """The version GSM's ``previous`` alias names (None: absent)."""
    drift: DriftView | None = None
    """Why GSM's ``current`` is not followed yet (None: in step)."""


@dataclass(frozen=True, slots=True)
class DriftView:
    """``rotation.drift``: since when, and why, the type does not follow GSM's ``current``."""

    since: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class BreakGlassView:
    active: bool
    override_id: str | None = None
    actor: str | None = None
    activated_at: datetime | None = None
    expires_at: datetime | None = None
    reason: str | None = None


NO_BREAK_GLASS = BreakGlassView(active=False)
"""The break-glass column of every type without an active override (shared: it is immutable)."""


@dataclass(frozen=True, slots=True)
class SecretStatusView:
    secret_type: str
    gsm_secret_id: str
    required: bool
    cache_source: str
    version: str | None
    fetched_at: datetime | None
    age_seconds: float | None
    expires_at: datetime | None
    stale: bool
    last_error: LastErrorView | None
    rotation: RotationView
    break_glass: BreakGlassView
    active_version: str | None = None
    """The pinned GSM version (metadata), beside ``version``, what the cache holds."""
    enabled_versions: int | None = None
    """How many of the secret's versions are ENABLED, as the last refresh read (None: unread)."""


@dataclass(frozen=True, slots=True)
class CacheView:
    state: str
    ttl_seconds: int
    hydrated_at: datetime | None
    last_refresh_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReplicaView:
    id: str
    peers: int
    clock_offset_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class EventsView:
    subscription: str
    connected: bool
    last_event_at: datetime | None


@dataclass(frozen=True, slots=True)
class StatusView:
    environment: str
    gcp_project_id: str
    cache: CacheView
    secrets: tuple[SecretStatusView, ...]
    replica: ReplicaView | None = None
    events: EventsView | None = None


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str | None
    checks: dict[str, str]
