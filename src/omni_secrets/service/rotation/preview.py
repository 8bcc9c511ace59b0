"""Opening a rotation preview: resolve candidates, take the group's lock, run the checks, store.

:class:`PreviewOpener` resolves each member's candidate version in GSM, takes the group's
rotation lock in the database (one open preview per group across every replica, for
:data:`~omni_secrets.domain.rotation.PREVIEW_LOCK_DURATION`), reads every candidate payload (the
store verifies its CRC32C), runs the ApeX self-test with the candidate key, secret and
passphrase, and stores the preview with its checks and its ``rotation_preview`` audit row in one
transaction. Candidate values live only in local variables for the length of the checks: they
are never stored, logged or returned. The decisions are :mod:`omni_secrets.domain.rotation`'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain import rotation
from omni_secrets.domain.catalog import (
    Catalog,
    CatalogEntry,
    RotationGroup,
    SecretType,
    parse_secret_type,
)
from omni_secrets.domain.clock import Clock, to_rfc3339
from omni_secrets.domain.errors import (
    CatalogNotSeeded,
    ChecksumMismatch,
    RotationInProgress,
    SecretStoreError,
    ValueNotHeaderSafe,
)
from omni_secrets.domain.exchange import ApexCredentials, ApexGateway
from omni_secrets.domain.header_safety import check_header_safe
from omni_secrets.domain.models import (
    NewAccessEvent,
    OmniSecretMetadata,
    PreviewCheckRecord,
    PreviewMemberRecord,
    RotationPreviewRecord,
)
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import LATEST, SecretStore, VersionInfo
from omni_secrets.domain.values import SecretValue
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.rotation.aliases import PayloadDigests
from omni_secrets.service.rotation.events import CandidateRead, LockReleaseFailed, PreviewStored
from omni_secrets.service.rotation.failures import reported_failures
from omni_secrets.service.rotation.views import (
    PreviewCheckView,
    PreviewMemberView,
    RotationPreviewView,
)

_REQUESTED_IN_AUDIT = 32  # the requested candidate comes from the request body: keep rows bounded


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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Attempt:
    """One preview being opened: what it is about and what it holds so far."""

    entry: CatalogEntry
    members: Sequence[CatalogEntry]
    requested: str
    preview_id: str
    now: datetime
    expires_at: datetime
    actor: str
    correlation_id: str | None
    started: float

    @property
    def group(self) -> RotationGroup:
        return self.entry.rotation_group


class PreviewOpener:
    """Opens previews (:meth:`RotationService.preview` documents the behaviour).

    Args:
        catalog: the secret types and their groups.
        store: GSM (or a fake): candidate versions and payloads.
        uow_factory: database units of work (metadata, previews, audit).
        auditor: writes the ``rotation_preview`` row inside the preview's unit of work.
        apex: the ApeX gateway that runs the self-test with the candidate credentials.
        bus: where the reads, the stored preview and the failures are reported.
        clock: time source.
        period_days: ``OMNI_ROTATION_PERIOD_DAYS`` (the preview shows the due date a commit sets).
        new_id: makes preview ids.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: SecretStore,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        apex: ApexGateway,
        bus: EventBus,
        clock: Clock,
        period_days: int,
        new_id: Callable[[], str],
        digests: PayloadDigests,
    ) -> None:
        self._digests = digests
        self._catalog = catalog
        self._store = store
        self._uow_factory = uow_factory
        self._auditor = auditor
        self._apex = apex
        self._bus = bus
        self._clock = clock
        self._period_days = period_days
        self._new_id = new_id

    async def open(
        self,
        secret_type: str,
        candidate_version: str | None,
        *,
        actor: str,
        correlation_id: str | None,
    ) -> RotationPreviewView:
        entry = self._catalog.entry(parse_secret_type(secret_type))
        members = self._catalog.group_members(entry.rotation_group)
        requested = candidate_version or LATEST
        started = time.perf_counter()
        async with reported_failures(
            self._bus,
            self._clock,
            "rotation_preview",
            [m.secret_type for m in members],
            actor=actor,
            correlation_id=correlation_id,
            details={
                "group": entry.rotation_group.value,
                "requestedCandidate": requested[:_REQUESTED_IN_AUDIT],
            },
        ):
            candidates = await self._resolve_candidates(members, requested)
            now = self._clock.now()
            attempt = _Attempt(
                entry=entry,
                members=members,
                requested=requested,
                preview_id=self._new_id(),
                now=now,
                expires_at=rotation.preview_expires_at(now),
                actor=actor,
                correlation_id=correlation_id,
                started=started,
            )
            rows = await self._lock(attempt)
            try:
                view = await self._check_and_store(attempt, rows, candidates)
            except BaseException:
                # Whatever went wrong, do not leave the group locked for 15 minutes.
                await self._release_quietly(attempt.group, attempt.preview_id)
                raise
        await self._bus.emit(
            PreviewStored(
                group=attempt.group.value,
                preview_id=attempt.preview_id,
                ready=view.ready,
                failed_checks=tuple(c.name for c in view.checks if not c.ok),
            )
        )
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

    async def _lock(self, attempt: _Attempt) -> dict[SecretType, OmniSecretMetadata]:
        """Take the group's lock for the attempt's preview and read the members' rows under it.

        Raises:
            RotationInProgress: another open preview holds the lock.
            CatalogNotSeeded: the group (or one of its members) has no metadata row.
        """
        group, members = attempt.group, attempt.members
        rows: dict[SecretType, OmniSecretMetadata | None] = {}
        async with self._uow_factory() as uow:
            lock = await uow.metadata.try_lock_group(
                group.value, attempt.preview_id, attempt.expires_at, attempt.now
            )
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
            await self._release_quietly(group, attempt.preview_id)
            raise CatalogNotSeeded([t.value for t, row in rows.items() if row is None])
        return seeded

    async def _check_and_store(
        self,
        attempt: _Attempt,
        rows: dict[SecretType, OmniSecretMetadata],
        candidates: dict[SecretType, VersionInfo],
    ) -> RotationPreviewView:
        """Run the checks, then store the preview and its audit row in one transaction."""
        members = attempt.members
        reads = await asyncio.gather(
            *(self._read(m, candidates[m.secret_type].version) for m in members)
        )
        read_by_type = {m.secret_type: r for m, r in zip(members, reads, strict=True)}
        active_digests = await self._active_digests(members, rows)
        self_test = await self._self_test(attempt.group, read_by_type)
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
        assessment = rotation.assess_preview(attempt.group, member_candidates, self_test)
        digests = {
            t: self._digests.of(attempt.preview_id, r.value)
            for t, r in read_by_type.items()
            if r.value is not None
        }
        record = _record(attempt, member_candidates, candidates, assessment, digests)
        async with self._uow_factory() as uow:
            await uow.previews.add(record)
            await self._auditor.append_in(uow, _audit_event(attempt, record))
            await uow.commit()
        due_dates = [row.rotation_due_at for row in rows.values()]
        return _view(
            record,
            expires_at=attempt.expires_at,
            current_due_at=min(due_dates) if due_dates else None,
            next_due_at=rotation.next_due_if_committed(attempt.now, self._period_days),
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

    async def read_payload(self, member: CatalogEntry, version: str) -> _Read:
        """One payload read as a preview reads it (checksum, header safety, reported)."""
        return await self._read(member, version)

    async def self_test_with(
        self, group: RotationGroup, reads: dict[SecretType, _Read]
    ) -> rotation.SelfTestOutcome:
        """The ApeX self-test of a preview, with the payloads ``reads`` holds."""
        return await self._self_test(group, reads)

    async def _read(self, member: CatalogEntry, version: str) -> _Read:
        """Read one candidate payload; the store verifies its CRC32C.

        Every read is reported before this returns, so the redactor knows a value before any
        log line that follows could name it.
        """
        name = member.secret_type.value
        try:
            accessed = await self._store.access(member.gsm_secret_id, version)
        except ChecksumMismatch:
            await self._bus.emit(CandidateRead(name, None))
            return _Read(None, False, "CHECKSUM_MISMATCH")
        except SecretStoreError as exc:
            await self._bus.emit(CandidateRead(name, None))
            return _Read(None, None, exc.reason)
        try:
            check_header_safe(member.secret_type, accessed.value)
        except ValueNotHeaderSafe as exc:
            # Read and checksummed fine, but ApeX could never be sent this value.
            await self._bus.emit(CandidateRead(name, None))
            return _Read(None, True, exc.code)
        await self._bus.emit(CandidateRead(name, accessed.value))
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

    async def _release_quietly(self, group: RotationGroup, preview_id: str) -> None:
        try:
            async with self._uow_factory() as uow:
                await uow.metadata.release_group(group.value, preview_id)
                await uow.commit()
        except Exception as exc:  # the lock lapses by itself after 15 minutes
            await self._bus.emit(LockReleaseFailed(group.value, preview_id, type(exc).__name__))


def _record(
    attempt: _Attempt,
    member_candidates: Sequence[rotation.MemberCandidate],
    candidates: dict[SecretType, VersionInfo],
    assessment: rotation.PreviewAssessment,
    digests: dict[SecretType, str],
) -> RotationPreviewRecord:
    """The preview as stored: versions, keyed payload digests and checks, never a value."""
    return RotationPreviewRecord(
        preview_id=attempt.preview_id,
        rotation_group=attempt.group,
        actor=attempt.actor,
        created_at=attempt.now,
        expires_at=attempt.expires_at,
        ready=assessment.ready,
        members=tuple(
            PreviewMemberRecord(
                secret_type=m.secret_type,
                current_version=m.current_version,
                candidate_version=candidates[m.secret_type].version,
                candidate_state=candidates[m.secret_type].state,
                candidate_digest=digests.get(m.secret_type),
            )
            for m in member_candidates
        ),
        checks=tuple(
            PreviewCheckRecord(name=c.name.value, ok=c.ok, detail=c.detail)
            for c in assessment.checks
        ),
    )


def _audit_event(attempt: _Attempt, record: RotationPreviewRecord) -> NewAccessEvent:
    """The ``rotation_preview`` row, committed with the preview."""
    return access_event(
        action="rotation_preview",
        at=attempt.now,
        actor=attempt.actor,
        secret_type=attempt.entry.secret_type.value,
        correlation_id=attempt.correlation_id,
        started=attempt.started,
        details={
            "group": attempt.group.value,
            "previewId": attempt.preview_id,
            "ready": record.ready,
            "requestedCandidate": attempt.requested[:_REQUESTED_IN_AUDIT],
            "candidateVersions": {m.secret_type.value: m.candidate_version for m in record.members},
            "currentVersions": {m.secret_type.value: m.current_version for m in record.members},
            "checks": {c.name: c.ok for c in record.checks},
            "expiresAt": to_rfc3339(attempt.expires_at),
        },
    )


def _view(
    record: RotationPreviewRecord,
    *,
    expires_at: datetime,
    current_due_at: datetime | None,
    next_due_at: datetime,
) -> RotationPreviewView:
    return RotationPreviewView(
        preview_id=record.preview_id,
        group=record.rotation_group.value,
        expires_at=expires_at,
        ready=record.ready,
        members=tuple(
            PreviewMemberView(
                secret_type=m.secret_type.value,
                current_version=m.current_version,
                candidate_version=m.candidate_version,
                candidate_state=m.candidate_state.value,
            )
            for m in record.members
        ),
        current_due_at=current_due_at,
        next_due_at_if_committed=next_due_at,
        checks=tuple(PreviewCheckView(c.name, c.ok, c.detail) for c in record.checks),
    )
