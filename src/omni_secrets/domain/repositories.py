"""Persistence ports: metadata, audit log, break-glass overrides, rotation previews, unit of work.

The service talks to the database only through these Protocols. Implementations: the SQL
adapter (``omni_secrets.adapters.db``; PostgreSQL or SQLite) and the in-memory fake
(``omni_secrets.testing.InMemoryUnitOfWork``); one shared contract test suite runs against all of
them.

Transaction rules: every repository method runs inside the transaction of the
:class:`UnitOfWork` that handed it out, and **never commits**. Changes become visible to other
units of work (and other replicas) only after :meth:`UnitOfWork.commit`; leaving the ``async
with`` block without committing rolls everything back. One unit of work per task at a time: do not
open a second one while the first is open (SQLite would wait for itself).

Failures: a database that cannot be reached raises
:class:`~omni_secrets.domain.errors.DatabaseUnavailable` (an audit append raises
:class:`~omni_secrets.domain.errors.AuditUnavailable` instead); other errors are bugs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from omni_secrets.domain.audit_chain import ChainVerdict, verify_chain
from omni_secrets.domain.models import (
    BreakGlassOverrideRecord,
    NewAccessEvent,
    OmniSecretAccessEvent,
    OmniSecretMetadata,
    OverrideEndReason,
    PreviewStatus,
    RotationPreviewRecord,
)
from omni_secrets.domain.rotation.journal import JournalEntry, JournalStatus

__all__ = [
    "AuditLog",
    "ChainVerdict",
    "CommitJournal",
    "GroupLock",
    "MetadataRepository",
    "OverrideRepository",
    "PreviewRepository",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "verify_chain",
]


@dataclass(frozen=True, slots=True)
class GroupLock:
    """The outcome of :meth:`MetadataRepository.try_lock_group`.

    Attributes:
        won: True when the caller now holds the group's rotation lock.
        preview_id: the holder's preview id (the caller's own when ``won``); None only when the
            group has no metadata rows (catalog not seeded), in which case ``won`` is False.
        expires_at: when the holder's lock lapses; None exactly when ``preview_id`` is None.
    """

    won: bool
    preview_id: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit rows ``omni-secrets audit list`` asks for; every field set must match.

    Attributes:
        secret_type: rows about this type only.
        action: rows with this action only.
        actor: rows by this actor only.
        since: rows with ``occurred_at`` at or after this instant only.
    """

    secret_type: str | None = None
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None

    def matches(self, event: OmniSecretAccessEvent) -> bool:
        """True when ``event`` passes every set field (the in-memory twin of the SQL query)."""
        return (
            (self.secret_type is None or event.secret_type == self.secret_type)
            and (self.action is None or event.action == self.action)
            and (self.actor is None or event.actor == self.actor)
            and (self.since is None or event.occurred_at >= self.since)
        )


