"""Migration 0006 (the dashboard's covering index for station counts) on a real SQLite file and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, text

from inspection.store import current_revision, head_revision, make_engine
from inspection.store.database import downgrade, upgrade


def index_columns(engine) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("inspections")}


def test_upgrade_swaps_the_status_index_for_the_covering_one_and_downgrade_restores_it(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert upgrade(engine, "0005") == "0005"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO inspections (created_at, station_id, part_id, source, status, verdict, conflict) "
                    "VALUES (:t, 's1', 'p1', 'api', 'ok', 'ok', false)"
                ),
                {"t": datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)},
            )
        before = index_columns(engine)
        assert before["ix_inspections_status"] == ["status"]

        assert upgrade(engine) == head_revision() == "0006"
        after = index_columns(engine)
        assert "ix_inspections_status" not in after
        assert after["ix_inspections_status_stats"] == [
            "status", "created_at", "station_id", "verdict", "noise_type", "noise_probability",
        ]  # fmt: skip
        assert {k: v for k, v in after.items() if k != "ix_inspections_status_stats"} == {
            k: v for k, v in before.items() if k != "ix_inspections_status"
        }
        with engine.connect() as conn:
            assert (
                conn.execute(text("SELECT count(*) FROM inspections WHERE status = 'ok'")).scalar_one() == 1
            )

        assert downgrade(engine, "0005") == "0005"
        assert index_columns(engine) == before
        assert upgrade(engine) == "0006"
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
