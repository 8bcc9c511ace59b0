"""``OmniSecretService``: the one entry point the edges call for serving the catalog's credentials.

Each of its jobs lives in its own module; this class composes them and keeps the pins in
step with the database (reload, reconcile):

- pinning — which version each type serves, the cache's fetch: ``pinned_versions.py``;
- status — the status view: ``status.py``;
- refresh requests — run on every replica: ``service/refresh/`` (wired by bootstrap, beside
  this class, because it needs the replica registry);
- ApeX calls — account, self-test and FR-012 degradation: ``apex_calls.py``;
- readiness — ``/readyz``: ``readiness.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.exchange import ApexAccount, ApexCredentials, ApexGateway, SelfTestResult
from omni_secrets.domain.models import OmniSecretMetadata
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.rotation.drift import Drift
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.gsm_events.signals import SecretSignals
from omni_secrets.service.serving.apex_calls import ApexCalls
from omni_secrets.service.serving.pinned_versions import PinnedVersions
from omni_secrets.service.serving.readiness import ReadinessCheck
from omni_secrets.service.status import ServiceIdentity, StatusReporter
from omni_secrets.service.views import (
    BreakGlassView,
    EventsView,
    Readiness,
    ReplicaView,
    StatusView,
)

__all__ = ["OmniSecretService", "ServiceIdentity"]

log = structlog.get_logger("omni_secrets.service")


class OmniSecretService:
    """Serves credentials from ``cache`` and answers status, refresh and ApeX calls.

    Args:
        identity: environment, project and rotation settings shown in status.
        catalog: the secret types.
        pins: the metadata rows and the pinned fetch the cache was built around.
        cache: the cache serving the credentials.
        uow_factory: database units of work (readiness).
        auditor: writes audit events.
        apex: the signed ApeX client.
        clock: time source.
        break_glass_view: the active override of a type, for status (no value).
        signals: what GSM events established (revocations, candidates), for status.
        replica_view: this replica's id and live peers, for status.
        events_view: the GSM event subscriber's state, for status (None when it is off).
        drift: each type's drift from GSM's ``current`` alias, for status.
    """

    def __init__(
        self,
        *,
        identity: ServiceIdentity,
        catalog: Catalog,
        pins: PinnedVersions,
        cache: OmniSecretCache,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        apex: ApexGateway,
        clock: Clock,
        break_glass_view: Callable[[SecretType], BreakGlassView],
        signals: SecretSignals | None = None,
        replica_view: Callable[[], ReplicaView | None] = lambda: None,
        events_view: Callable[[], EventsView | None] = lambda: None,
        drift: Callable[[str], Drift | None] = lambda _t: None,
    ) -> None:
        self.identity = identity
        self.catalog = catalog
        self.pins = pins
        self.cache = cache
        self._status = StatusReporter(
            identity=identity,
            catalog=catalog,
            pins=pins,
            cache=cache,
            auditor=auditor,
            clock=clock,
            break_glass_view=break_glass_view,
            candidate_version=signals.candidate_version if signals is not None else None,
            replica_view=replica_view,
            events_view=events_view,
            drift=drift,
        )
        self._apex_calls = ApexCalls(
            catalog=catalog, cache=cache, apex=apex, auditor=auditor, clock=clock
        )
        self._readiness = ReadinessCheck(uow_factory=uow_factory, cache=cache)

    # -- lifecycle ---------------------------------------------------------------------------

    async def reload_metadata(self) -> None:
        """Re-read the catalog's metadata rows (pins, rotation dates, locks) from the database.

        Raises:
            Exception: the database failed (callers decide whether that is fatal).
        """
        await self.pins.reload()

    async def load_metadata(self) -> None:
        """Startup: load metadata, or log and leave it for the fetch to retry (DB down)."""
        try:
            await self.pins.reload()
        except Exception as exc:
            log.error("metadata.load_failed", error_type=type(exc).__name__)

    async def reconcile(self) -> None:
        """Catch up with other replicas: new pins (a rotation committed elsewhere) are fetched.

        A pin whose integrity MAC stopped verifying (edited in the database) is "changed" too:
        the refresh makes the pinned fetch refuse it, so the type stops being served at once.
        """
        before = self.pins.pin_states()
        await self.pins.reload()
        changed = [
            t
            for t, (version, integrity) in self.pins.pin_states().items()
            if (version is not None or not integrity.servable)
            and before.get(t) != (version, integrity)
        ]
        if changed:
            log.info("metadata.pins_changed", secret_types=[t.value for t in changed])
            await self.cache.refresh(changed, force_new=True)

    def metadata(self, secret_type: SecretType) -> OmniSecretMetadata | None:
        return self.pins.get(secret_type)

    def active_version(self, secret_type: SecretType) -> str | None:
        """The version this replica serves for ``secret_type``: the pin, else what it fetched."""
        meta = self.pins.get(secret_type)
        if meta is not None and meta.active_version is not None:
            return meta.active_version
        return self.cache.describe(secret_type).gsm_version

    async def stop(self) -> None:
        """Nothing runs in the background here any more (refreshes: ``service/refresh/``)."""

    # -- status (status.py) ----------------------------------------------------------------

    async def status(self, *, actor: str, correlation_id: str | None) -> StatusView:
        """The status view (contract section 5); audited as ``status_view`` in the background."""
        return await self._status.status(actor=actor, correlation_id=correlation_id)

    def status_view(self) -> StatusView:
        """The status of every catalog type, from memory only (no GSM, no database)."""
        return self._status.status_view()

    def cache_age_seconds(self, secret_type: str) -> float:
        """Seconds since the last successful fetch of the type (``inf`` if never): a gauge."""
        return self._status.cache_age_seconds(secret_type)

    # -- ApeX calls (apex_calls.py) ----------------------------------------------------------

    def required_credentials(self) -> ApexCredentials:
        """The api key, secret and passphrase as served now; never calls GSM.

        Raises:
            SecretsUnavailable: naming the required types not served (FR-012).
        """
        return self._apex_calls.required_credentials()

    async def get_account(self) -> ApexAccount:
        """ApeX's account ``data`` via a signed call with the served credentials.

        Raises:
            SecretsUnavailable: required credentials are not served (503, no GSM call).
            ApexUpstreamError: ApeX failed or refused (502).
        """
        return await self._apex_calls.get_account()

    async def self_test(self, *, actor: str, correlation_id: str | None) -> SelfTestResult:
        """Sign ``GET /api/v3/account`` with the served credentials; audited as ``self_test``.

        Raises:
            SecretsUnavailable: required credentials are not served.
        """
        return await self._apex_calls.self_test(actor=actor, correlation_id=correlation_id)

    # -- readiness (readiness.py) ------------------------------------------------------------

    async def readiness(self) -> Readiness:
        """Ready when the database answers and every required type is served."""
        return await self._readiness.readiness()
