"""RecordStore behaviour on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from inspection.results import InspectionResult
from inspection.store import RecordStore, StoreConfigError, current_revision, head_revision
from inspection.store.database import downgrade

SHA_A = "a" * 64
SHA_B = "b" * 64


def make_result(verdict: str = "ok", defect_probability: float = 0.2) -> InspectionResult:
    return InspectionResult(
        noise_type="gaussian",
        noise_probability=0.9,
        noise_probabilities={"clean": 0.05, "gaussian": 0.9, "salt_pepper": 0.03, "periodic": 0.02},
        denoiser="autoencoder",
        defect_probability=defect_probability,
        threshold=0.5,
        verdict=verdict,
        timings_ms={"decode": 1.0, "noise": 2.0, "denoise": 3.0, "defect": 4.0, "total": 10.0},
        model_versions={"noise": "noise-v1", "defect": "defect-v3"},
        conversion="rgb",
        height=300,
        width=300,
    )


@pytest.fixture
def store(db_url: str):
    with RecordStore(db_url) as s:
        yield s


def test_schema_is_migrated_to_head_and_reopens(store: RecordStore, db_url: str) -> None:
    assert current_revision(store.engine) == head_revision() is not None
    tables = set(inspect(store.engine).get_table_names())
    assert {"inspections", "evaluation_runs", "model_versions", "alembic_version"} <= tables
    index_names = {ix["name"] for ix in inspect(store.engine).get_indexes("inspections")}
    assert {"ix_inspections_station_created", "ix_inspections_part_id"} <= index_names
    store.add_inspection(
        station_id="s1", part_id="p1", image_sha256=SHA_A, image_path=None, result=make_result()
    )
    with RecordStore(db_url) as again:  # reopening keeps the data and does not re-run migrations
        assert again.count_inspections() == 1


def test_migrations_match_the_orm_models(store: RecordStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from inspection.store import Base

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"the ORM models and the migrations disagree; add a revision: {diff}"


def test_downgrade_to_base_and_upgrade_again(store: RecordStore) -> None:
    assert downgrade(store.engine, "base") is None
    assert "inspections" not in inspect(store.engine).get_table_names()
    with RecordStore(store.url) as again:
        assert current_revision(again.engine) == head_revision()


def test_record_round_trip_keeps_every_field(store: RecordStore) -> None:
    before = datetime.now(UTC)
    rid = store.add_inspection(
        station_id="station-1",
        part_id="part-0001",
        image_sha256=SHA_A,
        image_path="/data/photos/aa/aaaa.png",
        result=make_result("defective", 0.87),
        image_bytes=1234,
        source="watch",
    )
    rec = store.get_inspection(rid)
    assert rec is not None
    assert rec["station_id"] == "station-1" and rec["part_id"] == "part-0001"
    assert rec["image_sha256"] == SHA_A and rec["image_path"] == "/data/photos/aa/aaaa.png"
    assert rec["image_bytes"] == 1234 and rec["source"] == "watch"
    assert rec["status"] == "ok" and rec["reason"] is None
    assert rec["verdict"] == "defective" and rec["defect_probability"] == pytest.approx(0.87)
    assert rec["threshold"] == pytest.approx(0.5)
    assert rec["noise_type"] == "gaussian" and rec["denoiser"] == "autoencoder"
    assert rec["noise_probabilities"]["gaussian"] == pytest.approx(0.9)
    assert rec["model_versions"] == {"noise": "noise-v1", "defect": "defect-v3"}
    assert rec["timings_ms"]["denoise"] == pytest.approx(3.0) and rec["latency_ms"] == pytest.approx(10.0)
    assert rec["conversion"] == "rgb" and (rec["height"], rec["width"]) == (300, 300)
    created = datetime.fromisoformat(rec["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= created <= datetime.now(UTC) + timedelta(seconds=5)
    assert store.get_inspection(rid + 1000) is None


def test_same_part_and_photo_is_stored_once(store: RecordStore) -> None:
    kwargs = dict(station_id="s1", part_id="p1", image_sha256=SHA_A, image_path=None, result=make_result())
    first = store.save_inspection(**kwargs)
    second = store.save_inspection(**kwargs)
    assert first.created and not second.created and first.id == second.id
    assert (
        store.add_inspection(**{**kwargs, "image_sha256": SHA_B}) != first.id
    )  # a new photo is a new record
    assert store.add_inspection(**{**kwargs, "station_id": "s2"}) != first.id
    assert store.count_inspections() == 3
    found = store.find_inspection(station_id="s1", part_id="p1", image_sha256=SHA_A)
    assert found is not None and found["id"] == first.id


def test_rejections_are_kept_and_deduplicated_by_reason(store: RecordStore) -> None:
    bad = dict(
        station_id="s1", part_id="p1", image_sha256=SHA_A, image_path=None, result=None, status="rejected"
    )
    r1 = store.add_inspection(**bad, reason="corrupt", message="truncated JPEG")
    assert store.add_inspection(**bad, reason="corrupt") == r1  # a retried bad frame is kept once
    r2 = store.add_inspection(**bad, reason="too_small")
    # attempts whose identity cannot be trusted are all kept
    r3 = store.add_inspection(**bad, reason="unauthorized", dedup=False)
    r4 = store.add_inspection(**bad, reason="unauthorized", dedup=False)
    assert len({r1, r2, r3, r4}) == 4
    ok = store.add_inspection(
        station_id="s1", part_id="p1", image_sha256=SHA_A, image_path=None, result=make_result()
    )
    assert ok not in {r1, r2, r3, r4}
    rec = store.get_inspection(r1)
    assert rec["status"] == "rejected" and rec["reason"] == "corrupt" and rec["message"] == "truncated JPEG"
    assert rec["verdict"] is None
    assert store.count_inspections(status="rejected") == 4 and store.count_inspections(status="ok") == 1
    assert (
        store.find_rejection(station_id="s1", part_id="p1", image_sha256=SHA_A, reason="corrupt")["id"] == r1
    )


def test_bad_arguments_are_refused_with_a_message(store: RecordStore) -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        store.add_inspection(
            station_id="s", part_id="p", image_sha256=SHA_A, image_path=None, result=None, status="meh"
        )
    with pytest.raises(ValueError, match="needs the InspectionResult"):
        store.add_inspection(station_id="s", part_id="p", image_sha256=SHA_A, image_path=None, result=None)
    with pytest.raises(ValueError, match="needs a reason"):
        store.add_inspection(
            station_id="s", part_id="p", image_sha256=SHA_A, image_path=None, result=None, status="rejected"
        )
    with pytest.raises(TypeError, match="unknown filter"):
        store.list_inspections(colour="red")


def test_filters_and_paging(store: RecordStore) -> None:
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for i in range(10):
        store.add_inspection(
            station_id="s1" if i % 2 else "s2",
            part_id=f"lot_7-{i:03d}",
            image_sha256=f"{i:064x}",
            image_path=None,
            result=make_result("defective" if i < 3 else "ok"),
            created_at=t0 + timedelta(minutes=i),
        )
    store.add_inspection(
        station_id="s1", part_id="lotX7-999", image_sha256=SHA_B, image_path=None, result=make_result()
    )
    assert store.count_inspections() == 11
    assert store.count_inspections(station_id="s1") == 6
    assert store.count_inspections(verdict="defective") == 3
    assert store.count_inspections(since=t0 + timedelta(minutes=5), until=t0 + timedelta(minutes=8)) == 3
    naive = datetime(2024, 5, 1, 12, 5)  # naive datetimes are UTC
    assert store.count_inspections(since=naive, until=t0 + timedelta(minutes=8)) == 3
    assert store.count_inspections(part_id_prefix="lot_7-") == 10  # '_' is literal, not a wildcard
    assert [r["part_id"] for r in store.list_inspections(part_id="lot_7-004")] == ["lot_7-004"]
    page1 = store.list_inspections(limit=4)
    page2 = store.list_inspections(limit=4, offset=4)
    ids = [r["id"] for r in page1 + page2]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 8


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(store: RecordStore, db_url: str) -> None:
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            with RecordStore(db_url) as mine:  # its own engine, as a separate process would have
                for i in range(15):
                    mine.add_inspection(
                        station_id="s1",
                        part_id=f"p{w}-{i}",
                        image_sha256=SHA_A,
                        image_path=None,
                        result=make_result(),
                    )
                    # every worker also re-sends one shared part: it must be stored exactly once
                    mine.add_inspection(
                        station_id="s1",
                        part_id="shared",
                        image_sha256=SHA_B,
                        image_path=None,
                        result=make_result(),
                    )
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert store.count_inspections() == 6 * 15 + 1
    assert store.count_inspections(part_id="shared") == 1
    assert store.integrity_check() == "ok"


def test_evaluation_runs_and_model_versions(store: RecordStore) -> None:
    report = {"name": "nightly", "model_versions": {"noise": "v1"}, "metrics": {"accuracy": 0.97}}
    run_id = store.add_evaluation_run(report, "/reports/eval-1.json")
    runs = store.list_evaluation_runs()
    assert runs[0]["id"] == run_id and runs[0]["report"]["metrics"]["accuracy"] == 0.97
    assert runs[0]["path"] == "/reports/eval-1.json" and runs[0]["model_versions"] == {"noise": "v1"}
    # the evaluation report format names its models as {"models": {task: {"version": ...}}} and has an "id"
    store.add_evaluation_run(
        {"id": "20261126T083000Z-synthetic", "models": {"defect": {"version": "d7"}}}, "/r/2.json"
    )
    assert store.list_evaluation_runs()[0]["model_versions"] == {"defect": "d7"}
    assert store.list_evaluation_runs()[0]["name"] == "20261126T083000Z-synthetic"

    v1 = store.upsert_model_version("defect", "defect-v1", {"auc": 0.9}, in_use=True)
    v2 = store.upsert_model_version("defect", "defect-v2", {"auc": 0.95}, in_use=True)
    store.upsert_model_version("noise", "noise-v1", None, in_use=True)
    assert (
        store.upsert_model_version("defect", "defect-v2", None, in_use=True) == v2
    )  # an upsert, not a new row
    rows = {r["version"]: r for r in store.list_model_versions("defect")}
    assert rows["defect-v2"]["in_use"] and not rows["defect-v1"]["in_use"]
    assert rows["defect-v2"]["meta"] == {"auc": 0.95}  # meta=None keeps the stored metadata
    assert rows["defect-v1"]["id"] == v1
    assert [r["in_use"] for r in store.list_model_versions("noise")] == [True]


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path) -> None:
    with RecordStore(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'records.db'}") as store:
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert store.integrity_check() == "ok"
    assert (tmp_path / "deep" / "dir" / "records.db").exists()


def test_default_url_uses_the_data_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("INSPECTION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("INSPECTION_DB", raising=False)
    with RecordStore() as store:
        assert store.ping()
    assert (tmp_path / "home" / "records.db").exists()


def test_malformed_url_says_what_is_expected() -> None:
    with pytest.raises(StoreConfigError, match="expected a SQLAlchemy URL"):
        RecordStore("not a url")
