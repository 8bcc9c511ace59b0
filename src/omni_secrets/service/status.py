"""``StatusReporter``: the status view of every catalog type (contract section 5), from memory.

No GSM call and no database read: the cache's snapshot, the metadata pins as last read, the
break-glass view, and (section 12) the GSM signals, this replica's peers and the event feed.
Reading it is audited as ``status_view`` in the background.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain import rotation
from omni_secrets.domain.cache import CacheSource, OmniSecretCache
from omni_secrets.domain.catalog import Catalog, SecretType, parse_secret_type
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.models import OmniSecretMetadata
from omni_secrets.domain.rotation.drift import Drift
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.serving.pinned_versions import AliasView, PinnedVersions
from omni_secrets.service.views import (
    NO_BREAK_GLASS,
    BreakGlassView,
    CacheView,
    DriftView,
    EventsView,
    LastErrorView,
    ReplicaView,
    RotationView,
    SecretStatusView,
    StatusView,
)


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    """The environment, project and rotation warning window shown in status."""

    environment: str
    gcp_project_id: str
    rotation_warning_days: int


def _no_candidate(_secret_type: SecretType) -> None:
    return None


@dataclass(frozen=True, slots=True)
class _CatalogRow:
    """What status shows of a catalog entry, as the document's strings (computed once)."""

    secret_type: SecretType
    name: str
    gsm_secret_id: str
    required: bool
    group: str


@dataclass(frozen=True, slots=True)
class _ShownRotation:
    """The rotation view last shown for a type, and what it was computed from."""

    meta: OmniSecretMetadata
    candidate: str | None
    aliases: AliasView | None
    drift: Drift | None
    computed_at: datetime
    valid_until: datetime
    view: RotationView


