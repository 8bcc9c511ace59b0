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

The service decides and reports what it did on the bus (:mod:`.events`); the log lines, counters,
redaction, alerts, background audit rows and peer announcements that follow are its reactions
(:mod:`.reactions`). The work is in :mod:`.preview` and :mod:`.commit`; this is their face.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.exchange import ApexGateway
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.rotation.aliases import PayloadDigests
from omni_secrets.service.rotation.commit import PreviewCloser
from omni_secrets.service.rotation.journal import JournalOwner, JournalWriter
from omni_secrets.service.rotation.preview import PreviewOpener
from omni_secrets.service.rotation.rollback import GroupRollback
from omni_secrets.service.rotation.views import RotationCommitView, RotationPreviewView


class RotationService:
    """Preview, commit and cancel rotations of the catalog's rotation groups.

    Args:
        catalog: the secret types and their groups.
        store: GSM (or a fake): candidate versions and payloads.
        uow_factory: database units of work (metadata, previews, audit).
        auditor: writes ``rotation_preview``/``rotation_commit``/``rotation_cancel`` events in
            the unit of work of the change they record.
        apex: the ApeX gateway that runs the self-test with the candidate credentials.
        bus: told of each candidate read, each stored preview, commit and cancel, and each
            expected failure; its reactions count, redact, log, alert and notify.
        clock: time source.
        period_days: ``OMNI_ROTATION_PERIOD_DAYS``; a commit sets ``dueAt`` = now + period.
        new_id: makes preview ids (random UUIDs by default).
        digests: candidate payload digests (keyed by the integrity keys when configured).
        journal: journals each commit's and rollback's alias moves before the first one
            (default: a journal owned by replica ``local``, for tests without a registry).

    Raises:
        ValueError: ``period_days`` is below 1.
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
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        digests: PayloadDigests | None = None,
        journal: JournalWriter | None = None,
    ) -> None:
        if period_days < 1:
            raise ValueError(f"period_days must be >= 1, got {period_days}")
        digests = digests or PayloadDigests()
        journal = journal or JournalWriter(
            uow_factory=uow_factory, clock=clock, owner=JournalOwner(replica_id="local")
        )
        self._opener = PreviewOpener(
            catalog=catalog,
            store=store,
            uow_factory=uow_factory,
            auditor=auditor,
            apex=apex,
            bus=bus,
            clock=clock,
            period_days=period_days,
            new_id=new_id,
            digests=digests,
        )
        self._rollback = GroupRollback(
            catalog=catalog,
            store=store,
            uow_factory=uow_factory,
            auditor=auditor,
            opener=self._opener,
            bus=bus,
            clock=clock,
            new_id=new_id,
            journal=journal,
        )
        self._closer = PreviewCloser(
            catalog=catalog,
            store=store,
            uow_factory=uow_factory,
            auditor=auditor,
            bus=bus,
            clock=clock,
            period_days=period_days,
            digests=digests,
            journal=journal,
        )

    async def preview(
        self,
        secret_type: str,
        candidate_version: str | None = None,
        *,
        actor: str,
        correlation_id: str | None,
    ) -> RotationPreviewView:
        """Open a preview of the rotation of ``secret_type``'s whole group.

        Takes the group's lock (committed at once, so other replicas see it), runs the
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
        return await self._opener.open(
            secret_type, candidate_version, actor=actor, correlation_id=correlation_id
        )

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
        rotation alerts, wake the rotation monitor and notify the other replicas (all
        reactions to :class:`~omni_secrets.service.rotation.events.RotationCommitted`, run
        before this returns).

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
        return await self._closer.commit(preview_id, actor=actor, correlation_id=correlation_id)

    async def rollback(
        self, secret_type: str, *, actor: str, correlation_id: str | None
    ) -> RotationCommitView:
        """Move ``secret_type``'s whole group back to its ``previous`` versions (contract 15).

        Takes the group's lock as a preview does; re-reads every member in GSM; checks the
        previous versions (a ``previous`` alias, ``current`` naming the version served, ENABLED,
        checksums, header-safe, the ApeX self-test with the previous credentials for API
        credentials); swaps ``current``/``previous`` under the etag read (moved back on a
        mismatch); pins the versions with ``lastRotatedAt``/``dueAt`` as before the commit undone
        (its audit row's ``datesBefore``) and appends ``rotation_rollback``, in one transaction.

        Raises:
            UnknownSecretType: not in the catalog (422).
            RotationInProgress: a preview holds the group's lock (409).
            RollbackNotPossible: a check failed; nothing changed (409).
            GsmChanged: a member changed in GSM during the rollback; nothing left moved (409).
            SecretStoreError, DatabaseUnavailable, AuditUnavailable, CatalogNotSeeded: 503.
        """
        return await self._rollback.rollback(
            secret_type, actor=actor, correlation_id=correlation_id
        )

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
        await self._closer.cancel(preview_id, actor=actor, correlation_id=correlation_id)
