"""Out-of-distribution flags on records.

* ``inspections.ood``: the photo lay beyond the range of the bundle's training photos (``inspection.ood``); NULL
  when it is not known: records from before this revision, rejected photos, and photos scored by a bundle
  without an OOD model;
* ``inspections.ood_score``: its distance over the OOD threshold (above 1 is out of range); NULL likewise.

No index is added: a station's share of flagged photos is read over its newest records, which the
``ix_inspections_station_created`` index of 0001 already serves.

Downgrading drops both columns; the records' verdicts (``review`` with reason ``ood`` among them) stay.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        batch.add_column(sa.Column("ood", sa.Boolean()))
        batch.add_column(sa.Column("ood_score", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        batch.drop_column("ood_score")
        batch.drop_column("ood")
