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
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.pinned_versions import PinnedVersions
from omni_secrets.service.views import (
    BreakGlassView,
    CacheView,
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
    ) -> None:
        self.identity = identity
        self.catalog = catalog
        self.pins = pins
        self.cache = cache
        self._auditor = auditor
        self._clock = clock
        self._break_glass_view = break_glass_view
        self._candidate_version = candidate_version
        self._replica_view = replica_view
        self._events_view = events_view

    async def status(self, *, actor: str, correlation_id: str | None) -> StatusView:
        """The status view (contract section 5); audited as ``status_view`` by the batching writer
        (buffered, never dropped while the database answers; see ``Auditor.submit``)."""
        view = self.status_view()
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

    def status_view(self) -> StatusView:
        """The status of every catalog type, from memory only (no GSM, no database)."""
        now = self._clock.now()
        secrets = []
        for entry in self.catalog:
            info = self.cache.describe(entry.secret_type)
            source = info.source
            if source is CacheSource.BREAK_GLASS and info.override is not None:
                version: str | None = f"break-glass:{info.override.override_id}"
            else:
                version = info.version if source is not None else None
            error = info.last_error
            secrets.append(
                SecretStatusView(
                    secret_type=entry.secret_type.value,
                    gsm_secret_id=entry.gsm_secret_id,
                    required=entry.required,
                    cache_source=source.value if source is not None else "none",
                    version=version,
                    fetched_at=info.fetched_at if source is not None else None,
                    age_seconds=info.age_seconds if source is not None else None,
                    expires_at=info.expires_at if source is not None else None,
                    stale=info.stale,
                    last_error=LastErrorView(error.code, error.message, error.at)
                    if error
                    else None,
                    rotation=self._rotation_view(
                        entry.rotation_group.value,
                        self.pins.get(entry.secret_type),
                        now,
                        self._candidate_version(entry.secret_type)
                        if self._candidate_version is not None
                        else None,
                    ),
                    break_glass=self._break_glass_view(entry.secret_type),
                )
            )
        return StatusView(
            environment=self.identity.environment,
            gcp_project_id=self.identity.gcp_project_id,
            cache=CacheView(
                state=self.cache.state.value,
                ttl_seconds=int(self.cache.ttl_seconds),
                hydrated_at=self.cache.hydrated_at,
                last_refresh_at=self.cache.last_refresh_at,
            ),
            secrets=tuple(secrets),
            replica=self._replica_view(),
            events=self._events_view(),
        )

    def _rotation_view(
        self, group: str, meta: OmniSecretMetadata | None, now: datetime, candidate: str | None
    ) -> RotationView:
        if meta is None:  # the catalog was never seeded: nothing is known about rotation
            return RotationView(group, None, None, "ok", None, False, candidate)
        due = meta.rotation_due_at
        status = rotation.rotation_status(due, now, self.identity.rotation_warning_days)
        preview_open = bool(
            meta.preview_id and meta.preview_expires_at and meta.preview_expires_at > now
        )
        return RotationView(
            group=group,
            last_rotated_at=meta.last_rotated_at,
            due_at=due,
            status=status.value,
            days_until_due=rotation.days_until_due(due, now),
            preview_open=preview_open,
            candidate_version=candidate,
        )

    def cache_age_seconds(self, secret_type: str) -> float:
        """Seconds since the last successful fetch of the type (``inf`` if never): a gauge."""
        return self.cache.describe(parse_secret_type(secret_type)).seconds_since_fetch
