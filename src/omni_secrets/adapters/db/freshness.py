"""Freshness: is a state row, however valid its MAC, still the newest one? (contract section 17)

A MAC proves that the service wrote a row, not that it is the row the service wrote *last*: a
database writer can restore an older row together with its then-valid MAC (a pin from before a
rotation, an override from before its revoke, an open preview after its commit). The audit
chain is keyed and append-only, so it is the history a row is checked against: a row is
``REPLAYED`` when a later successful audit event supersedes it.

- **Pins.** The newest successful ``rotation_commit``/``rotation_rollback``/``rotation_adopted``
  (GSM's aliases followed) or forward ``rotation_recovered`` (a dead replica's commit finished)
  naming a type says which version and which ``lastRotatedAt`` that type has since; a pin that
  names anything else was restored from before it. A recovery that went back names no
  ``activeVersions``: the pins it left are those of the event before it.
- **Overrides.** A successful ``break_glass_revoke``/``break_glass_expire`` naming the override
  ends it for good, whatever its row says.
- **Previews.** A successful ``rotation_commit``/``rotation_cancel`` naming the preview closes
  it for good.

These reads happen where state rows are loaded (start-up, reconcile, a commit), never on the
hit path; the index ``ix_omni_secret_access_events_action`` (migration 0009) keeps each a short
range scan. Only rows whose MAC already verified are checked, and only with an integrity key.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from omni_secrets.adapters.db.tables import secret_access_events as audit
from omni_secrets.domain.clock import to_rfc3339

PIN_ACTIONS = ("rotation_commit", "rotation_rollback", "rotation_adopted", "rotation_recovered")
OVERRIDE_END_ACTIONS = ("break_glass_revoke", "break_glass_expire")
PREVIEW_CLOSE_ACTIONS = ("rotation_commit", "rotation_cancel")
_SCAN_LIMIT = 1000
"""At most this many of the newest pin-changing rows are read (years of rotations)."""


@dataclass(frozen=True, slots=True)
class PinSince:
    """What the newest pin-changing audit event says a type's pin is.

    Attributes:
        audit_id: the event's id in the chain.
        version: the version it pinned.
        last_rotated_at: the ``lastRotatedAt`` it set (RFC 3339), when it recorded one.
    """

    audit_id: int
    version: str
    last_rotated_at: str | None

    def supersedes(self, version: str | None, last_rotated_at: datetime) -> bool:
        """True when a pin naming ``version``/``last_rotated_at`` is older than this event."""
        if version != self.version:
            return True
        return (
            self.last_rotated_at is not None and to_rfc3339(last_rotated_at) != self.last_rotated_at
        )


def _details(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pins_of(action: str, details: Mapping[str, Any]) -> dict[str, tuple[str, str | None]]:
    versions = details.get("activeVersions")
    if not isinstance(versions, Mapping):
        return {}
    pins: dict[str, tuple[str, str | None]] = {}
    for secret_type, version in versions.items():
        if not isinstance(version, str):
            continue
        rotated: Any = None
        if action in ("rotation_commit", "rotation_adopted"):
            rotated = details.get("lastRotatedAt")
        elif action == "rotation_recovered":
            rotated = _details(_details(details.get("dates")).get(secret_type)).get("lastRotatedAt")
        else:
            restored = _details(details.get("restoredDates")).get(secret_type)
            rotated = _details(restored).get("lastRotatedAt")
        pins[str(secret_type)] = (version, rotated if isinstance(rotated, str) else None)
    return pins


async def newest_pins(conn: AsyncConnection, secret_types: Collection[str]) -> dict[str, PinSince]:
    """The newest pin-changing audit event of each of ``secret_types`` (absent: none yet)."""
    wanted = set(secret_types)
    found: dict[str, PinSince] = {}
    if not wanted:
        return found
    result = await conn.execute(
        select(audit.c.id, audit.c.action, audit.c.details)
        .where(audit.c.action.in_(PIN_ACTIONS), audit.c.result == "success")
        .order_by(audit.c.id.desc())
        .limit(_SCAN_LIMIT)
    )
    for row in result:
        for secret_type, (version, rotated) in _pins_of(row.action, _details(row.details)).items():
            if secret_type in wanted and secret_type not in found:
                found[secret_type] = PinSince(int(row.id), version, rotated)
        if len(found) == len(wanted):
            break
    return found


async def _named_in(
    conn: AsyncConnection,
    actions: tuple[str, ...],
    key: str,
    ids: Collection[str],
    since: datetime,
) -> set[str]:
    if not ids:
        return set()
    result = await conn.execute(
        select(audit.c.details).where(
            audit.c.action.in_(actions),
            audit.c.result == "success",
            audit.c.occurred_at >= since,
        )
    )
    named = {_details(row.details).get(key) for row in result}
    return {i for i in ids if i in named}


async def ended_overrides(
    conn: AsyncConnection, override_ids: Collection[str], since: datetime
) -> set[str]:
    """Those of ``override_ids`` that a revoke or expiry audited since ``since`` ended."""
    return await _named_in(conn, OVERRIDE_END_ACTIONS, "overrideId", override_ids, since)


async def closed_previews(
    conn: AsyncConnection, preview_ids: Collection[str], since: datetime
) -> set[str]:
    """Those of ``preview_ids`` that a commit or cancel audited since ``since`` closed."""
    return await _named_in(conn, PREVIEW_CLOSE_ACTIONS, "previewId", preview_ids, since)
