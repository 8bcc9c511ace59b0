"""``OmniSecretService``: serving the catalog's credentials from the cache, and what surrounds it.

It owns the cache's ``fetch`` (which version to read: the metadata's pinned ``active_version``,
or — when none is pinned yet — the newest ENABLED version, which it then pins), the status view,
refresh requests, FR-012 degradation (``required_credentials`` raises at once, never calling GSM
on the request path, and kicks a background refresh), the ApeX consumer calls and the self-test,
and the audit events for all of these.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from omni_secrets.domain import rotation
from omni_secrets.domain.cache import CacheSource, Fetch, OmniSecretCache
from omni_secrets.domain.cache_models import FetchFailure
from omni_secrets.domain.catalog import Catalog, SecretType, parse_secret_type
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import SecretStoreError, SecretsUnavailable
from omni_secrets.domain.exchange import ApexAccount, ApexCredentials, ApexGateway, SelfTestResult
from omni_secrets.domain.models import NewAccessEvent, OmniSecretMetadata
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import AccessedSecret, SecretStore, newest_enabled
from omni_secrets.domain.values import SecretValue
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.integrity import (
    METADATA_TABLE,
    IntegrityViolation,
    IntegrityViolations,
)
from omni_secrets.service.refresh_requests import (
    RefreshRequest,
    RefreshRequestLog,
    RefreshResult,
)
from omni_secrets.service.views import (
    BreakGlassView,
    CacheView,
    LastErrorView,
    Readiness,
    RotationView,
    SecretStatusView,
    StatusView,
)

log = structlog.get_logger("omni_secrets.service")
INTEGRITY_VIOLATION = "INTEGRITY_VIOLATION"
"""``lastError.code`` of a type whose pin fails its integrity check (contract section 9)."""
_KNOWN_TYPES = frozenset(t.value for t in SecretType)


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    environment: str
    gcp_project_id: str
    rotation_warning_days: int


class OmniSecretService:
    """Serves credentials from ``cache`` and answers status, refresh and ApeX calls.

    Args:
        identity: environment, project and rotation settings shown in status.
        catalog: the secret types.
        store: GSM (or a fake).
        uow_factory: database units of work.
        auditor: writes audit events.
        apex: the signed ApeX client.
        clock: time source.
        cache_factory: builds the cache around this service's :meth:`fetch`.
        on_read: called for every store read (``omni_secret_reads_total``).
        on_value: called with each value fetched (the log redactor registers it).
        break_glass_view: the active override of a type, for status (no value).
        integrity: told about each pin whose MAC is missing or wrong (its type fails closed).
    """

    def __init__(
        self,
        *,
        identity: ServiceIdentity,
        catalog: Catalog,
        store: SecretStore,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        apex: ApexGateway,
        clock: Clock,
        cache_factory: Callable[[Fetch], OmniSecretCache],
        on_read: Callable[[str, str, bool], None] = lambda t, s, ok: None,
        on_value: Callable[[SecretValue], None] = lambda v: None,
        break_glass_view: Callable[[SecretType], BreakGlassView] = lambda t: BreakGlassView(False),
        integrity: IntegrityViolations | None = None,
    ) -> None:
        self.identity = identity
        self.catalog = catalog
        self._store = store
        self._uow_factory = uow_factory
        self._auditor = auditor
        self._apex = apex
        self._clock = clock
        self._on_read = on_read
        self._on_value = on_value
        self._break_glass_view = break_glass_view
        self._integrity = integrity or IntegrityViolations()
        self._metadata: dict[SecretType, OmniSecretMetadata] = {}
        self._metadata_loaded = False
        self._unseeded: tuple[str, ...] = ()
        self._requests = RefreshRequestLog()
        self._background: set[asyncio.Task[object]] = set()
        self.cache = cache_factory(self.fetch)

    # -- lifecycle ---------------------------------------------------------------------------

    async def reload_metadata(self) -> None:
        """Re-read the catalog's metadata rows (pins, rotation dates, locks) from the database.

        Raises:
            Exception: the database failed (callers decide whether that is fatal).
        """
        async with self._uow_factory() as uow:
            rows = await uow.metadata.list_all()
        self._metadata = {
            SecretType(row.secret_type): row for row in rows if row.secret_type in _KNOWN_TYPES
        }
        self._metadata_loaded = True
        missing = tuple(t.value for t in self.catalog.types if t not in self._metadata)
        if missing and missing != self._unseeded:  # once per change, not on every reconcile
            log.warning("metadata.not_seeded", missing=missing, hint="run: omni-secrets db seed")
        self._unseeded = missing

    async def load_metadata(self) -> None:
        """Startup: load metadata, or log and leave it for :meth:`fetch` to retry (DB down)."""
        try:
            await self.reload_metadata()
        except Exception as exc:
            log.error("metadata.load_failed", error_type=type(exc).__name__)

    async def reconcile(self) -> None:
        """Catch up with other replicas: new pins (a rotation committed elsewhere) are fetched.

        A pin whose integrity MAC stopped verifying (edited in the database) is "changed" too:
        the refresh makes :meth:`fetch` refuse it, so the type stops being served at once.
        """
        before = {t: (m.active_version, m.pin_integrity) for t, m in self._metadata.items()}
        await self.reload_metadata()
        changed = [
            t
            for t, meta in self._metadata.items()
            if (meta.active_version is not None or not meta.pin_integrity.servable)
            and before.get(t) != (meta.active_version, meta.pin_integrity)
        ]
        if changed:
            log.info("metadata.pins_changed", secret_types=[t.value for t in changed])
            await self.cache.refresh(changed, force_new=True)

    def metadata(self, secret_type: SecretType) -> OmniSecretMetadata | None:
        return self._metadata.get(secret_type)

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- the cache's fetch -------------------------------------------------------------------

    async def fetch(self, secret_type: SecretType) -> AccessedSecret:
        """Read the version the cache should serve for ``secret_type`` from the store.

        Raises:
            SecretStoreError: the store failed (``transient`` says whether to keep the old value).
        """
        entry = self.catalog.entry(secret_type)
        if not self._metadata_loaded:
            # Without the pins we cannot know which version is approved: fail closed (and retry).
            try:
                await self.reload_metadata()
            except Exception:
                raise SecretStoreError(
                    "secret metadata is unavailable (database unreachable)",
                    reason="UNAVAILABLE",
                    transient=True,
                    secret_id=entry.gsm_secret_id,
                ) from None
        meta = self._metadata.get(secret_type)
        if meta is not None and not meta.pin_integrity.servable:
            # The pin may have been written by someone without the integrity key: serving
            # "whatever version the row names" is exactly what a forger wants. Fail closed.
            self._integrity.report(
                IntegrityViolation(
                    table=METADATA_TABLE,
                    row=secret_type.value,
                    problem=meta.pin_integrity.value,
                    secret_type=secret_type.value,
                )
            )
            raise SecretStoreError(
                f"the pinned version of {secret_type.value} fails its integrity check "
                f"({meta.pin_integrity.value} MAC); not served",
                reason=INTEGRITY_VIOLATION,
                transient=False,
                secret_id=entry.gsm_secret_id,
            )
        pinned = meta.active_version if meta else None
        try:
            if pinned is None:
                versions = await self._store.list_versions(entry.gsm_secret_id)
                newest = newest_enabled(versions)
                if newest is None:
                    raise SecretStoreError(
                        f"{entry.gsm_secret_id} has no ENABLED version",
                        reason="FAILED_PRECONDITION",
                        transient=False,
                        secret_id=entry.gsm_secret_id,
                    )
                accessed = await self._store.access(entry.gsm_secret_id, newest.version)
                await self._pin_first_version(secret_type, accessed.version)
            else:
                accessed = await self._store.access(entry.gsm_secret_id, pinned)
        except SecretStoreError:
            self._on_read(secret_type.value, "gsm", False)
            raise
        self._on_read(secret_type.value, "gsm", True)
        self._on_value(accessed.value)
        return accessed

    async def _pin_first_version(self, secret_type: SecretType, version: str) -> None:
        try:
            async with self._uow_factory() as uow:
                await uow.metadata.pin_active_version(
                    secret_type.value, version, only_if_unpinned=True
                )
                await uow.commit()
                row = await uow.metadata.get(secret_type.value)
        except Exception as exc:  # serving beats pinning; the next fetch tries again
            log.warning(
                "metadata.pin_failed", secret_type=secret_type.value, error_type=type(exc).__name__
            )
            return
        if row is not None:
            self._metadata[secret_type] = row

    # -- status --------------------------------------------------------------------------------

    async def status(self, *, actor: str, correlation_id: str | None) -> StatusView:
        """The status view (contract section 5); audited as ``status_view`` by the batching writer
        (buffered, never dropped while the database answers; see ``Auditor.submit``)."""
        view = self.status_view()
        await self._auditor.submit(
            NewAccessEvent(
                occurred_at=self._clock.now(),
                secret_type=None,
                action="status_view",
                actor=actor,
                result="success",
                duration_ms=None,
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
                        entry.rotation_group.value, self._metadata.get(entry.secret_type), now
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
        )

    def _rotation_view(
        self, group: str, meta: OmniSecretMetadata | None, now: datetime
    ) -> RotationView:
        if meta is None:  # the catalog was never seeded: nothing is known about rotation
            return RotationView(group, None, None, "ok", None, False)
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
        )

    def cache_age_seconds(self, secret_type: str) -> float:
        """Seconds since the last successful fetch of the type (``inf`` if never): a gauge."""
        return self.cache.describe(parse_secret_type(secret_type)).seconds_since_fetch

    # -- refresh requests ----------------------------------------------------------------------

    async def request_refresh(
        self, *, secret_types: Sequence[str] | None, actor: str, correlation_id: str | None
    ) -> RefreshRequest:
        """Queue a refresh of ``secret_types`` (all when None); returns at once (202).

        Raises:
            UnknownSecretType: a name outside the catalog (nothing is queued).
        """
        targeted = bool(secret_types)
        types = (
            tuple(dict.fromkeys(parse_secret_type(t) for t in secret_types))
            if secret_types
            else self.catalog.types
        )
        request = self._requests.open(
            secret_types=types, targeted=targeted, actor=actor, now=self._clock.now()
        )
        await self._auditor.submit(
            NewAccessEvent(
                occurred_at=request.queued_at,
                secret_type=types[0].value if len(types) == 1 else None,
                action="cache_refresh_requested",
                actor=actor,
                result="success",
                duration_ms=None,
                correlation_id=correlation_id,
                details={"requestId": request.request_id, "secretTypes": [t.value for t in types]},
            )
        )
        self._spawn(self._run_refresh(request, correlation_id))
        return request

    def refresh_request(self, request_id: str) -> RefreshRequest:
        """Raises: RefreshRequestNotFound."""
        return self._requests.get(request_id)

    async def _run_refresh(self, request: RefreshRequest, correlation_id: str | None) -> None:
        self._requests.mark_running(request.request_id)
        started = time.perf_counter()
        outcomes = await self.cache.refresh(request.secret_types)
        results = [
            RefreshResult(
                secret_type=t,
                ok=outcomes[t].ok,
                version=outcomes[t].version,
                error=_error_code(outcomes[t].error),
            )
            for t in request.secret_types
        ]
        completed = self._requests.complete(request.request_id, results, self._clock.now())
        # Each GSM read is audited by the cache observer (actor system); this row ties the
        # request, its caller and its outcome together.
        await self._auditor.submit(
            NewAccessEvent(
                occurred_at=self._clock.now(),
                secret_type=None,
                action="refresh",
                actor=request.actor,
                result="success" if completed.status.value == "succeeded" else "failure",
                duration_ms=int((time.perf_counter() - started) * 1000),
                correlation_id=correlation_id,
                details={
                    "requestId": request.request_id,
                    "status": completed.status.value,
                    "results": {r.secret_type.value: r.error or "ok" for r in results},
                },
            )
        )

    # -- serving -------------------------------------------------------------------------------

    def required_credentials(self) -> ApexCredentials:
        """The api key, secret and passphrase as served now (break-glass included).

        Never calls GSM. When a required type is missing, asks the cache's background refresher
        for the missing types and raises.

        Raises:
            SecretsUnavailable: naming the required types not served (FR-012).
        """
        key = self.cache.get(SecretType.API_KEY)
        secret = self.cache.get(SecretType.API_SECRET)
        passphrase = self.cache.get(SecretType.API_PASSPHRASE)
        if key is None or secret is None or passphrase is None:
            missing = [t for t in self.catalog.required_types if self.cache.get(t) is None]
            # Rate-limited by the cache: a burst of 503s cannot become a burst of GSM calls.
            self.cache.request_refresh(missing)
            raise SecretsUnavailable([t.value for t in missing])
        return ApexCredentials(key=key.value, secret=secret.value, passphrase=passphrase.value)

    async def get_account(self, *, actor: str, correlation_id: str | None) -> ApexAccount:
        """ApeX's account ``data`` via a signed call with the served credentials.

        Raises:
            SecretsUnavailable: required credentials are not served (503, no GSM call).
            ApexUpstreamError: ApeX failed or refused (502).
        """
        return await self._apex.get_account(self.required_credentials())

    async def self_test(self, *, actor: str, correlation_id: str | None) -> SelfTestResult:
        """Sign ``GET /api/v3/account`` with the served credentials; audited as ``self_test``.

        Raises:
            SecretsUnavailable: required credentials are not served.
        """
        credentials = self.required_credentials()
        started = time.perf_counter()
        result = await self._apex.self_test(credentials)
        await self._auditor.submit(
            NewAccessEvent(
                occurred_at=self._clock.now(),
                secret_type=None,
                action="self_test",
                actor=actor,
                result="success" if result.ok else "failure",
                duration_ms=int((time.perf_counter() - started) * 1000),
                correlation_id=correlation_id,
                details={
                    "httpStatus": result.http_status,
                    "apexCode": result.apex_code,
                    "skewMs": result.skew_ms,
                },
            )
        )
        return result

    async def readiness(self) -> Readiness:
        """Ready when the database answers and every required type is served."""
        checks: dict[str, str] = {}
        reasons: list[str] = []
        try:
            async with self._uow_factory() as uow:
                await uow.metadata.list_all()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = "unavailable"
            reasons.append(f"database unavailable ({type(exc).__name__})")
        state = self.cache.state.value
        checks["cache"] = state
        if state != "ready":
            missing = ", ".join(t.value for t in self.cache.missing_required())
            reasons.append(f"cache {state}: required types not served: {missing}")
        return Readiness(ready=not reasons, reason="; ".join(reasons) or None, checks=checks)

    # -- helpers -------------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _error_code(failure: FetchFailure | None) -> str | None:
    return failure.code if failure is not None else None


def _error_view(failure: FetchFailure | None) -> LastErrorView | None:
    if failure is None:
        return None
    return LastErrorView(code=failure.code, message=failure.message, at=failure.at)
