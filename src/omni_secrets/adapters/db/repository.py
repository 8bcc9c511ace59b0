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

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from omni_secrets.adapters.db import freshness
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
    PREVIEW_FIELDS,
    PREVIEW_PURPOSE,
    IntegrityKeyring,
    IntegrityStatus,
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

    def _metadata(
        self, row: Row[Any], history: Mapping[str, freshness.PinSince]
    ) -> OmniSecretMetadata:
        fields = dict(row._mapping)
        mac = fields.pop("pin_mac", None)
        status = verify_or_unchecked(self._keyring, PIN_PURPOSE, PIN_FIELDS, fields, mac)
        since = history.get(fields["secret_type"])
        if (
            status is not IntegrityStatus.UNCHECKED
            and since is not None
            and since.supersedes(fields["active_version"], fields["last_rotated_at"])
        ):
            # A pin older than the newest rotation audited for its type (contract section 17).
            status = IntegrityStatus.REPLAYED
        return OmniSecretMetadata.model_validate({**fields, "pin_integrity": status})

    async def _history(self, rows: Sequence[Row[Any]]) -> Mapping[str, freshness.PinSince]:
        if self._keyring is None or not rows:
            return {}
        return await freshness.newest_pins(self._conn, [row.secret_type for row in rows])

    async def list_all(self) -> Sequence[OmniSecretMetadata]:
        with translate_db_errors(doing="metadata read"):
            rows = (
                await self._conn.execute(
                    select(secret_metadata).order_by(secret_metadata.c.secret_type)
                )
            ).all()
            history = await self._history(rows)
        return [self._metadata(row, history) for row in rows]

    async def get(self, secret_type: str) -> OmniSecretMetadata | None:
        with translate_db_errors(doing="metadata read"):
            row = (
                await self._conn.execute(
                    select(secret_metadata).where(secret_metadata.c.secret_type == secret_type)
                )
            ).first()
            history = await self._history([row] if row else [])
        return self._metadata(row, history) if row else None

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

    async def resign_stale(self) -> Sequence[str]:
        if self._keyring is None:
            return ()
        signed: list[str] = []
        with translate_db_errors(doing="metadata update"):
            rows = await self._pins_for_update()
            stale = {
                m.secret_type
                for m in await self.list_all()
                if m.pin_integrity is IntegrityStatus.STALE_KEY
            }
            for row in rows:
                if row.secret_type not in stale:
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

    def _override(self, row: Row[Any], ended: Iterable[str] = ()) -> BreakGlassOverrideRecord:
        fields = dict(row._mapping)
        mac = fields.pop("mac", None)
        status = verify_or_unchecked(self._keyring, OVERRIDE_PURPOSE, OVERRIDE_FIELDS, fields, mac)
        if status is not IntegrityStatus.UNCHECKED and fields["override_id"] in ended:
            # Its revoke or expiry is in the audit chain: a row saying otherwise was restored
            # from before it (contract section 17).
            status = IntegrityStatus.REPLAYED
        return BreakGlassOverrideRecord.model_validate({**fields, "integrity": status})

    async def _ended(self, rows: Sequence[Row[Any]]) -> set[str]:
        open_rows = [row for row in rows if row.ended_at is None]
        if self._keyring is None or not open_rows:
            return set()
        since = min(row.activated_at for row in open_rows) - _CLOCK_SLACK
        return await freshness.ended_overrides(
            self._conn, [row.override_id for row in open_rows], since
        )

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
            ended = await self._ended([row] if row else [])
        return self._override(row, ended) if row else None

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
            rows = result.all()
            ended = await self._ended(rows)
        return [self._override(row, ended) for row in rows]

    async def resign_stale(self, now: datetime) -> Sequence[str]:
        if self._keyring is None:
            return ()
        signed: list[str] = []
        with translate_db_errors(doing="break-glass re-sign"):
            for record in await self.list_active(now):
                if record.integrity is not IntegrityStatus.STALE_KEY:
                    continue
                values = record.model_dump(exclude={"integrity"})
                await self._conn.execute(
                    update(break_glass_overrides)
                    .where(break_glass_overrides.c.override_id == record.override_id)
                    .values(mac=self._mac(values))
                )
                signed.append(record.override_id)
        return signed

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

    With an integrity key every write stores ``mac`` over :data:`PREVIEW_FIELDS` (members with
    their candidate digests, checks, ``ready``, expiry, status) and every read reports in the
    record's ``integrity`` whether it verified under the signing key and is not closed by a
    later audited commit or cancel (contract section 17).

    Args:
        connection: the unit of work's connection.
        keyring: signs and checks preview rows; None writes no MAC and checks nothing.
    """

    def __init__(
        self, connection: AsyncConnection, keyring: IntegrityKeyring | None = None
    ) -> None:
        self._conn = connection
        self._keyring = keyring

    def _mac(self, row: Mapping[str, Any]) -> str | None:
        return sign_or_none(self._keyring, PREVIEW_PURPOSE, PREVIEW_FIELDS, _preview_fields(row))

    async def add(self, record: RotationPreviewRecord) -> None:
        row = _preview_row(record)
        row["mac"] = self._mac(row)
        with translate_db_errors(doing="rotation preview write"):
            fresh = await _insert_ignoring_conflict(
                self._conn, rotation_previews, row, "preview_id"
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
            if row is None:
                return None
            fields = dict(row._mapping)
            mac = fields.pop("mac", None)
            status = verify_or_unchecked(
                self._keyring, PREVIEW_PURPOSE, PREVIEW_FIELDS, _preview_fields(fields), mac
            )
            if status is IntegrityStatus.VERIFIED and fields["status"] == "open":
                since = fields["created_at"] - _CLOCK_SLACK
                if await freshness.closed_previews(self._conn, [preview_id], since):
                    status = IntegrityStatus.REPLAYED
        return RotationPreviewRecord.model_validate({**fields, "integrity": status})

    async def resign_stale(self, now: datetime) -> Sequence[str]:
        if self._keyring is None:
            return ()
        signed: list[str] = []
        with translate_db_errors(doing="rotation preview re-sign"):
            ids = (
                await self._conn.execute(
                    select(rotation_previews.c.preview_id).where(
                        rotation_previews.c.status == "open", rotation_previews.c.expires_at > now
                    )
                )
            ).scalars()
            for preview_id in list(ids):
                record = await self.get(preview_id)
                if record is None or record.integrity is not IntegrityStatus.STALE_KEY:
                    continue
                row = _preview_row(record)
                await self._conn.execute(
                    update(rotation_previews)
                    .where(rotation_previews.c.preview_id == preview_id)
                    .values(mac=self._mac(row))
                )
                signed.append(preview_id)
        return signed

    async def set_status(self, preview_id: str, status: PreviewStatus) -> bool:
        with translate_db_errors(doing="rotation preview write"):
            row = (
                await self._conn.execute(
                    select(rotation_previews)
                    .where(rotation_previews.c.preview_id == preview_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return False
            fields = dict(row._mapping)
            old_mac = fields.pop("mac", None)
            was_ok = verify_or_unchecked(
                self._keyring, PREVIEW_PURPOSE, PREVIEW_FIELDS, _preview_fields(fields), old_mac
            ).servable
            # A row whose MAC was already bad stays bad: closing it must not launder it.
            mac = self._mac({**fields, "status": status}) if was_ok else old_mac
            result = await self._conn.execute(
                update(rotation_previews)
                .where(rotation_previews.c.preview_id == preview_id)
                .values(status=status, mac=mac)
            )
        return result.rowcount == 1


_CLOCK_SLACK = timedelta(hours=1)
"""How far before a row's own timestamp its superseding audit events are looked for (clocks of
different replicas disagree a little; these reads are small)."""


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _preview_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A preview row's MAC'd fields, members and checks as canonical JSON."""
    fields = {name: row.get(name) for name in PREVIEW_FIELDS}
    fields["ready"] = bool(fields["ready"])
    fields["members"] = _canonical_json(list(row.get("members") or []))
    fields["checks"] = _canonical_json(list(row.get("checks") or []))
    return fields


def _preview_row(record: RotationPreviewRecord) -> dict[str, Any]:
    row = record.model_dump(exclude={"integrity"})
    # members/checks are JSON columns: store their plain JSON form (enums as strings).
    row["members"] = [member.model_dump(mode="json") for member in record.members]
    row["checks"] = [check.model_dump(mode="json") for check in record.checks]
    return row
