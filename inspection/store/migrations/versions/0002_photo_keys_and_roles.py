"""Photo keys, client addresses, verdict conflicts, and the photos table.

* ``inspections.image_key``: the photo's key in the photo store (records keep a key, not a path);
* ``inspections.client_address``: the peer of an API request (kept for unauthenticated attempts);
* ``inspections.conflict``: another photo of the same part got the opposite verdict;
* ``photos``: photo bytes, for the ``db`` photo store shared by several service replicas.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from inspection.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        batch.add_column(sa.Column("image_key", sa.String(80)))
        batch.add_column(sa.Column("client_address", sa.String(64)))
        batch.add_column(sa.Column("conflict", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "photos",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("photos")
    with op.batch_alter_table("inspections") as batch:
        batch.drop_column("conflict")
        batch.drop_column("client_address")
        batch.drop_column("image_key")
