"""Per-sink alert delivery: `alert_sinks` (where a sink's outbox starts) and
`alert_deliveries` (one row per alert published to such a sink, e.g. MQTT).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Written to match storage/models.py. The Redis stream keeps `alerts.delivered_at`; existing
alerts get no delivery rows (a sink's outbox starts at the newest alert when first enabled).
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
        "alert_sinks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("since_alert_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_alert_sinks"),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("sink", sa.String(length=32), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"],
                                name="fk_alert_deliveries_alert_id_alerts", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alert_id", "sink", name="pk_alert_deliveries"),
    )


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("alert_sinks")
