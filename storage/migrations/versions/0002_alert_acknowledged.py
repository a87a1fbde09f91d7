"""Alerts can be acknowledged: a nullable `alerts.acknowledged_at` (epoch seconds).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Written to match storage/models.py. Existing alerts stay unacknowledged (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("acknowledged_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("acknowledged_at")
