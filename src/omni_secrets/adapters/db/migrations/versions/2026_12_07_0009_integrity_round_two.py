"""integrity, round two: MAC'd rotation previews, and the audit index freshness checks read.

- ``omni_rotation_previews.mac``: a MAC under the integrity key (``"<keyId>:<hex>"``) over the
  preview's members (candidate digests included), checks, ``ready``, expiry and status
  (contract section 17). Previews open at upgrade have none: with a key configured they cannot
  be committed (make a new preview; an open one lapses within 15 minutes anyway).
- ``ix_omni_secret_access_events_action``: ``(action, id)``. The freshness checks read the
  newest pin-changing and override-ending audit rows where state rows are loaded (start-up,
  reconcile); the index keeps that a short range scan however long the audit trail grows.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

AUDIT = "omni_secret_access_events"
PREVIEWS = "omni_rotation_previews"


def upgrade() -> None:
    op.add_column(PREVIEWS, sa.Column("mac", sa.String(96), nullable=True))
    op.create_index(op.f("ix_omni_secret_access_events_action"), AUDIT, ["action", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_omni_secret_access_events_action"), table_name=AUDIT)
    with op.batch_alter_table(PREVIEWS) as batch:
        batch.drop_column("mac")
