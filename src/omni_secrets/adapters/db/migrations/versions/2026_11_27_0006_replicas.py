"""replicas: the replica registry, cluster-wide refresh requests and results, secret signals.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "omni_replicas",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_omni_replicas")),
    )
    op.create_index(op.f("ix_omni_replicas_last_seen_at"), "omni_replicas", ["last_seen_at"])
    op.create_table(
        "omni_refresh_requests",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("targeted", sa.Boolean(), nullable=False),
        sa.Column("secret_types", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin_replica_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_omni_refresh_requests")),
    )
    op.create_index(
        op.f("ix_omni_refresh_requests_queued_at"), "omni_refresh_requests", ["queued_at"]
    )
    op.create_table(
        "omni_refresh_results",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("replica_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("request_id", "replica_id", name=op.f("pk_omni_refresh_results")),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["omni_refresh_requests.request_id"],
            name=op.f("fk_omni_refresh_results_request_id_omni_refresh_requests"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'partial')",
            name=op.f("ck_omni_refresh_results_status_known"),
        ),
    )
    op.create_table(
        "omni_secret_signals",
        sa.Column("secret_type", sa.String(64), nullable=False),
        sa.Column("revoked_version", sa.String(32), nullable=True),
        sa.Column("revoked_code", sa.String(32), nullable=True),
        sa.Column("revoked_message", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("candidate_version", sa.String(32), nullable=True),
        sa.Column("candidate_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("secret_type", name=op.f("pk_omni_secret_signals")),
    )


def downgrade() -> None:
    op.drop_table("omni_secret_signals")
    op.drop_table("omni_refresh_results")
    op.drop_index(op.f("ix_omni_refresh_requests_queued_at"), "omni_refresh_requests")
    op.drop_table("omni_refresh_requests")
    op.drop_index(op.f("ix_omni_replicas_last_seen_at"), "omni_replicas")
    op.drop_table("omni_replicas")
