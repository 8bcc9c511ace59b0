"""SQL implementations of the metadata, override and preview ports (SQLAlchemy Core).

Each repository works on the unit of work's :class:`AsyncConnection` and never commits. Where a
conflict is an expected outcome (a seed racing a seed, a replayed nonce, a duplicate preview id)
the statement is an ``INSERT … ON CONFLICT DO NOTHING`` and the row count decides: a failed
statement would abort the whole PostgreSQL transaction, and the caller still wants to write its
audit row in it. The audit log lives in ``audit.py``.

Integrity (contract section 9): with an integrity key, every write of a metadata pin
(``active_version``, ``last_rotated_at``, ``rotation_due_at``) stores ``pin_mac`` and every
override write stores ``mac``; every read recomputes them and reports the outcome in the
record's ``pin_integrity``/``integrity`` (the service refuses what is not servable). The MAC
columns never leave this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from omni_secrets.adapters.db.errors import translate_db_errors
from omni_secrets.adapters.db.tables import (
    break_glass_nonces,
    break_glass_overrides,
    rotation_previews,
    secret_metadata,
)
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import ReplayDetected
from omni_secrets.domain.integrity import (
    OVERRIDE_FIELDS,
    OVERRIDE_PURPOSE,
    PIN_FIELDS,
    PIN_PURPOSE,
    IntegrityKeyring,
    sign_or_none,
    verify_or_unchecked,
)
from omni_secrets.domain.models import (
    BreakGlassOverrideRecord,
    OmniSecretMetadata,
    OverrideEndReason,
    PreviewStatus,
    RotationPreviewRecord,
)
from omni_secrets.domain.repositories import GroupLock


async def _insert_ignoring_conflict(
    conn: AsyncConnection, table: Table, values: Mapping[str, Any], key: str
) -> bool:
    """Insert one row unless ``key`` already exists; True when inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[key])
        # RETURNING, not rowcount: SQLAlchemy guarantees rowcount for UPDATE/DELETE only.
        .returning(table.c[key])
    )
    result = await conn.execute(statement)
    return result.first() is not None


