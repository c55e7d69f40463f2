"""Labels: an engineer's verdict on a record, kept beside the model's verdict, never over it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from inspection.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("inspection_id", sa.Integer(), sa.ForeignKey("inspections.id"), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64)),
        sa.Column("note", sa.Text()),
        sa.Column("labelled_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_labels_inspection_id", "labels", ["inspection_id"])


def downgrade() -> None:
    op.drop_index("ix_labels_inspection_id", table_name="labels")
    op.drop_table("labels")
