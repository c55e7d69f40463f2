"""Benchmark the dashboard's pages on a large records database.

    python -m inspection.dashboard.bench --records 100000 [--browser]

fills a fresh SQLite database (or ``--db URL``) with synthetic records by bulk insert, writes fixture reports
and model metadata, then times (1) each page's data functions, called directly with no cache, and (2) each
whole page script through Streamlit's ``AppTest`` with the query cache cleared, on a running server and on a
fresh one (:func:`time_pages`). Exits 1 when a page's data functions or its whole page on a running server
take longer than the budget (1 s by default).

With ``--browser`` it also starts ``inspection dashboard`` on that data and opens each page once, in a new
headless Chromium session each (Debian's ``chromium`` and ``chromium-driver``), timing navigation until the
page's title and main element are shown and Streamlit is idle: the first render a user waits for on a running
server (:func:`time_first_renders`). That budget is ``--browser-budget-ms`` (2 s by default); a browser's very
first visit, which also loads Streamlit's frontend, is reported beside it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from inspection import paths
from inspection.dashboard import db, fixtures, parts, reports, review, stations, versions

PAGES = ("overview", "noise", "denoisers", "stations", "part_lookup", "models")

# page -> (URL path, title, CSS selector of its main element, how many of them): what a user waits for.
CHART = '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'
MAIN_ELEMENTS: dict[str, tuple[str, str, str, int]] = {
    "overview": ("overview", "Overview", '[data-testid="stMetric"]', 4),
    "noise": ("noise", "Noise", '[data-testid="stImage"] img', 8),
    "denoisers": ("denoisers", "Denoisers", '[data-testid="stImage"] img', 6),
    "stations": ("stations", "Stations", f'{CHART}, [data-testid="stDataFrame"]', 2),  # p-chart and table
    "part_lookup": ("part-lookup", "Part lookup", '[data-testid="stImage"] img', 2),
    "models": ("models", "Models", CHART, 1),
}


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
        windows = stations.window_counts(
            engine, end=span.end, recent=timedelta(hours=24), baseline=timedelta(days=7)
        )
        stations.control_from_counts(windows)  # p-chart and drift share one scan of their windows
        stations.drift_from_stats(stations.stats_from_counts(windows))
        stations.station_ood(engine, stations.models_card(models_dir))
        counts = stations.station_counts(engine, stations.bucket_for(span)[0])  # summary, series and mix
        stations.summary_from_counts(counts)
        stations.timeseries_from_counts(counts)
        stations.noise_mix_from_counts(counts)
        stations.unauthenticated_attempts(engine)

    def part_lookup() -> None:
        stations.list_stations(engine)
        stations.time_span(engine)
        review.kinds_seen(engine)
        query = parts.PartQuery()
        found, _ = parts.query_parts(engine, query), parts.count_parts(engine, query)
        parts.get_part(engine, int(found.iloc[0]["id"]))
        parts.find_parts(engine, part_id="P1-00001*")
        review.count_queue(engine, stations=[], include_labelled=False)

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


def time_pages(env: dict[str, str], repeats: int = 3) -> dict[str, dict[str, float]]:
    """Median wall time (ms) of each whole page script under AppTest, the query cache cleared before each run.

    Two ways: ``running server`` (budgeted), with the counts a running server keeps and appends to
    (``ui.all_counts``, built by one untimed run of the page, as a server builds them from its first session);
    ``fresh server``, with those cleared too, so that the page counts every record itself.
    """
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from inspection.dashboard import ui

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

    def run(page: str) -> float:
        t = time.perf_counter()
        at.switch_page(f"views/{page}.py")
        at.run()
        if at.exception:
            raise RuntimeError(f"page {page} raised: {at.exception[0].value}")
        return (time.perf_counter() - t) * 1000

    out: dict[str, dict[str, float]] = {"running server": {}, "fresh server": {}}
    for page in PAGES:
        run(page)  # untimed: the kept counts are built
        for way, runs in (("running server", []), ("fresh server", [])):
            for _ in range(repeats):
                st.cache_data.clear()
                if way == "fresh server":
                    ui.all_counts.clear()
                runs.append(run(page))
            out[way][page] = statistics.median(runs)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_dashboard(env: dict[str, str], log: Path, args: Sequence[str] = ()) -> Iterator[str]:
    """``inspection dashboard`` on a free loopback port, in its own process group; yields its base URL.

    ``args`` go on the command line after the sources (``--auth-config users.yaml``, say). The whole group is
    stopped on the way out (SIGTERM, then SIGKILL after 15 s).
    """
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("INSPECTION_")} | env
    cmd = [sys.executable, "-m", "inspection.cli", "dashboard", "--host", "127.0.0.1", "--port", str(port),
           "--reports", env["INSPECTION_REPORTS"], "--db", env["INSPECTION_DB"], "--photos", env["INSPECTION_PHOTOS"], *args]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, env=child_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dashboard did not start (exit {proc.poll()}); see {log}")
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _chromium() -> tuple[str, str]:
    browser = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if browser is None or driver is None:
        raise FileNotFoundError(
            "--browser needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        )
    return browser, driver


def _open_browser(browser: str, driver_path: str, profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                "--disable-background-networking", "--window-size=1500,1100", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def _time_render(driver: Any, url: str, page: str, timeout: float) -> float:
    """Milliseconds from navigation until the page's title and main element show and Streamlit is idle."""
    from selenium.webdriver.common.by import By

    _, title, selector, count = MAIN_ELEMENTS[page]
    t = time.perf_counter()
    driver.get(url)
    while True:
        titled = title in [h.text for h in driver.find_elements(By.TAG_NAME, "h1")]
        shown = len(driver.find_elements(By.CSS_SELECTOR, selector)) >= count
        busy = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        if titled and shown and not busy:
            return (time.perf_counter() - t) * 1000
        if time.perf_counter() - t > timeout:
            raise RuntimeError(f"page {page} did not show {count}x {selector} in {timeout:.0f} s")
        time.sleep(0.05)


