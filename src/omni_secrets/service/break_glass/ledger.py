"""``OverrideLedger``: the database side of break-glass, one unit of work per method.

The database is the truth about which overrides exist. Each change here commits together with
what must agree with it: the type's break-glass window in the metadata and, when asked for, the
change's audit row (appended last, inside the same transaction, so a failed append rolls the
change back: the fail-closed rows of activate, expire and an audited revoke).
"""

from __future__ import annotations

from datetime import UTC, datetime

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.models import BreakGlassOverrideRecord, NewAccessEvent, OverrideEndReason
from omni_secrets.domain.repositories import UnitOfWork, UnitOfWorkFactory
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.break_glass.audit_rows import end_row

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OverrideLedger:
    """Reads and changes the stored overrides.

    Args:
        uow_factory: database units of work.
        auditor: appends the audit rows inside them (``append_in``).
    """

    def __init__(self, uow_factory: UnitOfWorkFactory, auditor: Auditor) -> None:
        self._uow_factory = uow_factory
        self._auditor = auditor

    async def active(self, now: datetime) -> list[BreakGlassOverrideRecord]:
        """The overrides not ended and inside their window at ``now``.

        Raises:
            DatabaseUnavailable: the database could not be read.
        """
        async with self._uow_factory() as uow:
            return list(await uow.overrides.list_active(now))

    async def not_ended(self) -> list[BreakGlassOverrideRecord]:
        """Every override not ended yet, past its expiry or not.

        Raises:
            DatabaseUnavailable: the database could not be read.
        """
        # Not ended and expiring after the epoch: every override not ended yet.
        return await self.active(_EPOCH)

    async def store_activation(self, record: BreakGlassOverrideRecord, row: NewAccessEvent) -> None:
        """Store ``record`` (burning its nonce), open the type's window and append ``row``.

        Raises:
            ReplayDetected: the nonce was used before (nothing stored).
            AuditUnavailable, DatabaseUnavailable: nothing stored.
        """
        async with self._uow_factory() as uow:
            await uow.overrides.add(record)
            await uow.metadata.set_break_glass(
                record.secret_type.value, record.activated_at, record.expires_at
            )
            # Appended last: the append serialises every audit writer until the commit.
            await self._auditor.append_in(uow, row)
            await uow.commit()

    async def end(
        self,
        override_id: str,
        end_reason: OverrideEndReason,
        actor: str,
        correlation_id: str | None,
        now: datetime,
        *,
        only_if_active: bool,
        audit: bool,
    ) -> BreakGlassOverrideRecord | None:
        """One transaction: end the override (``only_if_active``: unless already expired), keep
        the metadata window in step, and append its audit row when ``audit``.

        Returns:
            The record ended, or None when it is unknown, already ended or (``only_if_active``)
            past its expiry, or another replica ended it concurrently.

        Raises:
            AuditUnavailable: the audit row could not be written (nothing changed).
            DatabaseUnavailable: the database cannot be reached (nothing changed).
        """
        async with self._uow_factory() as uow:
            record = await uow.overrides.get(override_id)
            if record is None or record.ended_at is not None:
                return None
            if only_if_active and not record.is_active(now):
                return None
            if not await uow.overrides.end(override_id, now, end_reason):
                return None  # ended concurrently by another replica
            await _sync_metadata(uow, record.secret_type, now)
            if audit:
                await self._auditor.append_in(
                    uow, end_row(record, end_reason, actor, correlation_id, now)
                )
            await uow.commit()
        return record


async def _sync_metadata(uow: UnitOfWork, secret_type: SecretType, now: datetime) -> None:
    """Point the type's metadata window at its newest override still active, or clear it."""
    remaining = [r for r in await uow.overrides.list_active(now) if r.secret_type == secret_type]
    if remaining:
        newest = max(remaining, key=lambda r: (r.activated_at, r.override_id))
        await uow.metadata.set_break_glass(
            secret_type.value, newest.activated_at, newest.expires_at
        )
    else:
        await uow.metadata.set_break_glass(secret_type.value, None, None)
