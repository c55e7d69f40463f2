"""Benchmark the dashboard's pages on a large records database.

    python -m inspection.dashboard.bench --records 100000

fills a fresh SQLite database (or ``--db URL``) with synthetic records by bulk insert, writes fixture reports
and model metadata, then times (1) each page's data functions, called directly with no cache, and (2) each
whole page script through Streamlit's ``AppTest`` with the query cache cleared. Exits 1 when a page takes
longer than the budget (2 s by default).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from inspection import paths
from inspection.dashboard import db, fixtures, parts, reports, stations, versions

PAGES = ("overview", "noise", "denoisers", "stations", "part_lookup", "models")


def page_data_functions(env: dict[str, str]) -> dict[str, list[tuple[str, Callable[[], Any]]]]:
    """The data calls each page makes on first open, in the same order, uncached."""
    url, reports_dir, models_dir = (
        env["INSPECTION_DB"],
        Path(env["INSPECTION_REPORTS"]),
        Path(env["INSPECTION_MODELS"]),
    )
    engine = db.open_engine(url)

    def latest() -> dict[str, Any]:
        return reports.load_report(reports.list_reports(reports_dir)[0].path)

    def overview() -> None:
        refs = reports.list_reports(reports_dir)
        a, b = reports.load_report(refs[0].path), reports.load_report(refs[1].path)
        reports.headline_table(a), reports.gain_comparison_frame(a), reports.compare_reports(a, b)

    def stations_page() -> None:
        span = stations.time_span(engine)
        assert span is not None
        bucket, _ = stations.choose_bucket(span.end - span.start)
        stations.station_drift(engine, recent=timedelta(hours=24), baseline=timedelta(days=7))
        stations.station_summary(engine)
        stations.station_timeseries(engine, bucket)
        stations.noise_mix_timeseries(engine, bucket)

    def part_lookup() -> None:
        stations.list_stations(engine)
        stations.time_span(engine)
        found = parts.find_parts(engine)
        parts.get_part(engine, int(found.iloc[0]["id"]))
        parts.find_parts(engine, part_id="P1-00001*")

    return {
        "overview": [("reports", overview)],
        "noise": [
            ("report", lambda: (reports.confusion_frame(latest()), reports.accuracy_by_level_frame(latest())))
        ],
        "denoisers": [("report", lambda: reports.denoise_samples_frame(latest()))],
        "stations": [("db status", lambda: db.db_status(engine)), ("queries", stations_page)],
        "part_lookup": [("db status", lambda: db.db_status(engine)), ("queries", part_lookup)],
        "models": [
            (
                "checkpoints + store",
                lambda: (versions.checkpoints_frame(models_dir), versions.store_versions_frame(engine)),
            ),
            ("metrics", lambda: versions.metrics_long_frame(models_dir, engine)),
        ],
    }


def time_data_functions(env: dict[str, str], repeats: int = 3) -> dict[str, float]:
    """Median wall time (ms) of each page's data calls, uncached."""
    out = {}
    for page, calls in page_data_functions(env).items():
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            for _name, fn in calls:
                fn()
            runs.append((time.perf_counter() - t) * 1000)
        out[page] = statistics.median(runs)
    return out


def time_pages(env: dict[str, str], repeats: int = 3) -> dict[str, float]:
    """Median wall time (ms) of each whole page script under AppTest, query cache cleared before each run."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ.update(env)
    app = paths.dashboard_app()
    if app is None:
        raise FileNotFoundError(
            f"no dashboard app at {' or '.join(map(str, paths.dashboard_app_candidates()))}"
        )
    at = AppTest.from_file(str(app), default_timeout=120)
    at.run()  # warm-up: imports, engine and pipeline resources
    for name in list(logging.root.manager.loggerDict):  # AppTest outside a server warns on every cache use
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    out = {}
    for page in PAGES:
        runs = []
        for _ in range(repeats):
            st.cache_data.clear()
            t = time.perf_counter()
            at.switch_page(f"views/{page}.py")
            at.run()
            runs.append((time.perf_counter() - t) * 1000)
            if at.exception:
                raise RuntimeError(f"page {page} raised: {at.exception[0].value}")
        out[page] = statistics.median(runs)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inspection.dashboard.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--records", type=int, default=100_000, help="synthetic records to insert (default 100000)"
    )
    parser.add_argument(
        "--db", default=None, help="database URL to fill (default: SQLite in a temporary folder)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="write everything to this folder and keep it")
    parser.add_argument("--budget-ms", type=float, default=2000.0, help="per-page budget (default 2000 ms)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-apptest", action="store_true", help="time the data functions only")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="inspection-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        url = args.db or f"sqlite:///{root / 'records.db'}"
        fixtures.write_fixture_reports(root / "reports")
        fixtures.write_fixture_models(root / "models")
        photos = fixtures.write_fixture_photos(root / "photos")
        keys = fixtures.store_fixture_photos(photos, root / "photo-store")
        t = time.perf_counter()
        fixtures.fill_fixture_db(url, args.records, photos=photos, photo_keys=keys)
        print(f"inserted {args.records:,} records into {url} in {time.perf_counter() - t:.1f} s")
        env = {"INSPECTION_REPORTS": str(root / "reports"), "INSPECTION_DB": url, "INSPECTION_MODELS": str(root / "models"),
               "INSPECTION_PHOTOS": str(root / "photo-store"), "INSPECTION_DASHBOARD_NO_MODELS": "1"}  # fmt: skip
        data = time_data_functions(env, args.repeats)
        full = {} if args.no_apptest else time_pages(env, args.repeats)
        print(f"\n{'page':<12} {'data functions':>15} {'whole page (AppTest)':>22}")
        worst = 0.0
        for page in PAGES:
            page_ms = full.get(page)
            worst = max(worst, data[page], page_ms or 0.0)
            shown = f"{page_ms:,.0f} ms" if page_ms is not None else "-"
            print(f"{page:<12} {data[page]:>12,.0f} ms {shown:>22}")
        verdict = "OK" if worst <= args.budget_ms else "OVER BUDGET"
        print(f"\nslowest: {worst:,.0f} ms, budget {args.budget_ms:,.0f} ms: {verdict}")
        return 0 if worst <= args.budget_ms else 1


if __name__ == "__main__":
    sys.exit(main())
