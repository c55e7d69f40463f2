"""Migration 0005 (out-of-distribution flags on records) on a real SQLite file and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from helpers.store import columns
from sqlalchemy import inspect, text

from inspection.store import current_revision, make_engine
from inspection.store.database import downgrade, upgrade


def test_upgrade_keeps_old_records_unknown_and_downgrade_removes_only_0005(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert upgrade(engine, "0004") == "0004"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO inspections (created_at, station_id, part_id, source, status, verdict, "
                    "review_reason, conflict) VALUES (:t, 's1', 'p1', 'api', 'ok', 'review', 'uncertain', false)"
                ),
                {"t": datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)},
            )
        assert not {"ood", "ood_score"} & columns(engine, "inspections")
        indexes_before = {ix["name"] for ix in inspect(engine).get_indexes("inspections")}

        assert upgrade(engine, "0005") == "0005"
        assert {"ood", "ood_score"} <= columns(engine, "inspections")
        # the station's newest records are read on the index 0001 made; 0005 adds none (and drops none)
        assert {ix["name"] for ix in inspect(engine).get_indexes("inspections")} == indexes_before
        with engine.connect() as conn:
            row = conn.execute(text("SELECT part_id, verdict, ood, ood_score FROM inspections")).one()
        assert tuple(row) == ("p1", "review", None, None)  # an old record's flag is not known

        with engine.begin() as conn:
            conn.execute(
                text("UPDATE inspections SET ood = :t, ood_score = 3.5, review_reason = 'ood'"), {"t": True}
            )
        assert downgrade(engine, "0004") == "0004"
        assert not {"ood", "ood_score"} & columns(engine, "inspections")
        with engine.connect() as conn:
            row = conn.execute(text("SELECT part_id, verdict, review_reason FROM inspections")).one()
        assert tuple(row) == ("p1", "review", "ood")

        assert upgrade(engine, "0005") == "0005"
        assert current_revision(engine) == "0005"
    finally:
        engine.dispose()
