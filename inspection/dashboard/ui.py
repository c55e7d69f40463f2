"""Streamlit glue shared by the page scripts: the login gate, cached resources, cached queries, empty states,
error guard.

Engines and the inspection pipeline are cached with ``st.cache_resource`` (one per URL / models folder for
the life of the server); query results with ``st.cache_data`` for a short time, so that flipping between
pages is instant but new records show up within half a minute.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from inspection.dashboard import auth, config, db, parts, reports, review, stations, versions
from inspection.dashboard.drift import DriftFinding
from inspection.dashboard.images import read_gray
from inspection.dashboard.text import escape_markdown
from inspection.results import percent_text
from inspection.store.photos import PhotoStore, open_photo_store
from inspection.store.records import RecordStore

log = logging.getLogger("inspection.dashboard")
QUERY_TTL_S = 30
LOGIN_FIELDS = {"Form name": "Sign in to the inspection dashboard"}


@contextmanager
def guard(what: str = "this page") -> Iterator[None]:
    """Run a page body; any error becomes one short ``st.error`` line instead of a traceback on screen."""
    try:
        yield
    except Exception as e:
        log.exception("dashboard error while drawing %s", what)
        first = str(e).splitlines()[0] if str(e) else ""
        st.error(
            f"Could not draw {what}: {type(e).__name__}{': ' + escape_markdown(first) if first else ''}. "
            "The full error is in the server log.",
            icon=":material/error:",
        )


def empty_state(message: str, command: str | None = None) -> None:
    """A friendly note when a source is missing or empty, with the command that fills it."""
    st.info(message, icon=":material/info:")
    if command:
        st.code(command, language="bash")


def show_notes(notes: list[stations.Note]) -> None:
    """Each note in its style: green only for a verdict, blue for too little data to reach one."""
    for note in notes:
        if note.kind == "success":
            st.success(note.text, icon=":material/check_circle:")
        else:
            st.info(note.text, icon=":material/hourglass_empty:")


def sources() -> config.Sources:
    return config.sources()


def sidebar(src: config.Sources) -> None:
    """Show where the data comes from, so an engineer knows what they are looking at."""
    with st.sidebar:
        st.caption("Data sources")
        st.caption(f"Reports: `{src.reports_dir}`")
        st.caption(f"Records: `{config.redact_url(src.db_url)}`")
        st.caption(f"Photos: `{config.redact_url(src.photos)}`")
        st.caption(f"Models: `{src.models_dir}`")


# --- login ------------------------------------------------------------------------------------------------


def request_headers() -> Mapping[str, str]:
    """The headers of the browser's request for this session (empty under AppTest)."""
    return st.context.headers


@st.cache_resource(show_spinner=False)
def _login_config(path: str, mtime: float) -> auth.LoginConfig:
    return auth.load_login_config(path)


@st.cache_resource(show_spinner=False)
def _sign_in_throttle() -> auth.SignInThrottle:
    return auth.SignInThrottle()