class StatusReporter:
    """Builds the status view (see the module docstring)."""

    def __init__(
        self,
        *,
        identity: ServiceIdentity,
        catalog: Catalog,
        pins: PinnedVersions,
        cache: OmniSecretCache,
        auditor: Auditor,
        clock: Clock,
        break_glass_view: Callable[[SecretType], BreakGlassView],
        candidate_version: Callable[[SecretType], str | None] | None = None,
        replica_view: Callable[[], ReplicaView | None] = lambda: None,
        events_view: Callable[[], EventsView | None] = lambda: None,
        drift: Callable[[str], Drift | None] = lambda _t: None,
    ) -> None:
        self._drift = drift
        self.identity = identity
        self.catalog = catalog
        self.pins = pins
        self.cache = cache
        self._auditor = auditor
        self._clock = clock
        self._break_glass_view = break_glass_view
        self._candidate_version = candidate_version or _no_candidate
        self._replica_view = replica_view
        self._events_view = events_view
        self._rows = tuple(
            _CatalogRow(
                entry.secret_type,
                entry.secret_type.value,
                entry.gsm_secret_id,
                entry.required,
                entry.rotation_group.value,
            )
            for entry in catalog
        )
        self._last_rotation: dict[SecretType, _ShownRotation] = {}
        self._last_view: tuple[tuple[int, int], StatusView] | None = None

    async def status(self, *, actor: str, correlation_id: str | None) -> StatusView:
        """The status view (contract section 5); audited as ``status_view`` by the batching writer
        (buffered, never dropped while the database answers; see ``Auditor.submit``).

        Calls within the same millisecond may share one view (see ``_shared_view``); use
        :meth:`status_view` for a view built now.
        """
        view = self._shared_view()
        await self._auditor.submit(
            access_event(
                action="status_view",
                at=self._clock.now(),
                actor=actor,
                correlation_id=correlation_id,
                details={"cacheState": view.cache.state},
            )
        )
        return view

    def _shared_view(self) -> StatusView:
        # Under a flood of status calls (dashboards, a load test) the view is built once per
        # millisecond of the monotonic clock and shared, unless the cache changed meanwhile:
        # what the cache serves is always current; ages, and what other replicas, GSM events or
        # the pins read in the background changed, are at most a millisecond old. The caller's
        # own audit row is never shared.
        key = (int(self.cache.monotonic() * 1000), self.cache.version)
        last = self._last_view
        if last is not None and last[0] == key:
            return last[1]
        view = self.status_view()
        self._last_view = (key, view)
        return view

    def status_view(self) -> StatusView:
        """The status of every catalog type, from memory only (no GSM, no database)."""
        now = self._clock.now()
        monotonic = self.cache.monotonic()
        return StatusView(
            environment=self.identity.environment,
            gcp_project_id=self.identity.gcp_project_id,
            cache=CacheView(
                state=self.cache.state.value,
                ttl_seconds=int(self.cache.ttl_seconds),
                hydrated_at=self.cache.hydrated_at,
                last_refresh_at=self.cache.last_refresh_at,
            ),
            secrets=tuple(self._secret_view(row, now, monotonic) for row in self._rows),
            replica=self._replica_view(),
            events=self._events_view(),
        )

    def _secret_view(self, row: _CatalogRow, now: datetime, monotonic: float) -> SecretStatusView:
        # Status is polled by dashboards and load-tested: this builds only what the document
        # shows, from the cache's two immutable snapshots (docs/benchmarks.md, section 5).
        served, error = self.cache.status_of(row.secret_type)
        candidate = self._candidate_version(row.secret_type)
        pin = self.pins.get(row.secret_type)
        active_version = pin.active_version if pin is not None else None
        aliases = self.pins.aliases(row.secret_type)
        enabled = aliases.enabled_versions if aliases is not None else None
        rotation_view = self._rotation_view(row, pin, now, candidate, aliases)
        last_error = LastErrorView(error.code, error.message, error.at) if error else None
        if served is None:
            return SecretStatusView(
                secret_type=row.name,
                gsm_secret_id=row.gsm_secret_id,
                required=row.required,
                cache_source="none",
                version=None,
                fetched_at=None,
                age_seconds=None,
                expires_at=None,
                stale=False,
                last_error=last_error,
                rotation=rotation_view,
                break_glass=NO_BREAK_GLASS,
                active_version=active_version,
                enabled_versions=enabled,
            )
        if served.source is CacheSource.BREAK_GLASS:
            # The cache serves an override before the GSM entry: only then is one active.
            version = (
                f"break-glass:{served.override_id}"
                if served.override_id is not None
                else served.version
            )
            break_glass = self._break_glass_view(row.secret_type)
        else:
            version, break_glass = served.version, NO_BREAK_GLASS
        return SecretStatusView(
            secret_type=row.name,
            gsm_secret_id=row.gsm_secret_id,
            required=row.required,
            cache_source=served.source.value,
            version=version,
            fetched_at=served.fetched_at,
            age_seconds=served.age_seconds(monotonic),
            expires_at=served.expires_at,
            stale=served.stale(monotonic),
            last_error=last_error,
            rotation=rotation_view,
            break_glass=break_glass,
            active_version=active_version,
            enabled_versions=enabled,
        )

    def _rotation_view(
        self,
        row: _CatalogRow,
        meta: OmniSecretMetadata | None,
        now: datetime,
        candidate: str | None,
        aliases: AliasView | None,
    ) -> RotationView:
        current = aliases.current if aliases is not None else None
        previous = aliases.previous if aliases is not None else None
        drift = self._drift(row.name)
        if meta is None:  # the catalog was never seeded: nothing is known about rotation
            return RotationView(
                row.group, None, None, "ok", None, False, candidate, current, previous
            )
        # The same view while the pins (replaced, never mutated, when re-read) and the candidate
        # are the same and no computed field has reached its next change.
        last = self._last_rotation.get(row.secret_type)
        if (
            last is not None
            and last.meta is meta
            and last.candidate == candidate
            and last.aliases is aliases
            and last.drift is drift
            and last.computed_at <= now < last.valid_until  # a clock set back recomputes
        ):
            return last.view
        due = meta.rotation_due_at
        warning_days = self.identity.rotation_warning_days
        valid_until = rotation.status_unchanged_until(due, now, warning_days)
        preview_open = bool(
            meta.preview_id and meta.preview_expires_at and meta.preview_expires_at > now
        )
        if preview_open and meta.preview_expires_at is not None:
            valid_until = min(valid_until, meta.preview_expires_at)
        view = RotationView(
            group=row.group,
            last_rotated_at=meta.last_rotated_at,
            due_at=due,
            status=rotation.rotation_status(due, now, warning_days).value,
            days_until_due=rotation.days_until_due(due, now),
            preview_open=preview_open,
            candidate_version=candidate,
            alias_version=current,
            previous_version=previous,
            drift=DriftView(drift.since, drift.reason.value) if drift is not None else None,
        )
        self._last_rotation[row.secret_type] = _ShownRotation(
            meta, candidate, aliases, drift, now, valid_until, view
        )
        return view

    def cache_age_seconds(self, secret_type: str) -> float:
        """Seconds since the last successful fetch of the type (``inf`` if never): a gauge."""
        return self.cache.describe(parse_secret_type(secret_type)).seconds_since_fetch
