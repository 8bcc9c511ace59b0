"""``RotationService``: rotation preview, commit and cancel (contract section 5, design "Rotation").

A rotation covers a whole rotation group (ApeX issues key, secret and passphrase together):

- :meth:`RotationService.preview` resolves each member's candidate version in GSM, takes the
  group's rotation lock in the database (one open preview per group across every replica, for
  :data:`~omni_secrets.domain.rotation.PREVIEW_LOCK_DURATION`), reads every candidate payload
  (the store verifies its CRC32C), runs the ApeX self-test with the candidate key, secret and
  passphrase, and stores the preview with its four checks. Candidate values live only in local
  variables for the length of the checks: they are never stored, logged or returned.
- :meth:`RotationService.commit` pins the candidates as active versions, stamps the group's
  rotation dates and releases the lock in one transaction together with its audit row (no audit
  row, no commit), then refreshes those cache entries at once on this replica. Other replicas
  pick the new pins up through their periodic ``OmniSecretService.reconcile``.
- :meth:`RotationService.cancel` releases the lock.

Expected failures are counted in ``omni_secret_failures_total{operation="rotation"}`` with the
error's code as ``reason``, once per member of the group concerned (the rotation failed for each
of them); failures that name no catalog type (an unknown type, an unknown preview id) are not
counted, because they have no bounded ``secret_type`` label.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from omni_secrets.domain import rotation
from omni_secrets.domain.cache import RefreshOutcome
from omni_secrets.domain.catalog import (
    Catalog,
    CatalogEntry,
    RotationGroup,
    SecretType,
    parse_secret_type,
)
from omni_secrets.domain.changes import KIND_ROTATION, Publish, publish_nothing
from omni_secrets.domain.clock import Clock, to_rfc3339
from omni_secrets.domain.errors import (
    CatalogNotSeeded,
    ChecksumMismatch,
    OmniSecretsError,
    PreviewNotFound,
    PreviewNotReady,
    RotationInProgress,
    SecretStoreError,
    ValueNotHeaderSafe,
)
from omni_secrets.domain.exchange import ApexCredentials, ApexGateway
from omni_secrets.domain.header_safety import check_header_safe
from omni_secrets.domain.models import (
    AuditAction,
    AuditResult,
    OmniSecretMetadata,
    PreviewCheckRecord,
    PreviewMemberRecord,
    RotationPreviewRecord,
)
from omni_secrets.domain.observations import (
    FailedOperation,
    OperationFailed,
    SecretRead,
    ServiceObserver,
    ValueSeen,
)
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import LATEST, SecretStore, VersionInfo
from omni_secrets.domain.values import SecretValue
from omni_secrets.observability.alerts import AlertDispatcher
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.rotation_report import ROTATION_ALERT_NAMES
from omni_secrets.service.rotation_views import (
    CommittedMemberView,
    PreviewCheckView,
    PreviewMemberView,
    RotationCommitView,
    RotationPreviewView,
)
from omni_secrets.service.secrets import OmniSecretService

log = structlog.get_logger("omni_secrets.rotation")

OPERATION: FailedOperation = "rotation"
_MAX_ID_IN_AUDIT = 64  # preview ids come from the URL: keep audit rows bounded
# Every id this service issues matches; anything else (a NUL byte, 10 kB of text) is unknown
# without asking the database, which would refuse some of it with an error instead of a miss.
_PREVIEW_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --- internal --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Read:
    """One candidate payload read: the value, or why there is none."""

    value: SecretValue | None
    checksum_ok: bool | None
    error: str | None

    @property
    def sha256(self) -> str | None:
        """Hex SHA-256 of the payload (compared, never shown), or None when unread."""
        if self.value is None:
            return None
        return hashlib.sha256(self.value.reveal().encode("utf-8")).hexdigest()


class RotationService:
    """Preview, commit and cancel rotations of the catalog's rotation groups.

    Args:
        catalog: the secret types and their groups.
        store: GSM (or a fake): candidate versions and payloads.
        uow_factory: database units of work (metadata, previews, audit).
        auditor: writes ``rotation_preview``/``rotation_commit``/``rotation_cancel`` events.
        apex: the ApeX gateway that runs the self-test with the candidate credentials.
        secrets: the serving side, whose metadata and cache a commit refreshes at once.
        alerts: the dispatcher; a commit resolves the group's rotation alerts.
        observer: told of each candidate read, each value seen and each expected failure.
        clock: time source.
        period_days: ``OMNI_ROTATION_PERIOD_DAYS``; a commit sets ``dueAt`` = now + period.
        on_commit: called after a commit (the rotation monitor re-evaluates at once).
        on_change: awaited with ``"rotation"`` after a commit, so the other replicas refresh
            the new pins at once (it must not raise).
        new_id: makes preview ids (random UUIDs by default).
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: SecretStore,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        apex: ApexGateway,
        secrets: OmniSecretService,
        alerts: AlertDispatcher,
        observer: ServiceObserver,
        clock: Clock,
        period_days: int,
        on_commit: Callable[[RotationGroup], None] = lambda _group: None,
        on_change: Publish = publish_nothing,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        if period_days < 1:
            raise ValueError(f"period_days must be >= 1, got {period_days}")
        self._catalog = catalog
        self._store = store
        self._uow_factory = uow_factory
        self._auditor = auditor
        self._apex = apex
        self._secrets = secrets
        self._alerts = alerts
        self._observer = observer
        self._clock = clock
        self._period_days = period_days
        self._on_commit = on_commit
        self._on_change = on_change
        self._new_id = new_id

    # -- preview ---------------------------------------------------------------------------------

    async def preview(
        self,
        secret_type: str,
        candidate_version: str | None = None,
        *,
        actor: str,
        correlation_id: str | None,
    ) -> RotationPreviewView:
        """Open a preview of the rotation of ``secret_type``'s whole group.

        Takes the group's rotation lock (committed at once, so other replicas see it), runs the
        four checks and stores the preview; ``ready`` is true only when every check passed. A
        failure after the lock was taken releases it again.

        Args:
            secret_type: any member of the group to rotate.
            candidate_version: ``latest`` (default: the newest ENABLED version of each member) or
                a version number, applied to every member.
            actor: the caller (token ``sub``), for the audit trail.
            correlation_id: the request id.

        Returns:
            The preview (never a value).

        Raises:
            UnknownSecretType: ``secret_type`` is not in the catalog (422).
            CandidateVersionInvalid: the candidate version is malformed, missing or not ENABLED
                for some member (422); nothing is locked.
            RotationInProgress: another open preview holds the group's lock (409).
            CatalogNotSeeded: the group has no metadata rows (503).
            SecretStoreError: GSM failed while listing versions (503).
            DatabaseUnavailable, AuditUnavailable: the preview could not be stored (503).
        """
        entry = self._catalog.entry(parse_secret_type(secret_type))
        group = entry.rotation_group
        members = self._catalog.group_members(group)
        requested = candidate_version or LATEST
        started = time.perf_counter()
        with self._failures(
            "rotation_preview",
            [m.secret_type for m in members],
            actor=actor,
            correlation_id=correlation_id,
            details={"group": group.value, "requestedCandidate": requested[:32]},
        ):
            candidates = await self._resolve_candidates(members, requested)
            now = self._clock.now()
            preview_id = self._new_id()
            expires_at = rotation.preview_expires_at(now)
            rows = await self._lock(group, members, preview_id, expires_at, now)
            try:
                view = await self._check_and_store(
                    entry=entry,
                    members=members,
                    rows=rows,
                    candidates=candidates,
                    requested=requested,
                    preview_id=preview_id,
                    now=now,
                    expires_at=expires_at,
                    actor=actor,
                    correlation_id=correlation_id,
                    started=started,
                )
            except BaseException:
                # Whatever went wrong, do not leave the group locked for 15 minutes.
                await self._release_quietly(group, preview_id)
                raise
        await self._reload_quietly()
        return view

    async def _resolve_candidates(
        self, members: Sequence[CatalogEntry], requested: str
    ) -> dict[SecretType, VersionInfo]:
        listed = await asyncio.gather(
            *(self._store.list_versions(member.gsm_secret_id) for member in members)
        )
        return {
            member.secret_type: rotation.resolve_candidate(
                requested, versions, secret_type=member.secret_type.value
            )
            for member, versions in zip(members, listed, strict=True)
        }

    async def _lock(
        self,
        group: RotationGroup,
        members: Sequence[CatalogEntry],
        preview_id: str,
        expires_at: datetime,
        now: datetime,
    ) -> dict[SecretType, OmniSecretMetadata]:
        """Take the group's lock for ``preview_id`` and read the members' rows under it.

        Raises:
            RotationInProgress: another open preview holds the lock.
            CatalogNotSeeded: the group (or one of its members) has no metadata row.
        """
        rows: dict[SecretType, OmniSecretMetadata | None] = {}
        async with self._uow_factory() as uow:
            lock = await uow.metadata.try_lock_group(group.value, preview_id, expires_at, now)
            if lock.won:
                for member in members:
                    rows[member.secret_type] = await uow.metadata.get(member.secret_type.value)
                # Commit at once: rivals on other replicas wait on our row locks until we do.
                await uow.commit()
        if not lock.won:
            if lock.preview_id is None or lock.expires_at is None:
                raise CatalogNotSeeded([m.secret_type.value for m in members])
            raise RotationInProgress(group.value, lock.preview_id, lock.expires_at)
        seeded = {t: row for t, row in rows.items() if row is not None}
        if len(seeded) != len(rows):
            await self._release_quietly(group, preview_id)
            raise CatalogNotSeeded([t.value for t, row in rows.items() if row is None])
        return seeded

    async def _check_and_store(
        self,
        *,
        entry: CatalogEntry,
        members: Sequence[CatalogEntry],
        rows: dict[SecretType, OmniSecretMetadata],
        candidates: dict[SecretType, VersionInfo],
        requested: str,
        preview_id: str,
        now: datetime,
        expires_at: datetime,
        actor: str,
        correlation_id: str | None,
        started: float,
    ) -> RotationPreviewView:
        group = entry.rotation_group
        reads = await asyncio.gather(
            *(self._read(m, candidates[m.secret_type].version) for m in members)
        )
        read_by_type = {m.secret_type: r for m, r in zip(members, reads, strict=True)}
        active_digests = await self._active_digests(members, rows)
        self_test = await self._self_test(group, read_by_type)
        member_candidates = [
            rotation.MemberCandidate(
                secret_type=m.secret_type,
                current_version=rows[m.secret_type].active_version,
                candidate=rotation.Candidate(
                    version=candidates[m.secret_type].version,
                    state=candidates[m.secret_type].state,
                    checksum_ok=read_by_type[m.secret_type].checksum_ok,
                    read_error=read_by_type[m.secret_type].error,
                    payload_sha256=read_by_type[m.secret_type].sha256,
                ),
                current_payload_sha256=active_digests.get(m.secret_type),
            )
            for m in members
        ]
        assessment = rotation.assess_preview(group, member_candidates, self_test)
        record = RotationPreviewRecord(
            preview_id=preview_id,
            rotation_group=group,
            actor=actor,
            created_at=now,
            expires_at=expires_at,
            ready=assessment.ready,
            members=tuple(
                PreviewMemberRecord(
                    secret_type=m.secret_type,
                    current_version=m.current_version,
                    candidate_version=candidates[m.secret_type].version,
                    candidate_state=candidates[m.secret_type].state,
                )
                for m in member_candidates
            ),
            checks=tuple(
                PreviewCheckRecord(name=c.name.value, ok=c.ok, detail=c.detail)
                for c in assessment.checks
            ),
        )
        event = access_event(
            action="rotation_preview",
            at=now,
            actor=actor,
            secret_type=entry.secret_type.value,
            correlation_id=correlation_id,
            started=started,
            details={
                "group": group.value,
                "previewId": preview_id,
                "ready": assessment.ready,
                "requestedCandidate": requested[:32],
                "candidateVersions": {
                    m.secret_type.value: m.candidate_version for m in record.members
                },
                "currentVersions": {m.secret_type.value: m.current_version for m in record.members},
                "checks": {c.name: c.ok for c in record.checks},
                "expiresAt": to_rfc3339(expires_at),
            },
        )
        async with self._uow_factory() as uow:
            await uow.previews.add(record)
            await self._auditor.append_in(uow, event)
            await uow.commit()
        log.info(
            "rotation.previewed",
            group=group.value,
            preview_id=preview_id,
            ready=assessment.ready,
            failed_checks=[c.name for c in record.checks if not c.ok],
        )
        due_dates = [row.rotation_due_at for row in rows.values()]
        return RotationPreviewView(
            preview_id=preview_id,
            group=group.value,
            expires_at=expires_at,
            ready=assessment.ready,
            members=tuple(
                PreviewMemberView(
                    secret_type=m.secret_type.value,
                    current_version=m.current_version,
                    candidate_version=m.candidate_version,
                    candidate_state=m.candidate_state.value,
                )
                for m in record.members
            ),
            current_due_at=min(due_dates) if due_dates else None,
            next_due_at_if_committed=rotation.next_due_if_committed(now, self._period_days),
            checks=tuple(PreviewCheckView(c.name, c.ok, c.detail) for c in record.checks),
        )

    async def _active_digests(
        self, members: Sequence[CatalogEntry], rows: dict[SecretType, OmniSecretMetadata]
    ) -> dict[SecretType, str | None]:
        """SHA-256 of each member's active payload (None when none is pinned or unreadable)."""

        async def digest(member: CatalogEntry) -> str | None:
            active = rows[member.secret_type].active_version
            if active is None:
                return None
            return (await self._read(member, active)).sha256

        digests = await asyncio.gather(*(digest(m) for m in members))
        return {m.secret_type: d for m, d in zip(members, digests, strict=True)}

    async def _read(self, member: CatalogEntry, version: str) -> _Read:
        """Read one candidate payload; the store verifies its CRC32C."""
        name = member.secret_type.value
        try:
            accessed = await self._store.access(member.gsm_secret_id, version)
        except ChecksumMismatch:
            self._count_read(name, ok=False)
            return _Read(None, False, "CHECKSUM_MISMATCH")
        except SecretStoreError as exc:
            self._count_read(name, ok=False)
            return _Read(None, None, exc.reason)
        try:
            check_header_safe(member.secret_type, accessed.value)
        except ValueNotHeaderSafe as exc:
            # Read and checksummed fine, but ApeX could never be sent this value.
            self._count_read(name, ok=False)
            return _Read(None, True, exc.code)
        self._count_read(name, ok=True)
        self._observer.on_event(ValueSeen(accessed.value))
        return _Read(accessed.value, True, None)

    async def _self_test(
        self, group: RotationGroup, reads: dict[SecretType, _Read]
    ) -> rotation.SelfTestOutcome:
        if not rotation.self_test_applies(group):
            return rotation.SelfTestOutcome.not_applicable()
        key = reads[SecretType.API_KEY].value
        secret = reads[SecretType.API_SECRET].value
        passphrase = reads[SecretType.API_PASSPHRASE].value
        if key is None or secret is None or passphrase is None:
            unread = [
                f"{t.value} ({r.error})" if r.error else t.value
                for t, r in reads.items()
                if r.value is None
            ]
            return rotation.SelfTestOutcome.not_run(
                "candidate payloads could not be read: " + ", ".join(unread)
            )
        result = await self._apex.self_test(ApexCredentials(key, secret, passphrase))
        if result.ok:
            account = f"account {result.account_id}" if result.account_id else "account read"
            return rotation.SelfTestOutcome.passed(account)
        if result.http_status is None:
            # No answer at all (network, timeout): ApeX said nothing about these credentials.
            return rotation.SelfTestOutcome.not_run(result.reason or "ApeX did not answer")
        return rotation.SelfTestOutcome.failed(result.reason or "ApeX refused the request")

    # -- commit ----------------------------------------------------------------------------------

    async def commit(
        self, preview_id: str, *, actor: str, correlation_id: str | None
    ) -> RotationCommitView:
        """Pin the preview's candidates as the group's active versions.

        In one transaction: check the preview is open, unexpired, ready and still holds the
        lock; pin the versions, set ``lastRotatedAt`` = now and ``dueAt`` = now + period,
        release the lock, mark the preview committed and append the ``rotation_commit`` audit
        row. Then, on this replica, reload the metadata and refresh the group's cache entries
        (and any other pin that changed meanwhile) at once — a failure there is logged, not
        raised: the commit stands and the periodic reconcile retries — resolve the group's
        rotation alerts and notify the other replicas (``on_change``).

        Args:
            preview_id: the preview to commit.
            actor: the caller (token ``sub``).
            correlation_id: the request id.

        Returns:
            The committed versions and the group's new dates.

        Raises:
            PreviewNotFound: unknown, expired, no longer open, or its lock lapsed (404).
            PreviewNotReady: the preview's checks did not all pass (409).
            DatabaseUnavailable, AuditUnavailable: nothing was committed (503).
        """
        _require_plausible_id(preview_id)
        started = time.perf_counter()
        now = self._clock.now()
        due = rotation.next_due_if_committed(now, self._period_days)
        types: list[SecretType] = []
        context: dict[str, Any] = {"previewId": preview_id[:_MAX_ID_IN_AUDIT]}
        with self._failures(
            "rotation_commit", types, actor=actor, correlation_id=correlation_id, details=context
        ):
            async with self._uow_factory() as uow:
                record = await uow.previews.get(preview_id)
                if record is None or record.status != "open" or record.expires_at <= now:
                    raise PreviewNotFound(preview_id)
                types.extend(m.secret_type for m in record.members)
                group = record.rotation_group
                context["group"] = group.value
                if not record.ready:
                    raise PreviewNotReady(
                        f"rotation preview {preview_id!r} is not ready: "
                        + ", ".join(c.name for c in record.checks if not c.ok)
                        + " failed",
                        details={"previewId": preview_id},
                    )
                # The release doubles as a compare-and-set: of two concurrent commits of one
                # preview, only the first still finds its lock (row locks serialise them).
                if not await uow.metadata.release_group(group.value, preview_id):
                    raise PreviewNotFound(preview_id)
                versions = {m.secret_type.value: m.candidate_version for m in record.members}
                await uow.metadata.record_rotation(group.value, versions, now, due)
                await uow.previews.set_status(preview_id, "committed")
                await self._auditor.append_in(
                    uow,
                    access_event(
                        action="rotation_commit",
                        at=now,
                        actor=actor,
                        correlation_id=correlation_id,
                        started=started,
                        details={
                            "group": group.value,
                            "previewId": preview_id,
                            "activeVersions": versions,
                            "previousVersions": {
                                m.secret_type.value: m.current_version for m in record.members
                            },
                            "lastRotatedAt": to_rfc3339(now),
                            "dueAt": to_rfc3339(due),
                        },
                    ),
                )
                await uow.commit()
        log.info("rotation.committed", group=group.value, preview_id=preview_id, versions=versions)
        await self._after_commit(group, types)
        return RotationCommitView(
            group=group.value,
            members=tuple(
                CommittedMemberView(m.secret_type.value, m.candidate_version)
                for m in record.members
            ),
            last_rotated_at=now,
            due_at=due,
        )

    async def _after_commit(self, group: RotationGroup, types: Sequence[SecretType]) -> None:
        try:
            outcomes = await self._catch_up(types)
        except Exception as exc:  # the commit stands; reconcile picks the pins up later
            log.warning(
                "rotation.refresh_after_commit_failed",
                group=group.value,
                error_type=type(exc).__name__,
            )
        else:
            failed = [t.value for t, outcome in outcomes.items() if not outcome.ok]
            if failed:
                log.warning(
                    "rotation.refresh_after_commit_failed", group=group.value, secret_types=failed
                )
        for name in ROTATION_ALERT_NAMES:
            self._alerts.resolve(name, group.value)
        try:
            self._on_commit(group)
        except Exception as exc:
            log.warning("rotation.on_commit_failed", error_type=type(exc).__name__)
        try:
            # The other replicas refresh the new pins at once instead of at their next reconcile.
            await self._on_change(KIND_ROTATION)
        except Exception as exc:
            log.warning("rotation.notify_failed", error_type=type(exc).__name__)

    # -- cancel ----------------------------------------------------------------------------------

    async def cancel(self, preview_id: str, *, actor: str, correlation_id: str | None) -> None:
        """Cancel an open preview and release its group's lock (if it still holds it).

        Args:
            preview_id: the preview to cancel.
            actor: the caller (token ``sub``).
            correlation_id: the request id.

        Raises:
            PreviewNotFound: unknown, or no longer open (committed or cancelled) (404).
            DatabaseUnavailable, AuditUnavailable: nothing was changed (503).
        """
        _require_plausible_id(preview_id)
        started = time.perf_counter()
        now = self._clock.now()
        types: list[SecretType] = []
        context: dict[str, Any] = {"previewId": preview_id[:_MAX_ID_IN_AUDIT]}
        with self._failures(
            "rotation_cancel", types, actor=actor, correlation_id=correlation_id, details=context
        ):
            async with self._uow_factory() as uow:
                record = await uow.previews.get(preview_id)
                if record is None or record.status != "open":
                    raise PreviewNotFound(preview_id)
                types.extend(m.secret_type for m in record.members)
                group = record.rotation_group
                context["group"] = group.value
                released = await uow.metadata.release_group(group.value, preview_id)
                await uow.previews.set_status(preview_id, "cancelled")
                await self._auditor.append_in(
                    uow,
                    access_event(
                        action="rotation_cancel",
                        at=now,
                        actor=actor,
                        correlation_id=correlation_id,
                        started=started,
                        details={
                            "group": group.value,
                            "previewId": preview_id,
                            "lockReleased": released,
                        },
                    ),
                )
                await uow.commit()
        log.info("rotation.cancelled", group=group.value, preview_id=preview_id)
        await self._reload_quietly()

    # -- helpers ---------------------------------------------------------------------------------

    @contextmanager
    def _failures(
        self,
        action: AuditAction,
        types: Sequence[SecretType],
        *,
        actor: str,
        correlation_id: str | None,
        details: dict[str, Any],
    ) -> Iterator[None]:
        """Count and audit (in the background) an expected failure raised inside the block.

        ``types`` and ``details`` are read when the failure happens, so a caller may fill them
        in as it learns which group it works on. A lost lock race is audited as ``conflict``,
        everything else as ``failure``; the error's code and details go into the row.
        """
        try:
            yield
        except OmniSecretsError as exc:
            for secret_type in types:
                self._observer.on_event(OperationFailed(secret_type.value, OPERATION, exc.code))
            self._audit_later(
                action,
                "conflict" if isinstance(exc, RotationInProgress) else "failure",
                actor=actor,
                correlation_id=correlation_id,
                secret_type=None,
                details={**details, "error": {"code": exc.code, **exc.details}},
            )
            raise

    def _count_read(self, secret_type: str, *, ok: bool) -> None:
        self._observer.on_event(SecretRead(secret_type, "gsm", ok=ok))

    async def _release_quietly(self, group: RotationGroup, preview_id: str) -> None:
        try:
            async with self._uow_factory() as uow:
                await uow.metadata.release_group(group.value, preview_id)
                await uow.commit()
        except Exception as exc:  # the lock lapses by itself after 15 minutes
            log.warning(
                "rotation.lock_release_failed",
                group=group.value,
                preview_id=preview_id,
                error_type=type(exc).__name__,
            )

    async def _catch_up(self, types: Sequence[SecretType]) -> dict[SecretType, RefreshOutcome]:
        """Reload the serving side's metadata and refresh ``types`` plus every changed pin.

        Reloading alone would hide a pin that another replica changed from the periodic
        reconcile (it compares the pins before and after its own reload), so whatever pin this
        reload changes is refreshed here too, at once.
        """
        before = {t: self._pin(t) for t in self._catalog.types}
        await self._secrets.reload_metadata()
        changed = [t for t in self._catalog.types if self._pin(t) not in (None, before[t])]
        refresh = list(dict.fromkeys([*types, *changed]))
        if not refresh:
            return {}
        return await self._secrets.cache.refresh(refresh, force_new=True)

    def _pin(self, secret_type: SecretType) -> str | None:
        meta = self._secrets.metadata(secret_type)
        return meta.active_version if meta is not None else None

    async def _reload_quietly(self) -> None:
        # Status shows previewOpen from the service's metadata: refresh it on this replica now.
        try:
            await self._catch_up(())
        except Exception as exc:
            log.warning("rotation.metadata_reload_failed", error_type=type(exc).__name__)

    def _audit_later(
        self,
        action: AuditAction,
        result: AuditResult,
        *,
        actor: str,
        correlation_id: str | None,
        secret_type: str | None,
        details: dict[str, Any],
    ) -> None:
        self._auditor.record_later(
            access_event(
                action=action,
                at=self._clock.now(),
                actor=actor,
                result=result,
                secret_type=secret_type,
                correlation_id=correlation_id,
                details=details,
            )
        )


def _require_plausible_id(preview_id: str) -> None:
    if _PREVIEW_ID.fullmatch(preview_id) is None:
        raise PreviewNotFound(preview_id[:_MAX_ID_IN_AUDIT])