class MetadataRepository(Protocol):
    """The ``omni_secret_metadata`` rows: one per catalog type."""

    async def list_all(self) -> Sequence[OmniSecretMetadata]:
        """Every row, ordered by secret type name."""
        ...

    async def get(self, secret_type: str) -> OmniSecretMetadata | None:
        """The row of ``secret_type``, or None when it was never seeded."""
        ...

    async def resign_stale(self) -> Sequence[str]:
        """Re-sign, under the signing key, the live rows whose MAC verifies only under an
        older key and that no later audit event supersedes (contract section 17: start-up after
        a key change). Returns their keys; nothing without an integrity key."""
        ...

    async def insert_missing(self, rows: Iterable[OmniSecretMetadata]) -> int:
        """Insert the rows whose secret type has no row yet; existing rows stay as they are.

        Idempotent and safe against a concurrent seed (conflicts are skipped, not raised).

        Returns:
            How many rows were inserted.
        """
        ...

    async def pin_active_version(
        self,
        secret_type: str,
        version: str,
        *,
        only_if_unpinned: bool,
        rotation_dates: tuple[datetime, datetime] | None = None,
    ) -> bool:
        """Set the served version of ``secret_type``.

        Args:
            secret_type: the type.
            version: the GSM version number as a string.
            only_if_unpinned: when True, change the row only if no version is pinned yet (the
                cache's first successful fetch; a concurrent replica's pin wins, not ours).
            rotation_dates: ``(last_rotated_at, rotation_due_at)`` to record with the pin, or
                None to keep the row's dates.

        Returns:
            True when the row was changed; False when the type has no row, or it was already
            pinned and ``only_if_unpinned`` is True.
        """
        ...

    async def record_rotation(
        self,
        group: str,
        active_versions: Mapping[str, str],
        rotated_at: datetime,
        due_at: datetime,
    ) -> None:
        """Commit a rotation: pin versions, stamp the group's dates and release its lock.

        Every row of ``group`` gets ``last_rotated_at=rotated_at`` and ``rotation_due_at=due_at``
        and loses its rotation lock (``preview_id``/``preview_expires_at`` cleared); each type in
        ``active_versions`` also gets its ``active_version``.

        Raises:
            ValueError: a type in ``active_versions`` has no row in ``group`` (nothing changed
                is guaranteed only after the unit of work rolls back).
        """
        ...

    async def try_lock_group(
        self, group: str, preview_id: str, expires_at: datetime, now: datetime
    ) -> GroupLock:
        """Take the rotation lock of ``group`` for ``preview_id`` (atomic compare-and-set).

        Looks at every row of the group together: the caller wins when no row holds an
        unexpired lock of another preview (a lock whose ``preview_expires_at <= now`` has
        lapsed and is taken over; a lock already held by ``preview_id`` is renewed). On a win
        every row of the group gets ``preview_id``/``preview_expires_at=expires_at``. Concurrent
        attempts from other connections or replicas are serialised by the database (row locks
        on PostgreSQL, the write lock on SQLite): exactly one of them wins. Other units of work
        see the lock once this one commits — and a rival attempt waits until then, so commit
        right after taking the lock (before running the preview's checks).

        Returns:
            ``GroupLock(won=True, preview_id, expires_at)`` on a win; otherwise ``won=False``
            with the current holder's preview id and expiry (for ``ROTATION_IN_PROGRESS``), or
            ``won=False`` with both None when the group has no rows.
        """
        ...

    async def release_group(self, group: str, preview_id: str) -> bool:
        """Release the lock of ``group`` if ``preview_id`` holds it (expired or not).

        Returns:
            True when the lock was held by ``preview_id`` and is now released; False otherwise
            (another holder's lock is never touched).
        """
        ...

    async def set_break_glass(
        self, secret_type: str, activated_at: datetime | None, expires_at: datetime | None
    ) -> bool:
        """Record (both set) or clear (both None) the break-glass window of ``secret_type``.

        Returns:
            True when the row exists and was updated.

        Raises:
            ValueError: exactly one of ``activated_at``/``expires_at`` is None.
        """
        ...


class AuditLog(Protocol):
    """The append-only audit table ``omni_secret_access_events`` (contract section 7)."""

    async def append(self, event: NewAccessEvent) -> OmniSecretAccessEvent:
        """Number, chain (keyed when an integrity key is configured) and insert ``event``.

        Appends are serialised cluster-wide (a PostgreSQL advisory transaction lock; SQLite's
        write lock), and the id is ``max(id) + 1`` read under that lock — not a sequence — so a
        rolled-back unit of work leaves no gap and the chain links to the last *committed* row.

        .. warning:: The serialisation lock is held until the unit of work ends: append late
           and commit soon, never across a GSM or HTTP call, or every other writer waits.

        Raises:
            AuditUnavailable: the row could not be written (database unreachable or refusing).
        """
        ...

    async def append_many(self, batch: Sequence[NewAccessEvent]) -> Sequence[OmniSecretAccessEvent]:
        """:meth:`append` for several events, in order, under one serialisation (group commit).

        The chain lock is taken once for the whole batch; the rows get consecutive ids in the
        order given. Nothing is written when it raises (the unit of work rolls back).

        Raises:
            AuditUnavailable: the rows could not be written.
        """
        ...

    async def recent(self, limit: int) -> Sequence[OmniSecretAccessEvent]:
        """The newest ``limit`` rows, newest first."""
        ...

    async def page(self, after_id: int, limit: int) -> Sequence[OmniSecretAccessEvent]:
        """Up to ``limit`` rows with ``id > after_id``, ascending (for chain verification)."""
        ...

    async def search(self, where: AuditFilter, limit: int) -> Sequence[OmniSecretAccessEvent]:
        """The newest ``limit`` rows that match ``where``, newest first (``audit list``)."""
        ...


