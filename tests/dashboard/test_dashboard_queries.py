"""Station, part and model queries on the fixture records database (SQLite; PostgreSQL when available)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, text

from inspection.dashboard import db, fixtures, images, parts, stations, versions
from inspection.store.models import Inspection

N_RECORDS = 4000  # conftest.N_RECORDS


@pytest.fixture(scope="module")
def engine(data_env: dict[str, str]) -> Engine:
    return db.open_engine(data_env["INSPECTION_DB"])


def test_db_status_counts_records(engine: Engine) -> None:
    status = db.db_status(engine)
    assert status.ok and status.n_records == N_RECORDS


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(db.DatabaseUnavailable, match="inspection score --db"):
        db.open_engine(f"sqlite:///{tmp_path / 'nope.db'}")
    assert not (tmp_path / "nope.db").exists()


def test_database_without_tables_or_records(tmp_path: Path) -> None:
    (tmp_path / "blank.db").touch()
    status = db.db_status(db.open_engine(f"sqlite:///{tmp_path / 'blank.db'}"))
    assert not status.ok and "no `inspections` table" in status.message
    fixtures.create_schema(f"sqlite:///{tmp_path / 'empty.db'}").dispose()
    status = db.db_status(db.open_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    assert not status.ok and "empty" in status.message


def test_station_summary_matches_raw_counts(engine: Engine) -> None:
    summary = stations.station_summary(engine).set_index("station_id")
    assert list(summary.index) == list(fixtures.STATIONS)
    assert summary["records"].sum() == N_RECORDS
    with engine.connect() as conn:
        t = Inspection.__table__
        n = conn.execute(
            select(func.count()).where(t.c.station_id == "line-2", t.c.verdict == "defective")
        ).scalar_one()
    assert summary.loc["line-2", "defective"] == n
    assert 0.03 < summary.loc["line-2", "defect_rate"] < 0.2
    assert summary["first"].dt.tz is not None


def test_timeseries_buckets_add_up(engine: Engine) -> None:
    span = stations.time_span(engine)
    assert span is not None and span.end <= fixtures.FIXTURE_END
    bucket, name = stations.choose_bucket(span.end - span.start)
    assert (bucket, name) == (6 * 3600, "6 hours")
    series = stations.station_timeseries(engine, bucket)
    summary = stations.station_summary(engine).set_index("station_id")
    assert series.groupby("station_id")["scored"].sum().to_dict() == summary["scored"].to_dict()
    assert (series["time"].dt.hour % 6 == 0).all()
    mix = stations.noise_mix_timeseries(engine, bucket, stations=["line-1"])
    assert set(mix["station_id"]) == {"line-1"}
    assert np.allclose(mix.groupby("time")["share"].sum(), 1.0)


def test_time_filter(engine: Engine) -> None:
    span = stations.time_span(engine)
    assert span is not None
    series = stations.station_timeseries(engine, 3600, start=span.end - timedelta(hours=24))
    assert series["time"].min() >= span.end - timedelta(hours=25)
    assert 0 < series["scored"].sum() < N_RECORDS / 5


def test_drift_flags_the_grounding_fault_station_only(engine: Engine) -> None:
    findings = {f.station_id: f for f in stations.station_drift(engine, min_records=30)}
    assert findings["line-3"].drifted and findings["line-3"].rising_type == "periodic"
    assert all(not f.drifted for s, f in findings.items() if s != "line-3")
    assert stations.station_drift(engine, min_records=30)[0].station_id == "line-3"


def test_find_parts_by_id_prefix_station_and_time(engine: Engine) -> None:
    exact = parts.find_parts(engine, part_id="P2-0000001")
    prefix = parts.find_parts(engine, part_id="P1-00000*")
    assert len(exact) <= 1 and prefix["part_id"].str.startswith("P1-00000").all() and len(prefix) > 0
    newest = parts.find_parts(engine, stations=["line-4"], limit=5)
    assert len(newest) == 5 and set(newest["station_id"]) == {"line-4"}
    assert newest["created_at"].is_monotonic_decreasing
    assert parts.find_parts(engine, part_id="P1_%*").empty  # LIKE wildcards are escaped


def test_get_part_and_its_views(engine: Engine) -> None:
    row = parts.find_parts(engine, stations=["line-1"], limit=50)
    record = parts.get_part(engine, int(row[row["status"] == "ok"].iloc[0]["id"]))
    assert record is not None and record["created_at"].tzinfo is not None
    probs = parts.probabilities_frame(record)
    assert probs["probability"].sum() == pytest.approx(1.0, abs=0.01)
    assert probs.set_index("noise_type")["probability"].idxmax() == record["noise_type"]
    assert dict(parts.versions_frame(record).values) == fixtures.MODEL_VERSIONS
    assert parts.photo_path(record) is not None
    assert parts.get_part(engine, 10**9) is None


def test_denoised_view_without_models() -> None:
    gray = fixtures.synth_casting(np.random.default_rng(0), size=96)
    assert parts.denoised_view(gray, {"denoiser": "identity"}).image is gray
    assert parts.denoised_view(gray, {"denoiser": "median"}).image.shape == gray.shape
    ae = parts.denoised_view(gray, {"denoiser": "autoencoder"})
    assert ae.image is None and "needs its model" in ae.note
    assert parts.denoised_view(gray, {"denoiser": None}).image is None
    assert (
        "classified clean" in parts.denoised_view(gray, {"denoiser": "identity", "noise_type": "clean"}).note
    )
    weak = parts.denoised_view(gray, {"denoiser": "identity", "noise_type": "gaussian", "safe_path": False})
    assert weak.image is gray and "classified gaussian" in weak.note and "min_denoise_sigma" in weak.note


def test_models_from_checkpoints_and_store(engine: Engine, data_env: dict[str, str]) -> None:
    ck = versions.checkpoints_frame(data_env["INSPECTION_MODELS"])
    assert set(ck["task"]) == {"noise", "denoiser", "defect"}
    noise = ck[ck["task"] == "noise"].set_index("version")
    assert not noise["in_use"].any()  # two version folders and no store flag: undecided from disk alone
    assert "accuracy=0.991" in noise.loc["noise-2026.11.1", "metrics"]
    store = versions.store_versions_frame(engine)
    assert store["in_use"].all() and set(store["version"]) == set(fixtures.MODEL_VERSIONS.values())
    import pandas as pd

    assert versions.versions_in_use(pd.concat([ck, store]))["noise"] == "noise-2026.11.1"
    long = versions.metrics_long_frame(data_env["INSPECTION_MODELS"], engine)
    assert {"accuracy", "psnr_gaussian"} <= set(long["metric"])


def test_spectrum_image_shows_periodic_peaks() -> None:
    clean = fixtures.synth_casting(np.random.default_rng(0), size=128)
    noisy = fixtures.add_noise(clean, "periodic", 50.0, rng=1)
    a, b = images.spectrum_image(clean), images.spectrum_image(noisy)
    assert a.dtype == np.uint8 and a.shape == (128, 128)
    assert (b == 255).sum() > (a == 255).sum()
    assert images.spectrum_image(np.zeros((1200, 1000), np.uint8)).shape[0] <= 512


def test_crops_stay_inside_and_find_detail() -> None:
    image = np.zeros((100, 120), np.uint8)
    image[70:80, 90:100] = 255
    crop = images.detail_crop(image, size=20)
    assert crop.top <= 70 and crop.top + 20 >= 80 and crop.left <= 90 and crop.left + 20 >= 100
    edge = images.crop_at(image, 1.0, 1.0, 40)
    assert (edge.top, edge.left, edge.size) == (60, 80, 40)
    assert images.zoom(image, edge, 160).shape == (160, 160)
    assert images.outline(image, edge).shape == (100, 120, 3)


@pytest.mark.postgres
def test_station_queries_on_postgres(pg_url: str) -> None:
    fixtures.fill_fixture_db(pg_url, 2000)
    eng = db.open_engine(pg_url)
    try:
        span = stations.time_span(eng)
        assert span is not None
        bucket, _ = stations.choose_bucket(span.end - span.start)
        series = stations.station_timeseries(eng, bucket)
        assert series["scored"].sum() == stations.station_summary(eng)["scored"].sum()
        assert (series["time"].dt.hour % 6 == 0).all()
        assert not stations.noise_mix_timeseries(eng, bucket).empty
        assert {f.station_id for f in stations.station_drift(eng, min_records=20)} == set(fixtures.STATIONS)
        assert len(parts.find_parts(eng, part_id="P1-*", limit=3)) == 3
        assert not versions.store_versions_frame(eng).empty
    finally:
        eng.dispose()


def test_one_counts_scan_gives_summary_series_and_mix(engine: Engine) -> None:
    span = stations.time_span(engine)
    assert span is not None and span.records == N_RECORDS and span.stations == len(fixtures.STATIONS)
    bucket, _ = stations.bucket_for(span)
    counts = stations.station_counts(engine, bucket)
    summary = stations.summary_from_counts(counts).set_index("station_id")
    assert summary["records"].sum() == N_RECORDS
    assert stations.timeseries_from_counts(counts)["scored"].sum() == summary["scored"].sum()
    mix = stations.noise_mix_from_counts(counts)
    assert np.allclose(mix.groupby(["time", "station_id"])["share"].sum(), 1.0)
    # A window narrower than the span gets a bucket no wider than the whole span's.
    assert stations.bucket_for(span, timedelta(hours=24))[0] <= bucket


def test_station_counts_read_the_covering_index(engine: Engine) -> None:
    """Migration 0006: the windowed counts search ix_inspections_status_stats and never read the table rows."""
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite")
    span = stations.time_span(engine)
    assert span is not None
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT station_id, count(*) FROM inspections "
            "WHERE status = 'ok' AND created_at >= ? GROUP BY station_id",
            (str(span.end - timedelta(days=1)),),
        ).all()
    assert "COVERING INDEX ix_inspections_status_stats" in " ".join(str(row) for row in plan)


def test_models_card_reads_the_live_card_without_loading_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "bundles" / "v1"
    bundle.mkdir(parents=True)
    (bundle / "pipeline.json").write_text("{}")
    (bundle / "card.json").write_text('{"synthetic_only": true}')
    (tmp_path / "LIVE").write_text("v1\n")
    assert stations.models_card(tmp_path) == {"synthetic_only": True}
    assert stations.models_card(bundle) == {"synthetic_only": True}
    assert stations.models_card(tmp_path / "missing") == {}
    (tmp_path / "LIVE").write_text("../elsewhere\n")
    assert stations.models_card(tmp_path) == {}


def spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any], Any]]:
    """Record every call of ``stations.<name>`` (arguments, keyword arguments, result) and let it run."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any], Any]] = []
    real = getattr(stations, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    monkeypatch.setattr(stations, name, wrapper)
    return calls


def sorted_counts(frame):  # type: ignore[no-untyped-def]
    return frame.sort_values(stations.COUNT_KEYS).reset_index(drop=True)


def append_records(path: Path, source: Path) -> None:
    """Append every record of the store at ``source`` to the store at ``path`` (new ids), as a station would."""
    with sqlite3.connect(path) as conn:
        conn.execute("ATTACH DATABASE ? AS source", (str(source),))
        cols = ", ".join(r[1] for r in conn.execute("PRAGMA table_info(inspections)") if r[1] != "id")
        conn.execute(f"INSERT INTO inspections ({cols}) SELECT {cols} FROM source.inspections ORDER BY id")


def test_appended_counts_count_only_new_records_and_match_a_full_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'grow.db'}"
    fixtures.fill_fixture_db(url, 600, seed=0)
    eng = db.open_engine(url)
    full_count = stations.station_counts
    calls = spy(monkeypatch, "station_counts")
    counts = stations.AppendedCounts(eng, 3600)
    first = counts.read()
    counted = [kwargs.get("ids") for _, kwargs, _ in calls]
    assert counted == [(0, 600)] and first["n"].sum() == 600
    assert sorted_counts(first).equals(sorted_counts(full_count(eng, 3600)))
    # More records in the same buckets, stations, verdicts and noise types (the same draws: every group grows,
    # the NULL-keyed rejections too), then some a month older from a new station.
    fixtures.fill_fixture_db(f"sqlite:///{tmp_path / 'same.db'}", 600, seed=0)
    with sqlite3.connect(tmp_path / "same.db") as conn:
        conn.execute("UPDATE inspections SET dedup_key = 'again-' || dedup_key")
    append_records(tmp_path / "grow.db", tmp_path / "same.db")
    fixtures.fill_fixture_db(
        f"sqlite:///{tmp_path / 'old.db'}", 200, seed=1, stations=("line-9",),
        end=fixtures.FIXTURE_END - timedelta(days=30),
    )  # fmt: skip
    append_records(tmp_path / "grow.db", tmp_path / "old.db")
    later = counts.read()
    assert [kwargs.get("ids") for _, kwargs, _ in calls[1:]] == [(600, 1400)]  # the 800 new records alone
    full = full_count(eng, 3600)
    pd.testing.assert_frame_equal(sorted_counts(later), sorted_counts(full))
    doubled = sorted_counts(first).assign(n=lambda f: 2 * f["n"])
    grown = sorted_counts(later[later["station_id"] != "line-9"])
    assert grown["n"].equals(doubled["n"]) and grown["verdict"].isna().sum() == first["verdict"].isna().sum()
    assert counts.read()["n"].sum() == 1400 and len(calls) == 2  # nothing new: nothing counted


