"""Migration 0004 (kinds, review reasons, golden set, promotions) on a real SQLite file and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from helpers.store import columns
from sqlalchemy import inspect, text

from inspection.store import current_revision, head_revision, make_engine
from inspection.store.database import downgrade, upgrade


def test_upgrade_keeps_old_records_and_downgrade_removes_only_0004(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert upgrade(engine, "0003") == "0003"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO inspections (created_at, station_id, part_id, source, status, verdict, conflict) "
                    "VALUES (:t, 's1', 'p1', 'api', 'ok', 'defective', false)"
                ),
                {"t": datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)},
            )
        assert "kind" not in columns(engine, "inspections")

        assert upgrade(engine, "0004") == "0004"
        assert {"kind", "review_reason"} <= columns(engine, "inspections")
        assert {"golden_photos", "promotions"} <= set(inspect(engine).get_table_names())
        assert columns(engine, "promotions") == {
            "id", "models_root", "version", "previous", "action", "decided_by", "decided_at", "comparison", "note",
        }  # fmt: skip
        assert columns(engine, "golden_photos") == {
            "sha256", "label", "kind", "inspection_id", "added_by", "added_at",
        }  # fmt: skip
        [fks] = [fk for fk in inspect(engine).get_foreign_keys("golden_photos")]
        assert fks["referred_table"] == "inspections"
        with engine.connect() as conn:
            row = conn.execute(text("SELECT part_id, verdict, kind, review_reason FROM inspections")).one()
        assert tuple(row) == ("p1", "defective", None, None)

        with engine.begin() as conn:  # the review verdict fits the old column
            conn.execute(text("UPDATE inspections SET verdict = 'review', review_reason = 'uncertain'"))
        assert downgrade(engine, "0003") == "0003"
        assert not {"kind", "review_reason"} & columns(engine, "inspections")
        assert not {"golden_photos", "promotions"} & set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert tuple(conn.execute(text("SELECT part_id, verdict FROM inspections")).one()) == (
                "p1",
                "review",
            )

        assert upgrade(engine) == head_revision()
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
