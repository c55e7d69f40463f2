"""A covering index for the dashboard's station aggregates.

* ``ix_inspections_status_stats`` on ``inspections (status, created_at, station_id, verdict, noise_type,
  noise_probability)``: the Stations page's windowed counts (drift, p-chart control: ``status = 'ok'`` and a
  ``created_at`` range) become a range search that never reads the table rows, and its grouped scan of every
  record (summary, time series, noise mix) reads this index instead of the rows with their JSON columns.
  At 100,000 records on SQLite the drift and control queries fell from about 230-300 ms to about 100 ms each.
* ``ix_inspections_status`` (0001) is dropped: it is this index's first column, and with it SQLite chose it
  for ``status = 'ok'`` (99% of the rows) and then read every row from the table.

Downgrading restores ``ix_inspections_status`` and drops the new index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ["status", "created_at", "station_id", "verdict", "noise_type", "noise_probability"]


def upgrade() -> None:
    op.create_index("ix_inspections_status_stats", "inspections", COLUMNS)
    op.drop_index("ix_inspections_status", table_name="inspections")


def downgrade() -> None:
    op.create_index("ix_inspections_status", "inspections", ["status"])
    op.drop_index("ix_inspections_status_stats", table_name="inspections")
