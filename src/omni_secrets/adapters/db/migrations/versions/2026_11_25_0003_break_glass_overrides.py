"""break-glass overrides and the used-nonce register (kept forever).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "omni_break_glass_nonces",
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_omni_break_glass_nonces")),
    )
    op.create_table(
        "omni_break_glass_overrides",
        sa.Column("override_id", sa.String(64), nullable=False),
        sa.Column("secret_type", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ticket", sa.String(255), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("override_id", name=op.f("pk_omni_break_glass_overrides")),
        sa.ForeignKeyConstraint(
            ["nonce"],
            ["omni_break_glass_nonces.nonce"],
            name=op.f("fk_omni_break_glass_overrides_nonce_omni_break_glass_nonces"),
        ),
        sa.UniqueConstraint("nonce", name=op.f("uq_omni_break_glass_overrides_nonce")),
        sa.CheckConstraint(
            "end_reason IN ('revoked', 'expired')",
            name=op.f("ck_omni_break_glass_overrides_end_reason_known"),
        ),
        sa.CheckConstraint(
            "(ended_at IS NULL) = (end_reason IS NULL)",
            name=op.f("ck_omni_break_glass_overrides_ended_pair"),
        ),
    )
    op.create_index(
        "ix_omni_break_glass_overrides_active",
        "omni_break_glass_overrides",
        ["ended_at", "expires_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_omni_break_glass_overrides_active", "omni_break_glass_overrides")
    op.drop_table("omni_break_glass_overrides")
    op.drop_table("omni_break_glass_nonces")