WARM_UP_PAGE = "part_lookup"  # opened untimed on the running server; it reads no report, so no page's report
# cache is filled by it, and its queries expire (ui.QUERY_TTL_S) before any page is timed


def time_first_renders(env: dict[str, str], root: Path, timeout: float = 60.0) -> dict[str, dict[str, float]]:
    """Each page's first render (ms) in a new browser session, two ways, each page opened once, uncached:

    * ``running server``, the budgeted figure: one ``inspection dashboard`` that has served a session already
      (:data:`WARM_UP_PAGE`, untimed), and one Chromium that opened it, so its cache holds Streamlit's frontend
      as the browser of anyone who opened the dashboard before does. Each page is then opened by navigating to
      its URL, which starts a new Streamlit session, once the query cache's time to live has run out since the
      last, so the page's queries run anew;
    * ``first visit``: a new Chromium with an empty profile per page, on a freshly started server, so the time
      also holds downloading and compiling Streamlit's frontend (on the 2-core development machine a one-line
      Streamlit app takes about 2 s so) and, for the first page, the server's first session.
    """
    from inspection.dashboard.ui import QUERY_TTL_S

    browser, driver_path = _chromium()
    out: dict[str, dict[str, float]] = {"running server": {}, "first visit": {}}
    profiles = Path(tempfile.mkdtemp(prefix="bench-chromium-", dir=root))

    def url(base: str, page: str) -> str:
        return f"{base}/{MAIN_ELEMENTS[page][0]}"

    with running_dashboard(env, root / "dashboard.log") as base:
        driver = _open_browser(browser, driver_path, profiles / "returning")
        try:
            _time_render(driver, url(base, WARM_UP_PAGE), WARM_UP_PAGE, timeout)
            for page in PAGES:
                time.sleep(QUERY_TTL_S + 1)
                out["running server"][page] = _time_render(driver, url(base, page), page, timeout)
        finally:
            driver.quit()
    with running_dashboard(env, root / "dashboard.log") as base:
        for page in PAGES:
            driver = _open_browser(browser, driver_path, profiles / page)
            try:
                out["first visit"][page] = _time_render(driver, url(base, page), page, timeout)
            finally:
                driver.quit()
    shutil.rmtree(profiles, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="inspection-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        url = args.db or f"sqlite:///{root / 'records.db'}"
        if not (args.existing and args.keep):
            _fill(root, url, args.records)
        env = {"INSPECTION_REPORTS": str(root / "reports"), "INSPECTION_DB": url, "INSPECTION_MODELS": str(root / "models"),
               "INSPECTION_PHOTOS": str(root / "photo-store"), "INSPECTION_DASHBOARD_NO_MODELS": "1"}  # fmt: skip
        data = time_data_functions(env, args.repeats)
        full = {} if args.no_apptest else time_pages(env, args.repeats)
        first = time_first_renders(env, root) if args.browser else {}
        worst, worst_browser = _print_table(data, full, first)
        ok = worst <= args.budget_ms and worst_browser <= args.browser_budget_ms
        print(f"\nslowest: {worst:,.0f} ms (budget {args.budget_ms:,.0f} ms)", end="")
        if first:
            print(f"; first render {worst_browser:,.0f} ms (budget {args.browser_budget_ms:,.0f} ms)", end="")
        print(f": {'OK' if ok else 'OVER BUDGET'}")
        return 0 if ok else 1


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--budget-ms", type=float, default=1000.0, help="per-page budget, data and AppTest (default 1000 ms)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per page; the median is shown (default 3)"
    )
    parser.add_argument("--no-apptest", action="store_true", help="time the data functions only")
    parser.add_argument(
        "--browser", action="store_true", help="also time each page's first render in headless Chromium"
    )
    parser.add_argument(
        "--browser-budget-ms",
        type=float,
        default=2000.0,
        help="per-page first-render budget (default 2000 ms)",
    )
    parser.add_argument(
        "--existing",
        action="store_true",
        help="with --keep: reuse the data already there instead of refilling",
    )
    return parser


