"""Initial schema: inspections, evaluation_runs, model_versions.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from inspection.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("part_id", sa.String(128)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("message", sa.Text()),
        sa.Column("dedup_key", sa.String(64), unique=True),
        sa.Column("image_sha256", sa.String(64)),
        sa.Column("image_bytes", sa.Integer()),
        sa.Column("image_path", sa.Text()),
        sa.Column("conversion", sa.String(32)),
        sa.Column("height", sa.Integer()),
        sa.Column("width", sa.Integer()),
        sa.Column("noise_type", sa.String(32)),
        sa.Column("noise_probability", sa.Float()),
        sa.Column("noise_probabilities", sa.JSON()),
        sa.Column("denoiser", sa.String(32)),
        sa.Column("safe_path", sa.Boolean()),
        sa.Column("defect_probability", sa.Float()),
        sa.Column("threshold", sa.Float()),
        sa.Column("verdict", sa.String(16)),
        sa.Column("model_versions", sa.JSON()),
        sa.Column("timings_ms", sa.JSON()),
        sa.Column("latency_ms", sa.Float()),
    )
    op.create_index("ix_inspections_station_created", "inspections", ["station_id", "created_at"])
    op.create_index("ix_inspections_part_id", "inspections", ["part_id"])
    op.create_index("ix_inspections_created_at", "inspections", ["created_at"])
    op.create_index("ix_inspections_status", "inspections", ["status"])
    op.create_index("ix_inspections_image_sha256", "inspections", ["image_sha256"])

    op.create_table(
        "evaluation_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("name", sa.String(128)),
        sa.Column("model_versions", sa.JSON()),
        sa.Column("report", sa.JSON(), nullable=False),
    )
    op.create_index("ix_evaluation_runs_created_at", "evaluation_runs", ["created_at"])

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("meta", sa.JSON()),
        sa.Column("in_use", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("uq_model_versions_task_version", "model_versions", ["task", "version"], unique=True)


def downgrade() -> None:
    op.drop_table("model_versions")
    op.drop_table("evaluation_runs")
    op.drop_table("inspections")