def _client_address() -> str:
    """The browser's address as the server sees it (``unknown`` where there is none, as under AppTest)."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "unknown"


def _refuse(message: str) -> bool:
    st.error(message, icon=":material/lock:")
    return False


def _header_login(header: str) -> bool:
    user = auth.header_user(request_headers(), header)
    if user is None:
        log.warning("dashboard request without the %s header refused", header)
        return _refuse(
            f"Sign in through the login proxy: this request came without the `{header}` header it sets."
        )
    st.sidebar.caption(f"Signed in as {escape_markdown(user)}")
    return True


def _form_login(path: Path) -> bool:
    import streamlit_authenticator as stauth  # heavy, and only needed when a login file is configured

    try:
        cfg = _login_config(str(path), path.stat().st_mtime)
    except (OSError, auth.AuthConfigError) as e:
        log.error("login config unusable: %s", e)
        return _refuse(f"The dashboard's login is misconfigured, so nothing is shown: {escape_markdown(e)}")
    # A copy per run: the library writes login state into the credentials it is given.
    authenticator = stauth.Authenticate(
        copy.deepcopy(cfg.credentials),
        cfg.cookie_name,
        cfg.cookie_key,
        cfg.cookie_expiry_days,
        auto_hash=False,
    )
    was_in = bool(st.session_state.get("authentication_status"))
    throttle, client = _sign_in_throttle(), _client_address()
    wait = 0.0 if was_in else throttle.wait_s(client)
    if wait:
        log.warning("dashboard sign-in from %s refused: too many failed sign-ins", client)
        return _refuse(
            f"Too many failed sign-ins from this address: try again in {max(1, round(wait / 60))} minute(s)."
        )
    try:
        authenticator.login(location="main", fields=LOGIN_FIELDS)
    except stauth.LoginError as e:  # e.g. a re-login cookie for a user no longer in the file
        log.warning("dashboard sign-in refused: %s", e)
        return _refuse(
            f"Sign-in refused: {escape_markdown(e)}. Clear this site's cookies to sign in as another user."
        )
    status = st.session_state.get("authentication_status")
    if status and not was_in and cfg.cookie_expiry_days == 0:
        st.rerun()  # drop the login form drawn in this run
    # With a re-login cookie, no rerun here: it would drop the component that stores the cookie. The browser
    # reruns the script once the cookie is stored, and that run no longer draws the form.
    if status and st.session_state.get("sign_out"):
        # "Sign out" was pressed: sign out before drawing anything, so that this run shows neither "Signed in as"
        # nor the button, only the form again (in this run, so that the cookie's deletion reaches the browser).
        authenticator.logout(location="unrendered")
        authenticator.login(location="main", fields=LOGIN_FIELDS)
        return False
    if status:
        name = st.session_state.get("name") or st.session_state.get("username")
        st.sidebar.caption(f"Signed in as {escape_markdown(name)}")
        authenticator.logout("Sign out", location="sidebar", key="sign_out")
        return True
    if status is False:
        throttle.failed(client)
        log.warning("dashboard sign-in from %s failed", client)
        st.error("Username or password is incorrect.", icon=":material/lock:")
        # Counted once: the next run shows the form afresh, so a rerun without a new attempt is not one.
        st.session_state["authentication_status"] = None
    return False


def signed_in_user() -> str | None:
    """The signed-in user's name (the login file's user name, or the proxy's header); None without a login."""
    settings = config.auth_settings()
    if settings.header is not None:
        return auth.header_user(request_headers(), settings.header)
    if settings.config_path is not None and st.session_state.get("authentication_status"):
        return st.session_state.get("username") or None
    return None


def server_address() -> str | None:
    """The address the Streamlit server listens on (``inspection dashboard --host``); None when unset."""
    return st.get_option("server.address") or None


def signed_in() -> bool:
    """Whether this session has already signed in (draws nothing; :func:`require_login` does the signing in)."""
    settings = config.auth_settings()
    if settings.header is not None:
        return auth.header_user(request_headers(), settings.header) is not None
    if settings.config_path is not None:  # a run where "Sign out" was pressed is signed out already
        return bool(st.session_state.get("authentication_status")) and not st.session_state.get("sign_out")
    return True


def require_login() -> bool:
    """Whether this session may see the pages; when not, the login form (or why not) is what it sees.

    With a login config file the session signs in with a user name and password (or the signed re-login
    cookie); with a trusted header the proxy's header names the user; with neither, everyone may see the pages
    (``inspection dashboard`` allows that only on loopback or with ``--insecure-no-auth``).
    """
    settings = config.auth_settings()
    if settings.header is not None:
        return _header_login(settings.header)
    if settings.config_path is not None:
        return _form_login(settings.config_path)
    return True


# --- database ---------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def engine(url: str) -> Engine:
    """One engine (and connection pool) per database URL for the whole server."""
    return db.open_engine(url)


def require_db(src: config.Sources) -> Engine | None:
    """The engine when the database holds records; otherwise show the empty state and return None."""
    try:
        eng = engine(src.db_url)
    except db.DatabaseUnavailable as e:
        empty_state(str(e), "inspection score --db URL photos/*.png   # or: inspection serve --db URL")
        return None
    status = _db_status(src.db_url)
    if not status.ok:
        empty_state(
            status.message, "inspection score --db URL photos/*.png   # or: inspection serve --db URL"
        )
        return None
    return eng


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def _db_status(url: str) -> db.DbStatus:
    return db.db_status(engine(url))