def test_appended_counts_start_over_when_the_store_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "swap.db"
    fixtures.fill_fixture_db(f"sqlite:///{path}", 500, seed=0)
    eng = db.open_engine(f"sqlite:///{path}")
    counts = stations.AppendedCounts(eng, 3600)
    assert counts.read()["n"].sum() == 500  # the engine's pool keeps a connection to this file open
    path.unlink()
    fixtures.fill_fixture_db(
        f"sqlite:///{path}", 700, seed=5, stations=("line-7",)
    )  # more records, other ones
    again = counts.read()
    assert again["n"].sum() == 700 and set(again["station_id"]) == {"line-7"}


@pytest.mark.postgres
def test_appended_counts_count_afresh_on_postgres(pg_url: str) -> None:
    fixtures.fill_fixture_db(pg_url, 300)
    eng = db.open_engine(pg_url)
    try:
        counts = stations.AppendedCounts(eng, 3600)
        assert not counts.incremental and counts.read()["n"].sum() == 300
        with eng.begin() as conn:  # one more record, as a station would add it
            conn.execute(text("INSERT INTO inspections (station_id, status, source, created_at) "
                              "SELECT station_id, status, source, created_at FROM inspections LIMIT 1"))  # fmt: skip
        assert counts.read()["n"].sum() == 301
    finally:
        eng.dispose()