class OverrideRepository(Protocol):
    """Break-glass overrides and the used-nonce register."""

    async def add(self, record: BreakGlassOverrideRecord) -> None:
        """Store an activated override and burn its nonce.

        The nonce goes into a separate used-nonce table that is never pruned, so a payload
        cannot be replayed even after its override ended. A concurrent add of the same nonce
        waits for the first and then fails. The unit of work stays usable after a replay.

        Raises:
            ReplayDetected: the nonce was used before (nothing is stored).
        """
        ...

    async def get(self, override_id: str) -> BreakGlassOverrideRecord | None:
        """The override, ended or not, or None when unknown."""
        ...

    async def list_active(self, now: datetime) -> Sequence[BreakGlassOverrideRecord]:
        """Overrides not ended and with ``expires_at > now``, oldest activation first."""
        ...

    async def resign_stale(self, now: datetime) -> Sequence[str]:
        """Re-sign, under the signing key, the live rows whose MAC verifies only under an
        older key and that no later audit event supersedes (contract section 17: start-up after
        a key change). Returns their keys; nothing without an integrity key."""
        ...

    async def end(self, override_id: str, ended_at: datetime, reason: OverrideEndReason) -> bool:
        """Mark an override ended (revoked early, or expired by the expiry job).

        Returns:
            True when it was not ended before; False when unknown or already ended.
        """
        ...


class PreviewRepository(Protocol):
    """Rotation previews."""

    async def add(self, record: RotationPreviewRecord) -> None:
        """Store a new preview.

        Raises:
            ValueError: a preview with that id exists.
        """
        ...

    async def get(self, preview_id: str) -> RotationPreviewRecord | None:
        """The preview whatever its status, or None when unknown."""
        ...

    async def resign_stale(self, now: datetime) -> Sequence[str]:
        """Re-sign, under the signing key, the live rows whose MAC verifies only under an
        older key and that no later audit event supersedes (contract section 17: start-up after
        a key change). Returns their keys; nothing without an integrity key."""
        ...

    async def set_status(self, preview_id: str, status: PreviewStatus) -> bool:
        """Change a preview's status.

        Returns:
            True when the preview exists (and now has ``status``); False when unknown.
        """
        ...


class CommitJournal(Protocol):
    """The commit journal ``omni_commit_journal`` (contract section 15; see
    :mod:`omni_secrets.domain.rotation.journal`). Entries are never deleted."""

    async def open(self, entry: JournalEntry) -> None:
        """Store a new ``open`` entry (MAC'd with the integrity key).

        Raises:
            ValueError: an entry with that id exists.
        """
        ...

    async def get(self, journal_id: str) -> JournalEntry | None:
        """The entry whatever its status (``integrity`` says what its MAC says), or None."""
        ...

    async def list_open(self) -> Sequence[JournalEntry]:
        """Every ``open`` entry, oldest first."""
        ...

    async def claim(self, journal_id: str, replica_id: str, now: datetime) -> bool:
        """Mark ``replica_id`` as recovering the open entry (compare-and-set).

        Succeeds when the entry is open and unclaimed, claimed by ``replica_id`` already, or its
        claim is older than :data:`~omni_secrets.domain.rotation.journal.CLAIM_SECONDS`.

        Returns:
            True when ``replica_id`` now holds the claim.
        """
        ...

    async def close(
        self,
        journal_id: str,
        status: JournalStatus,
        now: datetime,
        outcome: str | None = None,
    ) -> bool:
        """Close the entry if it is still open (compare-and-set; re-signs its MAC).

        Returns:
            True when it was open and is now ``status``; False when unknown or already closed
            (someone else closed or recovered it: the caller must not act as if it had).
        """
        ...


class UnitOfWork(Protocol):
    """One database transaction and the repositories that work inside it.

    Usage::

        async with uow_factory() as uow:
            await uow.audit.append(event)
            await uow.commit()

    Leaving the block without :meth:`commit` (or by an exception) rolls back. After a commit the
    same unit of work may continue with a new transaction, which again needs a commit.
    """

    @property
    def metadata(self) -> MetadataRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def overrides(self) -> OverrideRepository: ...

    @property
    def previews(self) -> PreviewRepository: ...

    @property
    def journal(self) -> CommitJournal: ...

    async def __aenter__(self) -> Self:
        """Start the transaction.

        Raises:
            DatabaseUnavailable: no connection could be made.
        """
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed and release the connection."""
        ...

    async def commit(self) -> None:
        """Make every change of the transaction durable and visible.

        Raises:
            DatabaseUnavailable: the commit failed; nothing was stored.
        """
        ...

    async def rollback(self) -> None:
        """Discard every change since the last commit."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
"""Makes a fresh, not yet entered :class:`UnitOfWork`."""
