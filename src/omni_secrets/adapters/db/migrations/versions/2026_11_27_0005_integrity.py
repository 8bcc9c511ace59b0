"""integrity: keyed audit chain, MACs on override rows and metadata pins, override window cap.

- ``omni_secret_access_events.key_id``: the integrity key of a keyed row (HMAC-SHA256 chain).
  Existing rows keep ``key_id`` NULL and their plain SHA-256 hashes: ``audit verify`` reports
  them as unkeyed, and the chain continues from them.
- ``omni_break_glass_overrides.mac`` and ``omni_secret_metadata.pin_mac``: MACs under the
  integrity key (``"<keyId>:<hex>"``). Existing rows have none; with a key configured they are
  not served until re-signed (``omni-secrets db sign-pins``; overrides end within 30 min anyway).
- The database refuses an override whose window is not in (0, 1800] seconds: a CHECK constraint
  on PostgreSQL and on SQLite (the table is rebuilt there, SQLite cannot add a constraint).
  Existing rows that break it make the upgrade fail: they were forged, investigate first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OVERRIDES = "omni_break_glass_overrides"
WINDOW_CHECK = "window_max_1800s"
_WINDOW_SQL = {
    "postgresql": (
        "expires_at > activated_at AND expires_at - activated_at <= interval '1800 seconds'"
    ),
    # SQLite stores UTC text; julianday() parses it. A millisecond of slack for float rounding.
    "sqlite": (
        "expires_at > activated_at "
        "AND (julianday(expires_at) - julianday(activated_at)) * 86400.0 <= 1800.001"
    ),
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("omni_secret_access_events", sa.Column("key_id", sa.String(64), nullable=True))
    op.add_column("omni_secret_metadata", sa.Column("pin_mac", sa.String(96), nullable=True))
    if dialect == "sqlite":
        with op.batch_alter_table(OVERRIDES, recreate="always") as batch:
            batch.add_column(sa.Column("mac", sa.String(96), nullable=True))
            batch.create_check_constraint(WINDOW_CHECK, sa.text(_WINDOW_SQL["sqlite"]))
    else:
        op.add_column(OVERRIDES, sa.Column("mac", sa.String(96), nullable=True))
        op.create_check_constraint(WINDOW_CHECK, OVERRIDES, sa.text(_WINDOW_SQL["postgresql"]))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        with op.batch_alter_table(OVERRIDES, recreate="always") as batch:
            batch.drop_constraint(op.f(f"ck_{OVERRIDES}_{WINDOW_CHECK}"), type_="check")
            batch.drop_column("mac")
        # The audit table's append-only triggers stay; SQLite >= 3.35 drops a plain column.
        op.execute("ALTER TABLE omni_secret_access_events DROP COLUMN key_id")
        op.execute("ALTER TABLE omni_secret_metadata DROP COLUMN pin_mac")
        return
    op.drop_constraint(op.f(f"ck_{OVERRIDES}_{WINDOW_CHECK}"), OVERRIDES, type_="check")
    op.drop_column(OVERRIDES, "mac")
    op.drop_column("omni_secret_metadata", "pin_mac")
    op.drop_column("omni_secret_access_events", "key_id")
