"""Closing a rotation preview: commit its candidates as the active versions, or cancel it.

Both change the group's state and append their audit row (``rotation_commit``,
``rotation_cancel``) in one unit of work: no audit row, no change. A commit journals its alias
moves before the first one (:mod:`.journal`) and closes the entry in the unit of work that pins
the candidates, so a replica dying between two moves is recovered (:mod:`.recovery`). What
follows a commit or a cancel on this replica (catching the cache up, resolving alerts, waking
the monitor, telling the other replicas) is a reaction to :class:`RotationCommitted` /
:class:`RotationCancelled`.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from typing import Any

from omni_secrets.domain import rotation
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import Clock, to_rfc3339
from omni_secrets.domain.errors import (
    CandidateChanged,
    GsmChanged,
    PreviewNotFound,
    PreviewNotReady,
    SecretStoreError,
)
from omni_secrets.domain.models import (
    OmniSecretMetadata,
    PreviewMemberRecord,
    RotationPreviewRecord,
)
from omni_secrets.domain.repositories import UnitOfWork, UnitOfWorkFactory
from omni_secrets.domain.rotation.journal import JournalEntry
from omni_secrets.domain.secret_store import PREVIOUS_ALIAS, SecretStore, VersionState
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.rotation.aliases import (
    AliasMove,
    PayloadDigests,
    dates_of,
    move_back,
    move_group,
    swapped_aliases,
)
from omni_secrets.service.rotation.events import (
    CandidateRead,
    PreviewUntrusted,
    RotationCancelled,
    RotationCommitted,
)
from omni_secrets.service.rotation.failures import reported_failures
from omni_secrets.service.rotation.journal import JournalWriter
from omni_secrets.service.rotation.views import CommittedMemberView, RotationCommitView

_MAX_ID_IN_AUDIT = 64  # preview ids come from the URL: keep audit rows bounded
# Every id this service issues matches; anything else (a NUL byte, 10 kB of text) is unknown
# without asking the database, which would refuse some of it with an error instead of a miss.
_PREVIEW_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class PreviewCloser:
    """Commits and cancels previews (:class:`RotationService` documents the behaviour).

    Args:
        catalog: the secret types (their GSM secret ids).
        store: GSM: re-read at commit, and the aliases moved.
        uow_factory: database units of work (metadata, previews, audit).
        auditor: writes the audit rows inside the change's unit of work.
        bus: where commits, cancels and failures are reported.
        clock: time source.
        period_days: ``OMNI_ROTATION_PERIOD_DAYS``; a commit sets ``dueAt`` = now + period.
        digests: the candidate payload digests the preview stored.
        journal: journals the alias moves before the first one.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: SecretStore,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        bus: EventBus,
        clock: Clock,
        period_days: int,
        digests: PayloadDigests,
        journal: JournalWriter,
    ) -> None:
        self._journal = journal
        self._digests = digests
        self._catalog = catalog
        self._store = store
        self._uow_factory = uow_factory
        self._auditor = auditor
        self._bus = bus
        self._clock = clock
        self._period_days = period_days

    async def commit(
        self, preview_id: str, *, actor: str, correlation_id: str | None
    ) -> RotationCommitView:
        _require_plausible_id(preview_id)
        started = time.perf_counter()
        types: list[SecretType] = []
        context: dict[str, Any] = {"previewId": preview_id[:_MAX_ID_IN_AUDIT]}
        async with reported_failures(
            self._bus,
            self._clock,
            "rotation_commit",
            types,
            actor=actor,
            correlation_id=correlation_id,
            details=context,
        ):
            record, rows = await self._ready_preview(preview_id, types, context)
            moves = await self._recheck(record, rows)
            now = self._clock.now()
            due = rotation.next_due_if_committed(now, self._period_days)
            # The intent goes to the database before the first move: a replica that dies
            # between two moves is recovered from it (.recovery).
            entry = await self._journal.open(
                kind="commit",
                group=record.rotation_group.value,
                lock_id=preview_id,
                actor=actor,
                moves=moves,
                dates={m.secret_type: (now, due) for m in moves},
            )
            try:
                await self._move_and_record(
                    entry, moves, record, rows, actor, correlation_id, started
                )
            finally:
                self._journal.done(entry)
        versions = tuple((m.secret_type.value, m.candidate_version) for m in record.members)
        await self._bus.emit(
            RotationCommitted(record.rotation_group.value, preview_id, versions, due_at=due)
        )
        return RotationCommitView(
            group=record.rotation_group.value,
            members=tuple(
                CommittedMemberView(m.secret_type.value, m.candidate_version)
                for m in record.members
            ),
            last_rotated_at=now,
            due_at=due,
        )

    async def _move_and_record(
        self,
        entry: JournalEntry,
        moves: list[AliasMove],
        record: RotationPreviewRecord,
        rows: dict[SecretType, OmniSecretMetadata],
        actor: str,
        correlation_id: str | None,
        started: float,
    ) -> None:
        """Move the aliases, then record the commit and close the journal entry together.

        A refusal moves GSM back; the entry is closed ``aborted`` only when every member is
        known to be back (else recovery resolves it).
        """
        try:
            afters = await move_group(self._store, moves)
        except GsmChanged as exc:
            if "notMovedBack" not in exc.details:
                await self._journal.abort_quietly(entry)
            raise
        try:
            await self._record(entry, record, rows, actor, correlation_id, started)
        except BaseException:
            # The database refused (or the lock lapsed): GSM goes back to where it was.
            if not await move_back(self._store, moves, afters):
                await self._journal.abort_quietly(entry)
            raise

    async def _ready_preview(
        self, preview_id: str, types: list[SecretType], context: dict[str, Any]
    ) -> tuple[RotationPreviewRecord, dict[SecretType, OmniSecretMetadata]]:
        """The open, unexpired, ready preview and its members' rows (its lock still held)."""
        async with self._uow_factory() as uow:
            record = await self._open_preview(uow, preview_id, self._clock.now(), types, context)
            if not record.integrity.servable:
                # Contract section 17: the row is not the one this service wrote last (edited,
                # signed by a retired key, or reopened after its commit or cancel).
                await self._bus.emit(
                    PreviewUntrusted(
                        record.rotation_group.value, preview_id, record.integrity.value
                    )
                )
                raise PreviewNotReady(
                    f"rotation preview {preview_id!r} fails its integrity check "
                    f"({record.integrity.value}); not committed",
                    details={"previewId": preview_id},
                )
            # ``ready`` is re-derived from the checks, never taken from the row.
            failed = [c.name for c in record.checks if not c.ok]
            if failed or not record.checks:
                raise PreviewNotReady(
                    f"rotation preview {preview_id!r} is not ready: "
                    + (", ".join(failed) + " failed" if failed else "no checks ran"),
                    details={"previewId": preview_id},
                )
            rows: dict[SecretType, OmniSecretMetadata] = {}
            for member in record.members:
                row = await uow.metadata.get(member.secret_type.value)
                if row is None or row.preview_id != preview_id:
                    raise PreviewNotFound(preview_id)
                rows[member.secret_type] = row
        return record, rows

    async def _recheck(
        self, record: RotationPreviewRecord, rows: dict[SecretType, OmniSecretMetadata]
    ) -> list[AliasMove]:
        """Re-read every member in GSM; the moves to make, or why not (contract section 15).

        A member with no ``current`` alias yet counts its pinned version as its current one.

        Raises:
            CandidateChanged: a candidate is no longer ENABLED, or its payload is not the one
                previewed.
            GsmChanged: a member's ``current`` no longer names the preview's current version.
        """
        members = record.members
        ids = [self._catalog.entry(m.secret_type).gsm_secret_id for m in members]
        reads = await asyncio.gather(*(self._store.get_secret(i) for i in ids))
        for member, secret_id in zip(members, ids, strict=True):
            await self._check_candidate(record.preview_id, member, secret_id)
        moves: list[AliasMove] = []
        for member, secret_id, read in zip(members, ids, reads, strict=True):
            current = read.current or rows[member.secret_type].active_version
            if current != member.current_version:
                raise GsmChanged(
                    f"{member.secret_type.value}: the current version in Secret Manager is "
                    f"{current}, the preview was made against {member.current_version}",
                    details={"secretType": member.secret_type.value, "currentVersion": current},
                )
            target = swapped_aliases(read, member.candidate_version, current or "")
            if current is None:
                target.pop(PREVIOUS_ALIAS)
            moves.append(AliasMove(member.secret_type.value, secret_id, read, target))
        return moves

    async def _check_candidate(
        self, preview_id: str, member: PreviewMemberRecord, secret_id: str
    ) -> None:
        name, version = member.secret_type.value, member.candidate_version
        try:
            info = await self._store.get_version(secret_id, version)
            enabled = info.state is VersionState.ENABLED
        except SecretStoreError as exc:
            if exc.transient:
                raise
            enabled = False
        if not enabled:
            raise CandidateChanged(
                f"{name}: candidate version {version} is no longer ENABLED",
                details={"secretType": name, "candidateVersion": version},
            )
        if member.candidate_digest is None:
            return  # a preview stored before digests were kept
        try:
            accessed = await self._store.access(secret_id, version)
        except SecretStoreError as exc:
            if exc.transient and exc.reason != "CHECKSUM_MISMATCH":
                raise
            accessed = None
        await self._bus.emit(CandidateRead(name, accessed.value if accessed else None))
        if accessed is None or not self._digests.matches(
            preview_id, accessed.value, member.candidate_digest
        ):
            raise CandidateChanged(
                f"{name}: candidate version {version} no longer holds the payload previewed",
                details={"secretType": name, "candidateVersion": version},
            )

    async def _record(
        self,
        entry: JournalEntry,
        record: RotationPreviewRecord,
        rows: dict[SecretType, OmniSecretMetadata],
        actor: str,
        correlation_id: str | None,
        started: float,
    ) -> None:
        """Pin, stamp the dates, release the lock, close the journal entry and append the audit
        row, in one unit of work.

        The dates before the commit go in the audit row: a rollback restores them.
        """
        now, due = next(iter(entry.dates.values()))
        group, preview_id = record.rotation_group, record.preview_id
        async with self._uow_factory() as uow:
            # The release doubles as a compare-and-set: of two concurrent commits of one
            # preview, only the first still finds its lock (row locks serialise them).
            if not await uow.metadata.release_group(group.value, preview_id):
                raise PreviewNotFound(preview_id)
            # So does the close: an entry a recovery already resolved is not ours to record.
            if not await uow.journal.close(entry.journal_id, "closed", self._clock.now()):
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
                        "datesBefore": dates_of(rows),
                        "journalId": entry.journal_id,
                    },
                ),
            )
            await uow.commit()

    async def cancel(self, preview_id: str, *, actor: str, correlation_id: str | None) -> None:
        _require_plausible_id(preview_id)
        started = time.perf_counter()
        now = self._clock.now()
        types: list[SecretType] = []
        context: dict[str, Any] = {"previewId": preview_id[:_MAX_ID_IN_AUDIT]}
        async with (
            reported_failures(
                self._bus,
                self._clock,
                "rotation_cancel",
                types,
                actor=actor,
                correlation_id=correlation_id,
                details=context,
            ),
            self._uow_factory() as uow,
        ):
            record = await self._open_preview(uow, preview_id, None, types, context)
            group = record.rotation_group
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
        await self._bus.emit(RotationCancelled(group.value, preview_id))

    @staticmethod
    async def _open_preview(
        uow: UnitOfWork,
        preview_id: str,
        unexpired_at: datetime | None,
        types: list[SecretType],
        context: dict[str, Any],
    ) -> RotationPreviewRecord:
        """The open preview ``preview_id`` (unexpired at ``unexpired_at``, unless None).

        Records its members in ``types`` and its group in ``context`` for the failure report.

        Raises:
            PreviewNotFound: unknown, no longer open, or expired.
        """
        record = await uow.previews.get(preview_id)
        if record is None or record.status != "open":
            raise PreviewNotFound(preview_id)
        if unexpired_at is not None and record.expires_at <= unexpired_at:
            raise PreviewNotFound(preview_id)
        types.extend(m.secret_type for m in record.members)
        context["group"] = record.rotation_group.value
        return record


def _require_plausible_id(preview_id: str) -> None:
    if _PREVIEW_ID.fullmatch(preview_id) is None:
        raise PreviewNotFound(preview_id[:_MAX_ID_IN_AUDIT])
