"""Initial schema: cameras, chunks, events, queries, alerts, alert_rules.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written to match storage/models.py (tests compare the migrated schema with the models).
Times are epoch-second floats; JSON columns use the portable JSON type.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _camera_fk(table: str, nullable: bool = False) -> list:
    return [
        sa.Column("camera_id", sa.Integer(), nullable=nullable),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=f"fk_{table}_camera_id_cameras",
            ondelete="CASCADE",
        ),
    ]


def _created() -> sa.Column:
    return sa.Column("created_at", sa.Float(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "cameras",
        _id(),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("url_encrypted", sa.Text(), nullable=False),
        sa.Column("url_masked", sa.Text(), nullable=False),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _created(),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cameras"),
        sa.UniqueConstraint("name", name="uq_cameras_name"),
    )
    op.create_table(
        "alert_rules",
        _id(),
        sa.Column("name", sa.String(length=128), nullable=False),
        *_camera_fk("alert_rules", nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_alert_rules"),
        sa.UniqueConstraint("name", name="uq_alert_rules_name"),
    )
    op.create_table(
        "alerts",
        _id(),
        *_camera_fk("alerts"),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("wall_time", sa.Float(), nullable=False),
        sa.Column("t", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("thumbnail", sa.Text(), nullable=True),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("dedup_key", name="uq_alerts_dedup_key"),
    )
    op.create_table(
        "chunks",
        _id(),
        *_camera_fk("chunks"),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("t_start", sa.Float(), nullable=False),
        sa.Column("t_end", sa.Float(), nullable=False),
        sa.Column("wall_start", sa.Float(), nullable=False),
        sa.Column("wall_end", sa.Float(), nullable=False),
        sa.Column("n_frames", sa.Integer(), nullable=False),
        sa.Column("important", sa.Boolean(), nullable=False),
        sa.Column("fine_tier", sa.String(length=16), nullable=True),
        sa.Column("coarse_tier", sa.String(length=16), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_chunks"),
        sa.UniqueConstraint("camera_id", "seq", name="uq_chunks_camera_id_seq"),
    )
    op.create_table(
        "events",
        _id(),
        *_camera_fk("events"),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("t_start", sa.Float(), nullable=False),
        sa.Column("t_end", sa.Float(), nullable=True),
        sa.Column("wall_start", sa.Float(), nullable=False),
        sa.Column("wall_end", sa.Float(), nullable=True),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("bbox", sa.JSON(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("thumbnail", sa.Text(), nullable=True),
        sa.Column("chunk_seq", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_table(
        "queries",
        _id(),
        *_camera_fk("queries"),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("since", sa.Float(), nullable=True),
        sa.Column("until", sa.Float(), nullable=True),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("intervals", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("chunks_used", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_queries"),
    )
    for table, column in _INDEXES:
        op.create_index(f"ix_{table}_{column}", table, [column])


_INDEXES = (
    ("alert_rules", "camera_id"),
    ("alerts", "camera_id"),
    ("alerts", "delivered_at"),
    ("alerts", "wall_time"),
    ("chunks", "camera_id"),
    ("events", "camera_id"),
    ("events", "kind"),
    ("events", "wall_start"),
    ("queries", "camera_id"),
    ("queries", "created_at"),
)


def downgrade() -> None:
    for table, column in reversed(_INDEXES):
        op.drop_index(f"ix_{table}_{column}", table_name=table)
    for table in ("queries", "events", "chunks", "alerts", "alert_rules", "cameras"):
        op.drop_table(table)