def _fill(root: Path, url: str, records: int) -> None:
    """Fixture reports, models and photos under ``root``, and ``records`` records in ``url``."""
    fixtures.write_fixture_reports(root / "reports")
    fixtures.write_fixture_models(root / "models")
    photos = fixtures.write_fixture_photos(root / "photos")
    keys = fixtures.store_fixture_photos(photos, root / "photo-store")
    t = time.perf_counter()
    fixtures.fill_fixture_db(url, records, photos=photos, photo_keys=keys)
    print(f"inserted {records:,} records into {url} in {time.perf_counter() - t:.1f} s")


def _print_table(
    data: dict[str, float], full: dict[str, dict[str, float]], first: dict[str, dict[str, float]]
) -> tuple[float, float]:
    """One line a page: data functions, whole page (AppTest) and first render (Chromium) where measured;
    returns the slowest data-or-page time and the slowest first render on a running server."""
    print(f"\n{'':<12} {'':>15} {'whole page (AppTest)':^27}", end="")
    print(f" {'first render (Chromium)':^28}" if first else "")
    print(f"{'page':<12} {'data functions':>15} {'running server':>14} {'fresh server':>12}", end="")
    print(f" {'running server':>15} {'first visit':>12}" if first else "")
    worst = worst_browser = 0.0
    for page in PAGES:
        running_ms = full["running server"][page] if full else None
        worst = max(worst, data[page], running_ms or 0.0)
        shown = [f"{full[way][page]:,.0f} ms" if full else "-" for way in ("running server", "fresh server")]
        print(f"{page:<12} {data[page]:>12,.0f} ms {shown[0]:>14} {shown[1]:>12}", end="")
        if first:
            running, first_visit = first["running server"][page], first["first visit"][page]
            worst_browser = max(worst_browser, running)
            print(f" {running:>12,.0f} ms {first_visit:>9,.0f} ms", end="")
        print()
    return worst, worst_browser


if __name__ == "__main__":
    sys.exit(main())
