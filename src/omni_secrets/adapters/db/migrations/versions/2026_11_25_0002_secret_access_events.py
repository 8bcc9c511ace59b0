"""secret access events: the hash-chained audit table, append-only at the database.

PostgreSQL: a row trigger refuses UPDATE and DELETE and a statement trigger refuses TRUNCATE
(row triggers do not fire on TRUNCATE); both are ``ENABLE ALWAYS`` so that
``session_replication_role = replica`` does not bypass them. SQLite: BEFORE UPDATE / BEFORE
DELETE triggers that ``RAISE(ABORT, ...)`` (SQLite has no TRUNCATE; DELETE covers it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE = "omni_secret_access_events"

_PG_UP = (
    """
    CREATE FUNCTION omni_refuse_audit_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'omni_secret_access_events is append-only: % refused', TG_OP
            USING HINT = 'audit rows can only be inserted';
    END
    $$
    """,
    f"""
    CREATE TRIGGER omni_secret_access_events_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION omni_refuse_audit_change()
    """,
    f"""
    CREATE TRIGGER omni_secret_access_events_no_truncate
    BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION omni_refuse_audit_change()
    """,
    f"ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER omni_secret_access_events_append_only",
    f"ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER omni_secret_access_events_no_truncate",
)

_SQLITE_UP = (
    f"""
    CREATE TRIGGER omni_secret_access_events_no_update
    BEFORE UPDATE ON {TABLE}
    BEGIN
        SELECT RAISE(ABORT, 'omni_secret_access_events is append-only: UPDATE refused');
    END
    """,
    f"""
    CREATE TRIGGER omni_secret_access_events_no_delete
    BEFORE DELETE ON {TABLE}
    BEGIN
        SELECT RAISE(ABORT, 'omni_secret_access_events is append-only: DELETE refused');
    END
    """,
)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("secret_type", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_omni_secret_access_events")),
        sa.CheckConstraint(
            "result IN ('success', 'failure', 'denied', 'conflict')",
            name=op.f("ck_omni_secret_access_events_result_known"),
        ),
        sa.CheckConstraint("id > 0", name=op.f("ck_omni_secret_access_events_id_positive")),
    )
    statements = _PG_UP if op.get_bind().dialect.name == "postgresql" else _SQLITE_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Dropping the table drops its triggers; the function goes separately.
        op.drop_table(TABLE)
        op.execute("DROP FUNCTION omni_refuse_audit_change()")
    else:
        op.execute("DROP TRIGGER omni_secret_access_events_no_update")
        op.execute("DROP TRIGGER omni_secret_access_events_no_delete")
        op.drop_table(TABLE)
