"""commit journal: a rotation group's alias moves, written before the first one (contract 15).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "omni_commit_journal",
        sa.Column("journal_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rotation_group", sa.String(64), nullable=False),
        sa.Column("lock_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("owner_replica_id", sa.String(64), nullable=False),
        sa.Column("owner_host", sa.String(255), nullable=False),
        sa.Column("owner_pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("members", sa.Text(), nullable=False),
        sa.Column("dates", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mac", sa.String(96), nullable=True),
        sa.PrimaryKeyConstraint("journal_id", name=op.f("pk_omni_commit_journal")),
        sa.CheckConstraint(
            "kind IN ('commit', 'rollback')", name=op.f("ck_omni_commit_journal_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'closed', 'aborted', 'recovered')",
            name=op.f("ck_omni_commit_journal_status_known"),
        ),
        sa.CheckConstraint(
            "(status = 'open') = (closed_at IS NULL)",
            name=op.f("ck_omni_commit_journal_closed_pair"),
        ),
    )
    op.create_index(op.f("ix_omni_commit_journal_status"), "omni_commit_journal", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_omni_commit_journal_status"), "omni_commit_journal")
    op.drop_table("omni_commit_journal")
