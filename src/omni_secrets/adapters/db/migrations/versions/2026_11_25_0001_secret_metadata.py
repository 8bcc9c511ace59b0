"""secret metadata: one row per catalog type (versions, rotation dates, rotation lock).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "omni_secret_metadata",
        sa.Column("secret_type", sa.String(64), nullable=False),
        sa.Column("gsm_secret_id", sa.String(255), nullable=False),
        sa.Column("gsm_project_id", sa.String(255), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("rotation_group", sa.String(64), nullable=False),
        sa.Column("active_version", sa.String(32), nullable=True),
        sa.Column("last_rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotation_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("preview_id", sa.String(64), nullable=True),
        sa.Column("preview_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("break_glass_activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("break_glass_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("secret_type", name=op.f("pk_omni_secret_metadata")),
        sa.CheckConstraint(
            "(preview_id IS NULL) = (preview_expires_at IS NULL)",
            name=op.f("ck_omni_secret_metadata_preview_lock_pair"),
        ),
        sa.CheckConstraint(
            "(break_glass_activated_at IS NULL) = (break_glass_expires_at IS NULL)",
            name=op.f("ck_omni_secret_metadata_break_glass_pair"),
        ),
    )
    op.create_index(
        op.f("ix_omni_secret_metadata_rotation_group"),
        "omni_secret_metadata",
        ["rotation_group"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_omni_secret_metadata_rotation_group"), "omni_secret_metadata")
    op.drop_table("omni_secret_metadata")