class SqlMetadataRepository:
    """The :class:`~omni_secrets.domain.repositories.MetadataRepository` port.

    Args:
        connection: the unit of work's connection.
        clock: stamps ``updated_at``.
        keyring: signs and checks pins (``pin_mac``); None writes no MAC and checks nothing.
    """

    def __init__(
        self, connection: AsyncConnection, clock: Clock, keyring: IntegrityKeyring | None = None
    ) -> None:
        self._conn = connection
        self._clock = clock
        self._keyring = keyring

    def _pin_mac(self, fields: Mapping[str, Any]) -> str | None:
        return sign_or_none(self._keyring, PIN_PURPOSE, PIN_FIELDS, fields)

    def _metadata(self, row: Row[Any]) -> OmniSecretMetadata:
        fields = dict(row._mapping)
        mac = fields.pop("pin_mac", None)
        status = verify_or_unchecked(self._keyring, PIN_PURPOSE, PIN_FIELDS, fields, mac)
        return OmniSecretMetadata.model_validate({**fields, "pin_integrity": status})

    async def list_all(self) -> Sequence[OmniSecretMetadata]:
        with translate_db_errors(doing="metadata read"):
            result = await self._conn.execute(
                select(secret_metadata).order_by(secret_metadata.c.secret_type)
            )
        return [self._metadata(row) for row in result]

    async def get(self, secret_type: str) -> OmniSecretMetadata | None:
        with translate_db_errors(doing="metadata read"):
            row = (
                await self._conn.execute(
                    select(secret_metadata).where(secret_metadata.c.secret_type == secret_type)
                )
            ).first()
        return self._metadata(row) if row else None

    async def insert_missing(self, rows: Iterable[OmniSecretMetadata]) -> int:
        inserted = 0
        with translate_db_errors(doing="metadata seed"):
            for row in rows:
                values = row.model_dump(exclude={"pin_integrity"})
                values["pin_mac"] = self._pin_mac(values)
                if await _insert_ignoring_conflict(
                    self._conn, secret_metadata, values, "secret_type"
                ):
                    inserted += 1
        return inserted

    async def _pins_for_update(self, *conditions: Any) -> Sequence[Any]:
        # FOR UPDATE: the MAC is computed from the row as read, so nobody may change the
        # covered fields in between (SQLite: the transaction already holds the write lock).
        return (
            await self._conn.execute(
                select(
                    secret_metadata.c.secret_type,
                    secret_metadata.c.active_version,
                    secret_metadata.c.last_rotated_at,
                    secret_metadata.c.rotation_due_at,
                )
                .where(*conditions)
                .order_by(secret_metadata.c.secret_type)
                .with_for_update()
            )
        ).all()

    async def pin_active_version(
        self,
        secret_type: str,
        version: str,
        *,
        only_if_unpinned: bool,
        rotation_dates: tuple[datetime, datetime] | None = None,
    ) -> bool:
        with translate_db_errors(doing="metadata update"):
            rows = await self._pins_for_update(secret_metadata.c.secret_type == secret_type)
            if not rows or (only_if_unpinned and rows[0].active_version is not None):
                return False
            fields = {**rows[0]._mapping, "active_version": version}
            values: dict[str, Any] = {"active_version": version, "updated_at": self._clock.now()}
            if rotation_dates is not None:
                values["last_rotated_at"], values["rotation_due_at"] = rotation_dates
                fields["last_rotated_at"], fields["rotation_due_at"] = rotation_dates
            result = await self._conn.execute(
                update(secret_metadata)
                .where(secret_metadata.c.secret_type == secret_type)
                .values(**values, pin_mac=self._pin_mac(fields))
            )
        return result.rowcount == 1

    async def sign_pins(self) -> Sequence[str]:
        """Re-sign every row's pin as it is now (the operator vouches for it); see the CLI.

        Returns:
            The secret types whose MAC was missing or wrong and is now written.

        Raises:
            RuntimeError: no integrity key is configured.
        """
        if self._keyring is None:
            raise RuntimeError("signing pins needs an integrity key")
        signed: list[str] = []
        with translate_db_errors(doing="metadata update"):
            for row in await self._pins_for_update():
                current = await self.get(row.secret_type)
                if current is None or current.pin_integrity.servable:
                    continue
                await self._conn.execute(
                    update(secret_metadata)
                    .where(secret_metadata.c.secret_type == row.secret_type)
                    .values(pin_mac=self._pin_mac(dict(row._mapping)), updated_at=self._clock.now())
                )
                signed.append(row.secret_type)
        return signed

    async def record_rotation(
        self,
        group: str,
        active_versions: Mapping[str, str],
        rotated_at: datetime,
        due_at: datetime,
    ) -> None:
        now = self._clock.now()
        in_group = secret_metadata.c.rotation_group == group
        with translate_db_errors(doing="rotation commit"):
            rows = await self._pins_for_update(in_group)
            known = {row.secret_type for row in rows}
            for secret_type in active_versions:
                if secret_type not in known:
                    raise ValueError(f"secret type {secret_type!r} has no row in group {group!r}")
            for row in rows:
                version = active_versions.get(row.secret_type, row.active_version)
                fields = {
                    "secret_type": row.secret_type,
                    "active_version": version,
                    "last_rotated_at": rotated_at,
                    "rotation_due_at": due_at,
                }
                await self._conn.execute(
                    update(secret_metadata)
                    .where(secret_metadata.c.secret_type == row.secret_type)
                    .values(
                        active_version=version,
                        last_rotated_at=rotated_at,
                        rotation_due_at=due_at,
                        pin_mac=self._pin_mac(fields),
                        preview_id=None,
                        preview_expires_at=None,
                        updated_at=now,
                    )
                )

    async def try_lock_group(
        self, group: str, preview_id: str, expires_at: datetime, now: datetime
    ) -> GroupLock:
        in_group = secret_metadata.c.rotation_group == group
        with translate_db_errors(doing="rotation lock"):
            # FOR UPDATE (PostgreSQL) locks every row of the group in one fixed order, so a
            # concurrent attempt waits here and then reads the winner's committed lock; SQLite
            # ignores it and relies on the write lock every transaction already holds.
            rows = (
                await self._conn.execute(
                    select(
                        secret_metadata.c.preview_id,
                        secret_metadata.c.preview_expires_at,
                    )
                    .where(in_group)
                    .order_by(secret_metadata.c.secret_type)
                    .with_for_update()
                )
            ).all()
            if not rows:
                return GroupLock(won=False, preview_id=None, expires_at=None)
            for row in rows:
                held = row.preview_id is not None and row.preview_expires_at > now
                if held and row.preview_id != preview_id:
                    return GroupLock(
                        won=False, preview_id=row.preview_id, expires_at=row.preview_expires_at
                    )
            await self._conn.execute(
                update(secret_metadata)
                .where(in_group)
                .values(preview_id=preview_id, preview_expires_at=expires_at, updated_at=now)
            )
        return GroupLock(won=True, preview_id=preview_id, expires_at=expires_at)

    async def release_group(self, group: str, preview_id: str) -> bool:
        with translate_db_errors(doing="rotation lock release"):
            result = await self._conn.execute(
                update(secret_metadata)
                .where(
                    secret_metadata.c.rotation_group == group,
                    secret_metadata.c.preview_id == preview_id,
                )
                .values(preview_id=None, preview_expires_at=None, updated_at=self._clock.now())
            )
        return result.rowcount > 0

    async def set_break_glass(
        self, secret_type: str, activated_at: datetime | None, expires_at: datetime | None
    ) -> bool:
        if (activated_at is None) != (expires_at is None):
            raise ValueError("activated_at and expires_at are set or cleared together")
        with translate_db_errors(doing="metadata update"):
            result = await self._conn.execute(
                update(secret_metadata)
                .where(secret_metadata.c.secret_type == secret_type)
                .values(
                    break_glass_activated_at=activated_at,
                    break_glass_expires_at=expires_at,
                    updated_at=self._clock.now(),
                )
            )
        return result.rowcount == 1