def sorted_windows(frame: pd.DataFrame) -> pd.DataFrame:
    keys = frame[stations.WINDOW_KEYS].astype(str)  # None sorts as "None"
    return frame.loc[keys.sort_values(stations.WINDOW_KEYS).index].reset_index(drop=True)


def add_records_at(eng: Engine, times: list[datetime], **changes: Any) -> None:
    """Copies of the first scored record at exactly these times (a window's edges, a bucket's start)."""
    table = Inspection.__table__
    with eng.begin() as conn:
        row = dict(conn.execute(select(table).where(table.c.status == "ok").limit(1)).mappings().one())
        del row["id"]
        conn.execute(
            table.insert(),
            [row | changes | {"created_at": t, "dedup_key": f"{uuid.uuid4()}"} for t in times],
        )


def test_windows_summed_from_hourly_counts_match_a_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'windows.db'}"
    fixtures.fill_fixture_db(url, 1500, seed=3)
    eng = db.open_engine(url)
    end = fixtures.FIXTURE_END - timedelta(hours=5, minutes=17, seconds=3)  # cuts an hour
    recent, baseline = timedelta(hours=24), timedelta(days=3)
    edges = [end, end - recent, end - recent - baseline]
    add_records_at(eng, [*edges, *(t + timedelta(microseconds=1) for t in edges),
                         *(t - timedelta(microseconds=1) for t in edges), end.replace(minute=0, second=0)])  # fmt: skip
    # Scored records without a noise type or verdict (NULL keys) in an edge hour and in whole hours.
    add_records_at(eng, [end - timedelta(hours=h) for h in (0, 2, 30, 50)], noise_type=None, verdict=None)
    base = stations.AppendedCounts(eng, stations.WINDOW_BUCKET_S, stations.WINDOW_KEEP).kept()
    calls = spy(monkeypatch, "_window_scan")
    for end_at, hours, days in (
        (end, 24, 3),
        (fixtures.FIXTURE_END, 6, 1),
        (end.replace(minute=0, second=0), 72, 7),
    ):
        kwargs = {"end": end_at, "recent": timedelta(hours=hours), "baseline": timedelta(days=days)}
        calls.clear()
        summed = stations.window_counts(eng, **kwargs, base=base)
        (scanned,) = [result["n"].sum() for _, _, result in calls]
        assert scanned < summed["n"].sum() / 4  # only the hours the windows' edges cut were read
        direct = stations.window_counts(eng, **kwargs)
        assert direct["recent"].nunique() == 2 and direct["verdict"].isna().any()
        pd.testing.assert_frame_equal(sorted_windows(summed), sorted_windows(direct))
    # Hourly counts that no longer reach back to the window's start: the window is counted from the records.
    late = stations.KeptCounts(base.counts, base.bucket_seconds, stations.bucket_of(end, 3600))
    calls.clear()
    pd.testing.assert_frame_equal(
        sorted_windows(stations.window_counts(eng, end=end, recent=recent, baseline=baseline, base=late)),
        sorted_windows(stations.window_counts(eng, end=end, recent=recent, baseline=baseline)),
    )
    assert [len(args) for args, _, _ in calls] == [4, 4]  # both scans over the whole windows, no edge spans


