"""The schema: SQLAlchemy Core tables, the single source for the repositories and autogenerate.

Naming rules: plural table names prefixed ``omni_`` (``omni_secret_metadata`` keeps the mass noun
the contract names), ``_at`` for timestamps, constraint names from :data:`NAMING_CONVENTION` so
Alembic sees stable names. Timestamps are ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL; SQLite has
no zone type, so :class:`UtcDateTime` stores UTC and hands back aware UTC datetimes everywhere.

The migrations under ``migrations/versions`` create exactly these tables (a guard test compares
them); they spell the DDL out instead of importing this module, so old revisions never change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend; naive values are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        # SQLite stores the wall-clock text only; keep it UTC and fixed-width so text
        # comparisons in SQL (lock expiry, active overrides) order like the instants.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    # SQLAlchemy's TypeDecorator signature: reading back is the same on every dialect.
    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _id_column(name: str, length: int = 64) -> Column[Any]:
    return Column(name, String(length), primary_key=True)


secret_metadata = Table(
    "omni_secret_metadata",
    metadata,
    _id_column("secret_type"),
    Column("gsm_secret_id", String(255), nullable=False),
    Column("gsm_project_id", String(255), nullable=False),
    Column("required", Boolean, nullable=False),
    Column("rotation_group", String(64), nullable=False, index=True),
    Column("active_version", String(32), nullable=True),
    Column("last_rotated_at", UtcDateTime, nullable=False),
    Column("rotation_due_at", UtcDateTime, nullable=False),
    Column("preview_id", String(64), nullable=True),
    Column("preview_expires_at", UtcDateTime, nullable=True),
    Column("break_glass_activated_at", UtcDateTime, nullable=True),
    Column("break_glass_expires_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # MAC of (secret_type, active_version, last_rotated_at, rotation_due_at) under the integrity
    # key, "<keyId>:<hex>" (domain/integrity.py); NULL when written without a key.
    Column("pin_mac", String(96), nullable=True),
    CheckConstraint(
        "(preview_id IS NULL) = (preview_expires_at IS NULL)", name="preview_lock_pair"
    ),
    CheckConstraint(
        "(break_glass_activated_at IS NULL) = (break_glass_expires_at IS NULL)",
        name="break_glass_pair",
    ),
)

AUDIT_RESULTS_SQL = "result IN ('success', 'failure', 'denied', 'conflict')"

secret_access_events = Table(
    "omni_secret_access_events",
    metadata,
    # Ids are max(id)+1 under the append lock, never a sequence: a rollback leaves no gap.
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("secret_type", String(64), nullable=True),
    Column("action", String(64), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("result", String(16), nullable=False),
    Column("duration_ms", Integer, nullable=True),
    Column("correlation_id", String(128), nullable=True),
    # JSON (not JSONB) keeps the text as written; the chain hashes a canonical rendering anyway.
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
    # The integrity key of a keyed (HMAC) row; NULL for rows written before the key existed.
    Column("key_id", String(64), nullable=True),
    CheckConstraint(AUDIT_RESULTS_SQL, name="result_known"),
    CheckConstraint("id > 0", name="id_positive"),
    # The freshness checks (contract section 17) read the newest rows of a few actions.
    Index("ix_omni_secret_access_events_action", "action", "id"),
)

break_glass_overrides = Table(
    "omni_break_glass_overrides",
    metadata,
    _id_column("override_id"),
    Column("secret_type", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column(
        "nonce",
        String(128),
        ForeignKey("omni_break_glass_nonces.nonce"),
        nullable=False,
        unique=True,
    ),
    Column("actor", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("ticket", String(255), nullable=True),
    Column("activated_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("end_reason", String(16), nullable=True),
    # MAC over domain.integrity.OVERRIDE_FIELDS under the integrity key; NULL without a key.
    Column("mac", String(96), nullable=True),
    # Migration 0005 also adds the dialect-specific CHECK "window_max_1800s" (the window is in
    # (0, 1800] s); autogenerate does not compare CHECK constraints, so it is not repeated here.
    CheckConstraint("end_reason IN ('revoked', 'expired')", name="end_reason_known"),
    CheckConstraint("(ended_at IS NULL) = (end_reason IS NULL)", name="ended_pair"),
    Index("ix_omni_break_glass_overrides_active", "ended_at", "expires_at"),
)

break_glass_nonces = Table(
    "omni_break_glass_nonces",
    metadata,
    # Kept forever: a nonce once used can never activate an override again.
    Column("nonce", String(128), primary_key=True),
    Column("used_at", UtcDateTime, nullable=False),
)

rotation_previews = Table(
    "omni_rotation_previews",
    metadata,
    _id_column("preview_id"),
    Column("rotation_group", String(64), nullable=False, index=True),
    Column("actor", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("ready", Boolean, nullable=False),
    Column("members", JSON, nullable=False),
    Column("checks", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    # MAC over domain.integrity.PREVIEW_FIELDS under the integrity key; NULL without a key.
    Column("mac", String(96), nullable=True),
    CheckConstraint("status IN ('open', 'committed', 'cancelled')", name="status_known"),
)

# --- shared by the replicas (contract section 12) ---------------------------------------------

replicas = Table(
    "omni_replicas",
    metadata,
    _id_column("id"),  # contract section 12: id, host, started, last seen
    Column("host", String(255), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False, index=True),
)

refresh_requests = Table(
    "omni_refresh_requests",
    metadata,
    _id_column("request_id"),
    Column("targeted", Boolean, nullable=False),
    Column("secret_types", JSON, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("queued_at", UtcDateTime, nullable=False, index=True),
    Column("origin_replica_id", String(64), nullable=False),
)

refresh_results = Table(
    "omni_refresh_results",
    metadata,
    Column(
        "request_id",
        String(64),
        ForeignKey("omni_refresh_requests.request_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("replica_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("results", JSON, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    CheckConstraint(
        "status IN ('queued', 'running', 'succeeded', 'failed', 'partial')", name="status_known"
    ),
)

secret_signals = Table(
    "omni_secret_signals",
    metadata,
    _id_column("secret_type"),
    Column("revoked_version", String(32), nullable=True),
    Column("revoked_code", String(32), nullable=True),
    Column("revoked_message", Text, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("confirmed", Boolean, nullable=False),
    Column("candidate_version", String(32), nullable=True),
    Column("candidate_at", UtcDateTime, nullable=True),
)

# --- the commit journal (contract section 15) ---------------------------------------------------

commit_journal = Table(
    "omni_commit_journal",
    metadata,
    _id_column("journal_id"),
    Column("kind", String(16), nullable=False),
    Column("rotation_group", String(64), nullable=False),
    Column("lock_id", String(64), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("owner_replica_id", String(64), nullable=False),
    Column("owner_host", String(255), nullable=False),
    Column("owner_pid", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    # Canonical JSON text (domain/rotation/journal.py), exactly what the MAC covers.
    Column("members", Text, nullable=False),
    Column("dates", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_at", UtcDateTime, nullable=True),
    # MAC over domain.rotation.journal.JOURNAL_FIELDS under the integrity key; NULL without one.
    Column("mac", String(96), nullable=True),
    CheckConstraint("kind IN ('commit', 'rollback')", name="kind_known"),
    CheckConstraint("status IN ('open', 'closed', 'aborted', 'recovered')", name="status_known"),
    CheckConstraint("(status = 'open') = (closed_at IS NULL)", name="closed_pair"),
)