class SqlOverrideRepository:
    """The :class:`~omni_secrets.domain.repositories.OverrideRepository` port.

    Args:
        connection: the unit of work's connection.
        keyring: signs and checks override rows (``mac``); None writes no MAC, checks nothing.
    """

    def __init__(
        self, connection: AsyncConnection, keyring: IntegrityKeyring | None = None
    ) -> None:
        self._conn = connection
        self._keyring = keyring

    def _mac(self, fields: Mapping[str, Any]) -> str | None:
        return sign_or_none(self._keyring, OVERRIDE_PURPOSE, OVERRIDE_FIELDS, fields)

    def _override(self, row: Row[Any]) -> BreakGlassOverrideRecord:
        fields = dict(row._mapping)
        mac = fields.pop("mac", None)
        status = verify_or_unchecked(self._keyring, OVERRIDE_PURPOSE, OVERRIDE_FIELDS, fields, mac)
        return BreakGlassOverrideRecord.model_validate({**fields, "integrity": status})

    async def add(self, record: BreakGlassOverrideRecord) -> None:
        with translate_db_errors(doing="break-glass activation"):
            fresh = await _insert_ignoring_conflict(
                self._conn,
                break_glass_nonces,
                {"nonce": record.nonce, "used_at": record.activated_at},
                "nonce",
            )
            if not fresh:
                raise ReplayDetected("the break-glass payload's nonce was used before")
            values = record.model_dump(exclude={"integrity"})
            values["mac"] = self._mac(values)
            await self._conn.execute(break_glass_overrides.insert().values(**values))

    async def get(self, override_id: str) -> BreakGlassOverrideRecord | None:
        with translate_db_errors(doing="break-glass read"):
            row = (
                await self._conn.execute(
                    select(break_glass_overrides).where(
                        break_glass_overrides.c.override_id == override_id
                    )
                )
            ).first()
        return self._override(row) if row else None

    async def list_active(self, now: datetime) -> Sequence[BreakGlassOverrideRecord]:
        with translate_db_errors(doing="break-glass read"):
            result = await self._conn.execute(
                select(break_glass_overrides)
                .where(
                    break_glass_overrides.c.ended_at.is_(None),
                    break_glass_overrides.c.expires_at > now,
                )
                .order_by(break_glass_overrides.c.activated_at, break_glass_overrides.c.override_id)
            )
        return [self._override(row) for row in result]

    async def end(self, override_id: str, ended_at: datetime, reason: OverrideEndReason) -> bool:
        with translate_db_errors(doing="break-glass end"):
            row = (
                await self._conn.execute(
                    select(break_glass_overrides)
                    .where(
                        break_glass_overrides.c.override_id == override_id,
                        break_glass_overrides.c.ended_at.is_(None),
                    )
                    .with_for_update()
                )
            ).first()
            if row is None:
                return False
            # Re-signed as ended: clearing ended_at later (to revive it) breaks the MAC. A row
            # whose MAC was already bad stays bad (ending it must not launder it).
            fields = {**row._mapping, "ended_at": ended_at, "end_reason": reason}
            was_ok = self._override(row).integrity.servable
            result = await self._conn.execute(
                update(break_glass_overrides)
                .where(
                    break_glass_overrides.c.override_id == override_id,
                    break_glass_overrides.c.ended_at.is_(None),
                )
                .values(
                    ended_at=ended_at,
                    end_reason=reason,
                    mac=self._mac(fields) if was_ok else row.mac,
                )
            )
        return result.rowcount == 1


class SqlPreviewRepository:
    """The :class:`~omni_secrets.domain.repositories.PreviewRepository` port.

    Args:
        connection: the unit of work's connection.
    """

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, record: RotationPreviewRecord) -> None:
        with translate_db_errors(doing="rotation preview write"):
            fresh = await _insert_ignoring_conflict(
                self._conn, rotation_previews, _preview_row(record), "preview_id"
            )
        if not fresh:
            raise ValueError(f"rotation preview {record.preview_id!r} exists")

    async def get(self, preview_id: str) -> RotationPreviewRecord | None:
        with translate_db_errors(doing="rotation preview read"):
            row = (
                await self._conn.execute(
                    select(rotation_previews).where(rotation_previews.c.preview_id == preview_id)
                )
            ).first()
        return RotationPreviewRecord.model_validate(dict(row._mapping)) if row else None

    async def set_status(self, preview_id: str, status: PreviewStatus) -> bool:
        with translate_db_errors(doing="rotation preview write"):
            result = await self._conn.execute(
                update(rotation_previews)
                .where(rotation_previews.c.preview_id == preview_id)
                .values(status=status)
            )
        return result.rowcount == 1


def _preview_row(record: RotationPreviewRecord) -> dict[str, Any]:
    row = record.model_dump()
    # members/checks are JSON columns: store their plain JSON form (enums as strings).
    row["members"] = [member.model_dump(mode="json") for member in record.members]
    row["checks"] = [check.model_dump(mode="json") for check in record.checks]
    return row