def test_appended_counts_keep_only_recent_buckets(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keep.db'}"
    fixtures.fill_fixture_db(url, 800, seed=4)  # over the fixture's two weeks
    eng = db.open_engine(url)
    counts = stations.AppendedCounts(eng, 3600, keep=timedelta(days=2))

    def check() -> int:
        kept = counts.kept()
        assert kept.complete_from is not None and kept.counts["bucket"].min() >= kept.complete_from
        full = stations.station_counts(eng, 3600)
        recent = full[full["bucket"] >= kept.complete_from]
        assert 0 < len(recent) < len(full)
        pd.testing.assert_frame_equal(sorted_counts(kept.counts), sorted_counts(recent))
        return kept.complete_from

    first = check()
    newest = stations.time_span(eng).end  # type: ignore[union-attr]
    assert first == stations.bucket_of(newest - timedelta(days=2), 3600)
    # A day later, and records with old times (into buckets already dropped): the kept hours move on a day.
    add_records_at(eng, [newest + timedelta(days=1)])
    add_records_at(eng, [newest - timedelta(days=5, minutes=m) for m in range(3)])
    assert check() == first + 86400


def test_windows_read_counts_as_new_as_the_time_span(tmp_path: Path) -> None:
    """The windows end at the time span's newest record: the hourly counts they sum are never older."""
    from inspection.dashboard import ui

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    fixtures.fill_fixture_db(url, 600, seed=6)
    eng = db.open_engine(url)
    assert ui.window_counts(url, 24.0, 3.0) is not None  # the hourly counts are built
    newest = stations.time_span(eng).end  # type: ignore[union-attr]
    add_records_at(eng, [newest + timedelta(minutes=20 * k) for k in range(1, 10)])  # three more hours
    ui.time_span.clear()
    ui.window_counts.clear()  # the two query caches expire; nothing else is cleared
    span = ui.time_span(url)
    assert span is not None and span.end == newest + timedelta(minutes=180)
    summed = ui.window_counts(url, 24.0, 3.0)
    direct = stations.window_counts(eng, end=span.end, recent=timedelta(hours=24), baseline=timedelta(days=3))
    pd.testing.assert_frame_equal(sorted_windows(summed), sorted_windows(direct))


def test_background_counting_waits_for_a_store_with_records(tmp_path: Path) -> None:
    import streamlit as st

    from inspection.dashboard import ui

    url = f"sqlite:///{tmp_path / 'late.db'}"
    first = ui.start_counting(url)  # no store yet: nothing built, and a later session tries again
    assert first is not None
    first.join()
    assert url not in ui._COUNTING
    fixtures.fill_fixture_db(url, 300, seed=2)
    st.cache_data.clear()  # the 30-s query cache still says "no store"
    again = ui.start_counting(url)
    assert again is not None
    again.join()
    assert url in ui._COUNTING and ui.start_counting(url) is None  # once per server
    bucket = ui.all_records_bucket(url)
    assert bucket is not None and ui.all_counts(url, bucket).upto == 300
    assert ui.all_counts(url, stations.WINDOW_BUCKET_S, stations.WINDOW_KEEP.total_seconds()).upto == 300
