"""Defect kinds and the review verdict on records; the golden test set; promotion decisions.

* ``inspections.kind``: the model's defect kind (NULL when the model has no kinds, or judged the part ok);
* ``inspections.review_reason``: why the verdict is ``review`` (the verdict column, free text, now also
  takes ``review``: no constraint changes);
* ``golden_photos``: the frozen golden test set, one row per photo hash, only ever added to;
* ``promotions``: every promote, refuse and rollback of a model bundle, with the comparison it rested on.

Downgrading drops the kinds, review reasons, golden set and promotion history; records whose verdict is
``review`` keep it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from inspection.store.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        batch.add_column(sa.Column("kind", sa.String(64)))
        batch.add_column(sa.Column("review_reason", sa.String(32)))
    op.create_table(
        "golden_photos",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64)),
        sa.Column("inspection_id", sa.Integer(), sa.ForeignKey("inspections.id")),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("models_root", sa.Text(), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("previous", sa.String(128)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("comparison", sa.JSON()),
        sa.Column("note", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("promotions")
    op.drop_table("golden_photos")
    with op.batch_alter_table("inspections") as batch:
        batch.drop_column("review_reason")
        batch.drop_column("kind")