def station_counts(url: str, bucket: int, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """The one grouped scan behind the summary, the time series and the noise mix (shared through the cache).

    Over all records the counts are kept for the server's life and brought up to date with the records added
    since (:class:`stations.AppendedCounts`); like every query result they are read again after 30 s, so the
    figures of one page agree with each other.
    """
    return (
        _all_station_counts(url, bucket)
        if start is None and end is None
        else _range_counts(url, bucket, start, end)
    )


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def _all_station_counts(url: str, bucket: int) -> pd.DataFrame:
    return all_counts(url, bucket).read()


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def _range_counts(url: str, bucket: int, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    return stations.station_counts(engine(url), bucket, start=start, end=end)


@st.cache_resource(show_spinner=False, max_entries=8)
def all_counts(url: str, bucket: int, keep_s: float | None = None) -> stations.AppendedCounts:
    return stations.AppendedCounts(engine(url), bucket, None if keep_s is None else timedelta(seconds=keep_s))


def _window_base(url: str) -> stations.KeptCounts | None:
    """The hourly counts the drift and p-chart windows are summed from, on SQLite (see :func:`window_counts`).

    Read at each (cached) window count, not cached apart: counts older than the time span's newest record would
    miss the records between them in the buckets they sum.
    """
    counts = all_counts(url, stations.WINDOW_BUCKET_S, stations.WINDOW_KEEP.total_seconds())
    return counts.kept() if counts.incremental else None


def all_records_bucket(url: str) -> int | None:
    """The bucket width (s) of the "All records" range, which the summary counts use too; None without records."""
    span = time_span(url)
    return None if span is None else stations.bucket_for(span)[0]


_COUNTING: set[str] = set()  # databases whose all-records counts this server has started to build
_COUNTING_LOCK = threading.Lock()


def start_counting(url: str) -> threading.Thread | None:
    """From the server's first session on a SQLite store, count all its records in the background, once.

    The Stations page then finds its all-records counts and the hourly counts of its windows built (a full
    scan each, about 0.2 s per 100,000 records here) and adds only the records appended since
    (:class:`stations.AppendedCounts`). Nothing is done on PostgreSQL, which counts afresh; a store that is not
    there yet, holds no records or cannot be read is tried again by a later session.
    """
    with _COUNTING_LOCK:
        if url in _COUNTING:
            return None
        _COUNTING.add(url)

    def build() -> None:
        done = False
        try:
            if engine(url).dialect.name != "sqlite":
                done = True
            elif _db_status(url).ok and (bucket := all_records_bucket(url)) is not None:
                all_counts(url, bucket).read()
                _window_base(url)
                done = True
        finally:
            if not done:  # no store, no records or an error: a later session tries again
                with _COUNTING_LOCK:
                    _COUNTING.discard(url)

    return in_session_thread(build, name="station-counts")


def in_session_thread(call: Callable[[], object], name: str) -> threading.Thread:
    """Start ``call`` in a daemon thread carrying this session's script context (Streamlit's caches ask for it).

    An exception is logged, not raised: the page makes the same calls itself and shows any error there.
    """
    ctx = get_script_run_ctx()

    def run() -> None:
        add_script_run_ctx(threading.current_thread(), ctx)
        try:
            call()
        except Exception:  # noqa: BLE001  (raised again, and shown, by the page's own call)
            log.debug("%s failed", name, exc_info=True)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def station_summary(url: str) -> pd.DataFrame:
    bucket = all_records_bucket(url)
    if bucket is None:
        return pd.DataFrame(columns=stations.SUMMARY_COLUMNS)
    # The same bucket as the page's "All records" charts, so that all three read one cached scan.
    return stations.summary_from_counts(station_counts(url, bucket, None, None))


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def time_span(url: str) -> stations.TimeSpan | None:
    return stations.time_span(engine(url))


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def list_stations(url: str) -> list[str]:
    return stations.list_stations(engine(url))


def station_timeseries(url: str, bucket: int, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    return stations.timeseries_from_counts(station_counts(url, bucket, start, end))


def noise_mix(url: str, bucket: int, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    return stations.noise_mix_from_counts(station_counts(url, bucket, start, end))


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def window_counts(url: str, recent_h: float, baseline_d: float) -> pd.DataFrame | None:
    """The counts behind both the drift rule and the p-chart (shared through the cache); None without records.

    On SQLite they are summed from the server's hourly counts, kept for the last five weeks and brought up to
    date like the all-records counts, and only the three hours the windows' edges cut are counted from the
    records: about 0.1 s less per page at 100,000 records than counting the windows' records anew.
    """
    span = time_span(url)
    if span is None:
        return None
    return stations.window_counts(
        engine(url),
        end=span.end,
        recent=timedelta(hours=recent_h),
        baseline=timedelta(days=baseline_d),
        base=_window_base(url),
    )


def prefetch(*calls: Callable[[], object]) -> None:
    """Run cached queries side by side and wait, so the page's own calls find their results in the cache.

    A database driver waits for the database without holding the GIL, so independent scans overlap. A call
    that fails is left alone: the page's own call runs it again and shows its error.
    """
    for thread in [in_session_thread(call, name="prefetch") for call in calls]:
        thread.join()


def prefetch_stations(url: str, recent_h: float, baseline_d: float, models_dir: str) -> None:
    """The Stations page's three scans at once: its windows, its OOD shares and its all-records counts."""
    bucket = all_records_bucket(url)
    if bucket is not None:
        prefetch(
            lambda: window_counts(url, recent_h, baseline_d),
            lambda: station_ood(url, models_dir),
            lambda: station_counts(url, bucket, None, None),
        )


def station_drift(url: str, recent_h: float, baseline_d: float) -> list[DriftFinding]:
    counts = window_counts(url, recent_h, baseline_d)
    return [] if counts is None else stations.drift_from_stats(stations.stats_from_counts(counts))


def defect_control(url: str, recent_h: float, baseline_d: float) -> stations.DefectControl:
    counts = window_counts(url, recent_h, baseline_d)
    return stations.DefectControl({}, []) if counts is None else stations.control_from_counts(counts)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def station_ood(url: str, models_dir: str) -> pd.DataFrame:
    return stations.station_ood(engine(url), stations.models_card(models_dir))


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def find_parts(
    url: str, part_id: str | None, station_ids: tuple[str, ...], start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    return parts.find_parts(engine(url), part_id=part_id, stations=list(station_ids), start=start, end=end)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def query_parts(url: str, query: parts.PartQuery) -> tuple[pd.DataFrame, int]:
    """The newest records matching ``query`` (at most :data:`parts.SHOWN_ROWS`) and the exact count."""
    eng = engine(url)
    return parts.query_parts(eng, query), parts.count_parts(eng, query)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def defect_kinds(url: str) -> list[str]:
    return review.kinds_seen(engine(url))


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def unauthenticated_attempts(url: str, start: datetime | None, end: datetime | None) -> int:
    return stations.unauthenticated_attempts(engine(url), start=start, end=end)


def get_part(url: str, record_id: int) -> dict[str, Any] | None:
    return parts.get_part(engine(url), record_id)


@st.cache_resource(show_spinner=False)
def record_store(url: str) -> RecordStore:
    """The records store, for the one write the dashboard makes: labels from the review queue.

    Opened without migrating: the dashboard never changes the schema (``inspection db upgrade`` does).
    """
    return RecordStore(url, migrate=False)


@st.cache_resource(show_spinner=False)
def photo_store(location: str, db_url: str) -> tuple[PhotoStore | None, str]:
    """The photo store at ``location``, opened once; or None and why it could not be opened."""
    try:
        eng = engine(db_url) if location == "db" else None
        return open_photo_store(location, engine=eng), ""
    except (ValueError, OSError, ImportError, db.DatabaseUnavailable) as e:
        log.warning("photo store %s cannot be opened: %s", config.redact_url(location), e)
        return None, f"the photo store {config.redact_url(location)} cannot be opened ({e})"


def record_photo(src: config.Sources, record: dict[str, Any]) -> parts.Photo:
    """The record's photo from the photo store (by ``image_key``), else from its old ``image_path``."""
    store, why = photo_store(src.photos, src.db_url)
    return parts.load_photo(record, store, store_problem=why)


# --- reports and models -----------------------------------------------------------------------------------


def report_refs(src: config.Sources) -> list[reports.ReportRef]:
    return reports.list_reports(src.reports_dir)


@st.cache_data(show_spinner=False)
def _load_report(path: str, mtime: float) -> dict[str, Any]:
    return reports.load_report(path)


def load_report(ref: reports.ReportRef) -> dict[str, Any]:
    """A report, re-read only when its file changed."""
    return _load_report(str(ref.path), (ref.path / "report.json").stat().st_mtime)


def require_reports(src: config.Sources) -> list[reports.ReportRef] | None:
    """The report folders, newest first; or the empty state and None when there are none."""
    refs = report_refs(src)
    if not refs:
        empty_state(
            f"No evaluation report in `{src.reports_dir}` yet. {reports.FILL_HINT}",
            f"inspection demo --reports {src.reports_dir}",
        )
        return None
    return refs


def pick_report(refs: list[reports.ReportRef], *, key: str, label: str = "Report") -> reports.ReportRef:
    """A selectbox of reports in the sidebar, newest first (the default)."""
    ids = [r.id for r in refs]
    chosen = st.sidebar.selectbox(label, ids, index=0, key=key)
    return refs[ids.index(chosen)]


@st.cache_resource(show_spinner=False)
def pipeline(models_dir: str) -> tuple[Any | None, str]:
    """The inspection pipeline for ``models_dir``, loaded once; or None and why it could not be loaded."""
    try:
        from inspection.pipeline import InspectionPipeline
    except ImportError as e:
        return None, f"the pipeline is not available ({e})"
    try:
        return InspectionPipeline.from_dir(models_dir), ""
    except Exception as e:
        return None, f"the models in {models_dir} could not be loaded ({type(e).__name__}: {e})"


def pipeline_enabled() -> bool:
    """Whether the Part lookup page may load models (switched off in tests with INSPECTION_DASHBOARD_NO_MODELS)."""
    return os.environ.get("INSPECTION_DASHBOARD_NO_MODELS", "") not in ("1", "true", "yes")


def models_frame(src: config.Sources, eng: Engine | None) -> pd.DataFrame:
    frames = [versions.checkpoints_frame(src.models_dir)]
    if eng is not None:
        frames.append(versions.store_versions_frame(eng))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return versions.checkpoints_frame(src.models_dir)
    return versions.merge_versions(pd.concat(frames, ignore_index=True))  # each version once


def optional_engine(src: config.Sources) -> Engine | None:
    """The engine if the database exists and has the store's tables, else None (no empty state shown)."""
    try:
        return engine(src.db_url)
    except db.DatabaseUnavailable:
        return None


# --- images -----------------------------------------------------------------------------------------------


def image(path: Path | None, caption: str) -> np.ndarray | None:
    """Show a gray image file with a caption, or a note when it is missing; returns the pixels."""
    gray = read_gray(path) if path else None
    if gray is None:
        st.caption(f"{caption}: not in this report")
        return None
    st.image(gray, caption=caption, width="stretch")
    return gray


def gallery_heat_map(entry: reports.GalleryEntry) -> None:
    """The defect model's heat map over a report's denoised example photo, or a note for older reports."""
    st.markdown("**Where the defect model looked** (on the denoised photo)")
    if entry.heat is None:
        st.caption("This report has no heat map (reports written before 2026-11-27 lack it).")
        return
    verdict = "" if entry.p_defective is None else f"; P(defective) {entry.p_defective:.2f}"
    st.image(
        str(entry.heat),
        caption=f"LayerCAM of the defect model, red = most evidence for 'defective'{verdict}",
        width=420,
    )


def percent(value: float | None) -> str:
    return percent_text(None if value is None or pd.isna(value) else float(value), missing="n/a")


def points(value: float | None) -> str | None:
    """A change in accuracy as signed percentage points (``+2.4 pts``), for ``st.metric``'s delta."""
    return None if value is None or pd.isna(value) else f"{value * 100:+.1f} pts"
