"""Closing a rotation preview: commit its candidates as the active versions, or cancel it.

Both change the group's state and append their audit row (``rotation_commit``,
``rotation_cancel``) in one unit of work: no audit row, no change. What follows a commit or a
cancel on this replica (catching the cache up, resolving alerts, waking the monitor, telling the
other replicas) is a reaction to :class:`RotationCommitted` / :class:`RotationCancelled`.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from omni_secrets.domain import rotation
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.clock import Clock, to_rfc3339
from omni_secrets.domain.errors import PreviewNotFound, PreviewNotReady
from omni_secrets.domain.models import RotationPreviewRecord
from omni_secrets.domain.repositories import UnitOfWork, UnitOfWorkFactory
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.rotation.events import RotationCancelled, RotationCommitted
from omni_secrets.service.rotation.failures import reported_failures
from omni_secrets.service.rotation.views import CommittedMemberView, RotationCommitView

_MAX_ID_IN_AUDIT = 64  # preview ids come from the URL: keep audit rows bounded
# Every id this service issues matches; anything else (a NUL byte, 10 kB of text) is unknown
# without asking the database, which would refuse some of it with an error instead of a miss.
_PREVIEW_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class PreviewCloser:
    """Commits and cancels previews (:class:`RotationService` documents the behaviour).

    Args:
        uow_factory: database units of work (metadata, previews, audit).
        auditor: writes the audit rows inside the change's unit of work.
        bus: where commits, cancels and failures are reported.
        clock: time source.
        period_days: ``OMNI_ROTATION_PERIOD_DAYS``; a commit sets ``dueAt`` = now + period.
    """

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        bus: EventBus,
        clock: Clock,
        period_days: int,
    ) -> None:
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
        now = self._clock.now()
        due = rotation.next_due_if_committed(now, self._period_days)
        types: list[SecretType] = []
        context: dict[str, Any] = {"previewId": preview_id[:_MAX_ID_IN_AUDIT]}
        async with (
            reported_failures(
                self._bus,
                self._clock,
                "rotation_commit",
                types,
                actor=actor,
                correlation_id=correlation_id,
                details=context,
            ),
            self._uow_factory() as uow,
        ):
            record = await self._open_preview(uow, preview_id, now, types, context)
            if not record.ready:
                raise PreviewNotReady(
                    f"rotation preview {preview_id!r} is not ready: "
                    + ", ".join(c.name for c in record.checks if not c.ok)
                    + " failed",
                    details={"previewId": preview_id},
                )
            group = record.rotation_group
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
        await self._bus.emit(RotationCommitted(group.value, preview_id, tuple(versions.items())))
        return RotationCommitView(
            group=group.value,
            members=tuple(
                CommittedMemberView(m.secret_type.value, m.candidate_version)
                for m in record.members
            ),
            last_rotated_at=now,
            due_at=due,
        )

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
