"""rotation previews: the candidate versions and checks of each preview, and its status.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "omni_rotation_previews",
        sa.Column("preview_id", sa.String(64), nullable=False),
        sa.Column("rotation_group", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("preview_id", name=op.f("pk_omni_rotation_previews")),
        sa.CheckConstraint(
            "status IN ('open', 'committed', 'cancelled')",
            name=op.f("ck_omni_rotation_previews_status_known"),
        ),
    )
    op.create_index(
        op.f("ix_omni_rotation_previews_rotation_group"),
        "omni_rotation_previews",
        ["rotation_group"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_omni_rotation_previews_rotation_group"), "omni_rotation_previews")
    op.drop_table("omni_rotation_previews")
