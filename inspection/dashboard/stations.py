"""What each station is seeing, aggregated in SQL so a page stays fast with many records.

Every query groups in the database (by station, time bucket and noise type) and returns at most a few
thousand rows, whatever the table size; the ``(station_id, created_at)`` index serves the time filters.

A station's share of out-of-distribution photos (:func:`station_ood`) is read over its newest records, on the
same index, one station at a time: a few hundred index entries each, whatever the table size.

Attempts the service refused for a missing or wrong API key are stored under the pseudo-station
:data:`UNAUTHENTICATED_STATION`. They belong to no station: every station query leaves them out, and
:func:`unauthenticated_attempts` counts them for the page's one separate line.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy import ColumnElement, Engine, Table, and_, case, func, inspect, or_, select

from inspection.dashboard.db import time_bucket
from inspection.dashboard.drift import DriftFinding, WindowStats, detect_drift
from inspection.dashboard.spc import DefectFinding, Reference, check_stations, station_references
from inspection.dashboard.text import escape_markdown
from inspection.store.models import STATUS_OK, Inspection
from inspection.store.records import ood_share_query

T = cast(Table, Inspection.__table__)
# The same value as inspection.ingest.ids.UNAUTHENTICATED_STATION: not a valid station id, so no real
# station can own it. Kept here so the dashboard reads any database without importing the service.
UNAUTHENTICATED_STATION = "(unauthenticated)"
REAL_STATION = T.c.station_id != UNAUTHENTICATED_STATION
BUCKETS: tuple[tuple[int, str], ...] = (
    (15 * 60, "15 minutes"),
    (3600, "hour"),
    (6 * 3600, "6 hours"),
    (86400, "day"),
    (7 * 86400, "week"),
)


@dataclass(frozen=True)
class TimeSpan:
    """First and last record time (UTC) in the database, and how many records and stations lie between."""

    start: datetime
    end: datetime
    records: int = 0
    stations: int = 0


SUMMARY_COLUMNS = [
    "station_id",
    "records",
    "scored",
    "rejected",
    "defective",
    "defect_rate",
    "mean_confidence",
    "first",
    "last",
]


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def time_span(engine: Engine) -> TimeSpan | None:
    """The time range the stations' records cover, or None when there are none.

    The first and last times are two lookups in the ``created_at`` index; the records and stations are counted
    in one pass over the ``(station_id, created_at)`` index.
    """
    first = select(func.min(T.c.created_at)).where(REAL_STATION).scalar_subquery()
    last = select(func.max(T.c.created_at)).where(REAL_STATION).scalar_subquery()
    per_station = select(func.count()).where(REAL_STATION).group_by(T.c.station_id)
    with engine.connect() as conn:
        start, end = (_utc(v) for v in conn.execute(select(first, last)).one())
        records = conn.execute(per_station).scalars().all()
    return None if start is None or end is None else TimeSpan(start, end, sum(records), len(records))


def choose_bucket(
    span: timedelta, max_buckets: int = 200, *, per_station: int | None = None, min_per_bucket: int = 10
) -> tuple[int, str]:
    """The finest bucket (seconds, name) that splits ``span`` into at most ``max_buckets`` points.

    With ``per_station`` (records per station in the span) the bucket is also wide enough to hold about
    ``min_per_bucket`` records, so that rates and shares are not computed from one or two parts.
    """
    for seconds, name in BUCKETS:
        n = span.total_seconds() / seconds
        if n <= max_buckets and (per_station is None or per_station / max(n, 1.0) >= min_per_bucket):
            return seconds, name
    return BUCKETS[-1]


def bucket_for(span: TimeSpan, window: timedelta | None = None) -> tuple[int, str]:
    """The time bucket (seconds, name) for charts over the last ``window`` of ``span`` (default all of it).

    :func:`choose_bucket` with each station's share of the records, scaled to the window.
    """
    full = span.end - span.start
    window = full if window is None else window
    share = min(1.0, window / full) if full else 1.0
    return choose_bucket(window, per_station=int(span.records / max(1, span.stations) * share))


def list_stations(engine: Engine) -> list[str]:
    """Station ids in the database, sorted (unauthenticated attempts are not a station)."""
    with engine.connect() as conn:
        ids = conn.execute(select(T.c.station_id).where(REAL_STATION).distinct()).scalars()
        return sorted(str(s) for s in ids)


def _filters(
    stations: list[str] | None, start: datetime | None, end: datetime | None
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [REAL_STATION]
    if stations:
        conds.append(T.c.station_id.in_(stations))
    if start is not None:
        conds.append(T.c.created_at >= start)
    if end is not None:
        conds.append(T.c.created_at <= end)
    return conds


COUNT_COLUMNS = [
    "bucket", "station_id", "status", "verdict", "noise_type", "n", "conf_sum", "conf_n", "first", "last",
]  # fmt: skip


def station_counts(
    engine: Engine,
    bucket_seconds: int,
    *,
    stations: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    ids: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Records per time bucket, station, status, verdict and noise type, in one grouped scan.

    The summary, the time series and the noise mix are all sums over these groups
    (:func:`summary_from_counts`, :func:`timeseries_from_counts`, :func:`noise_mix_from_counts`), so a page
    that shows all three reads the table once. A few thousand rows at most: about 200 buckets x stations x
    (2 verdicts x 4 noise types + rejections).

    Returns:
        Columns :data:`COUNT_COLUMNS`: ``bucket`` (Unix seconds), the group keys (None where NULL), ``n``,
        ``conf_sum`` and ``conf_n`` (sum and count of the known noise confidences), ``first`` and ``last``.
        With ``ids`` ``(after, upto)``, only records with ``after < id <= upto`` are counted
        (:class:`AppendedCounts`).
    """
    bucket = time_bucket(engine, T.c.created_at, bucket_seconds).label("bucket")
    stmt = (
        select(
            bucket,
            T.c.station_id,
            T.c.status,
            T.c.verdict,
            T.c.noise_type,
            func.count().label("n"),
            func.sum(T.c.noise_probability).label("conf_sum"),
            func.count(T.c.noise_probability).label("conf_n"),
            func.min(T.c.created_at).label("first"),
            func.max(T.c.created_at).label("last"),
        )
        .where(*_filters(stations, start, end), *([T.c.id > ids[0], T.c.id <= ids[1]] if ids else []))
        .group_by(bucket, T.c.station_id, T.c.status, T.c.verdict, T.c.noise_type)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame(rows, columns=COUNT_COLUMNS)
    frame["bucket"] = frame["bucket"].astype("int64")
    frame["conf_sum"] = frame["conf_sum"].astype(float).fillna(0.0)
    return frame


COUNT_KEYS = ["bucket", "station_id", "status", "verdict", "noise_type"]


def merge_counts(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Two :func:`station_counts` frames over disjoint records as one: the counts of their union."""
    if old.empty or new.empty:
        return new if old.empty else old
    both = pd.concat([old, new], ignore_index=True)
    merged = both.groupby(COUNT_KEYS, dropna=False, sort=False).agg(
        n=("n", "sum"), conf_sum=("conf_sum", "sum"), conf_n=("conf_n", "sum"), first=("first", "min"),
        last=("last", "max"),
    )  # fmt: skip
    return merged.reset_index()[COUNT_COLUMNS]


@dataclass(frozen=True)
class KeptCounts:
    """:func:`station_counts` rows over every record, whole from bucket ``complete_from`` on (None: all)."""

    counts: pd.DataFrame
    bucket_seconds: int
    complete_from: int | None = None


def bucket_of(time: datetime, seconds: int) -> int:
    """The ``seconds``-wide bucket (Unix seconds of its start) that ``time`` falls in, as the SQL buckets."""
    return int(unix_seconds(time) // seconds) * seconds


def unix_seconds(time: datetime) -> float:
    """Seconds since the epoch, a naive time taken as UTC (as the store keeps times)."""
    return (time if time.tzinfo else time.replace(tzinfo=UTC)).timestamp()


class AppendedCounts:
    """:func:`station_counts` over every record, brought up to date by counting only the records added since.

    Records are only ever appended (never updated in a counted column, never deleted), so the counts of the
    records up to id ``n`` stay right, and a refresh counts ``id > n`` alone: one indexed range, however many
    records came before. That holds on SQLite, whose single writer commits ids in order. Not on PostgreSQL,
    where a transaction holding a lower id can commit after a higher one was read: there :meth:`read` counts
    everything, every time. A SQLite file replaced under the server (another file at the path, or record ``n``
    gone or another) is counted anew, through new connections.

    With ``keep``, buckets older than ``keep`` before the newest record are dropped, so that the counts of a
    long history stay small; :meth:`kept` says from which bucket on they are whole.
    """

    def __init__(self, engine: Engine, bucket_seconds: int, keep: timedelta | None = None) -> None:
        self.engine, self.bucket_seconds, self.keep = engine, bucket_seconds, keep
        self.incremental = engine.dialect.name == "sqlite"
        self.file = self._file_identity()
        self._reset()
        self.lock = threading.Lock()

    def _file_identity(self) -> tuple[int, int] | None:
        path = self.engine.url.database if self.incremental else None
        try:
            st = os.stat(path) if path and path != ":memory:" else None
        except OSError:
            return None
        return None if st is None else (st.st_dev, st.st_ino)

    def _reset(self) -> None:
        self.counts, self.upto, self.mark = pd.DataFrame(columns=COUNT_COLUMNS), 0, None
        self.latest: pd.Timestamp | None = None  # the newest record time counted (with keep)
        self.complete_from: int | None = None

    def _created_at(self, conn: Any, record: int) -> Any:
        return conn.execute(select(T.c.created_at).where(T.c.id == record)).scalar()

    def read(self) -> pd.DataFrame:
        return self.kept().counts

    def kept(self) -> KeptCounts:
        if not self.incremental:
            return KeptCounts(station_counts(self.engine, self.bucket_seconds), self.bucket_seconds)
        with self.lock:
            file = self._file_identity()
            if file != self.file:  # another file at the path: pooled connections still read the old one
                self.engine.dispose()
                self.file = file
                self._reset()
            with self.engine.connect() as conn:
                newest = conn.execute(select(func.max(T.c.id))).scalar() or 0
                if self._created_at(conn, self.upto) != self.mark or newest < self.upto:
                    self._reset()
            if newest > self.upto:
                new = station_counts(self.engine, self.bucket_seconds, ids=(self.upto, newest))
                with self.engine.connect() as conn:
                    self.counts, self.upto = merge_counts(self.counts, new), newest
                    self.mark = self._created_at(conn, newest)
                self._drop_old(new)
            return KeptCounts(self.counts.copy(), self.bucket_seconds, self.complete_from)

    def _drop_old(self, new: pd.DataFrame) -> None:
        """With ``keep``: drop the buckets older than ``keep`` before the newest record time counted so far."""
        if self.keep is None or new.empty:
            return
        latest = pd.to_datetime(new["last"], utc=True).max()
        self.latest = latest if self.latest is None else max(self.latest, latest)
        horizon = bucket_of(self.latest - self.keep, self.bucket_seconds)
        self.complete_from = max(horizon, self.complete_from or horizon)
        self.counts = self.counts[self.counts["bucket"] >= self.complete_from].reset_index(drop=True)


def _tallies(counts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Scored, rejected and defective records and mean confidence per ``keys``, as the SQL aggregates were."""
    ok = counts["status"] == STATUS_OK
    tally = counts[keys].assign(
        records=counts["n"],
        scored=counts["n"].where(ok, 0),
        rejected=counts["n"].where(~ok, 0),
        defective=counts["n"].where(counts["verdict"] == "defective", 0),
        conf_sum=counts["conf_sum"],
        conf_n=counts["conf_n"],
    )
    out = tally.groupby(keys, sort=True).sum().reset_index()
    for col in ("records", "scored", "rejected", "defective", "conf_n"):
        out[col] = out[col].astype("int64")
    out["mean_confidence"] = out["conf_sum"] / out["conf_n"].where(out["conf_n"] > 0)
    out["defect_rate"] = out["defective"] / out["scored"].where(out["scored"] > 0)
    return out


def summary_from_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """:func:`station_summary` from :func:`station_counts` rows (any bucket width)."""
    if counts.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    frame = _tallies(counts, ["station_id"])
    times = counts[["station_id"]].assign(
        first=pd.to_datetime(counts["first"], utc=True),  # naive times are UTC
        last=pd.to_datetime(counts["last"], utc=True),
    )
    times = times.groupby("station_id").agg(first=("first", "min"), last=("last", "max"))
    frame = frame.merge(times, left_on="station_id", right_index=True)
    return frame[SUMMARY_COLUMNS].reset_index(drop=True)


def station_summary(engine: Engine) -> pd.DataFrame:
    """One row per station: records, scored, rejected, defect rate, mean noise confidence, first and last record."""
    span = time_span(engine)
    if span is None:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return summary_from_counts(station_counts(engine, bucket_for(span)[0]))


TIMESERIES_COLUMNS = [
    "time",
    "station_id",
    "scored",
    "rejected",
    "defective",
    "defect_rate",
    "mean_confidence",
]


def timeseries_from_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """:func:`station_timeseries` from :func:`station_counts` rows."""
    if counts.empty:
        return pd.DataFrame(columns=TIMESERIES_COLUMNS)
    frame = _tallies(counts, ["bucket", "station_id"])
    frame["time"] = pd.to_datetime(frame["bucket"], unit="s", utc=True)
    return frame[TIMESERIES_COLUMNS]


def station_timeseries(
    engine: Engine,
    bucket_seconds: int,
    *,
    stations: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Parts scored, defect rate and mean noise confidence per station and time bucket.

    Returns columns ``time (UTC), station_id, scored, rejected, defective, defect_rate, mean_confidence``.
    """
    counts = station_counts(engine, bucket_seconds, stations=stations, start=start, end=end)
    return timeseries_from_counts(counts)


MIX_COLUMNS = ["time", "station_id", "noise_type", "n", "share"]


def noise_mix_from_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """:func:`noise_mix_timeseries` from :func:`station_counts` rows."""
    scored = counts[(counts["status"] == STATUS_OK) & counts["noise_type"].notna()]
    if scored.empty:
        return pd.DataFrame(columns=MIX_COLUMNS)
    frame = scored.groupby(["bucket", "station_id", "noise_type"], sort=True)["n"].sum().reset_index()
    frame["n"] = frame["n"].astype("int64")
    frame["time"] = pd.to_datetime(frame["bucket"], unit="s", utc=True)
    frame["share"] = frame["n"] / frame.groupby(["bucket", "station_id"])["n"].transform("sum")
    return frame[MIX_COLUMNS]


def noise_mix_timeseries(
    engine: Engine,
    bucket_seconds: int,
    *,
    stations: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Scored photos per noise type, station and time bucket, with each type's share of the bucket.

    Returns columns ``time (UTC), station_id, noise_type, n, share``.
    """
    counts = station_counts(engine, bucket_seconds, stations=stations, start=start, end=end)
    return noise_mix_from_counts(counts)


OOD_COLUMNS = ["station_id", "ood_photos", "ood_flagged", "ood_share", "ood_warning"]


def models_card(models_dir: str | Path) -> dict[str, Any]:
    """The card (``card.json``) of the live bundle under ``models_dir``: what its models were trained on.

    Read as JSON, as the Models page reads cards (:mod:`inspection.dashboard.cards`): loading the bundle would
    import torch, seconds of a page's first render, for one flag. Empty when there is none to read (a models
    folder from before bundles, or no models here); the warnings then name no training data.
    """
    from inspection.dashboard.cards import BUNDLES_DIR, CARD_FILE, LIVE_FILE, PIPELINE_FILE

    root = Path(models_dir).expanduser()
    if (root / PIPELINE_FILE).is_file():
        folder = root
    else:
        try:
            live = (root / LIVE_FILE).read_text().strip()
        except OSError:
            return {}  # no bundle: an old models folder has no card
        if not live or "/" in live or live.startswith("."):
            return {}
        folder = root / BUNDLES_DIR / live
    try:
        card = json.loads((folder / CARD_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def station_ood(
    engine: Engine, card: dict[str, Any] | None = None, *, last: int | None = None
) -> pd.DataFrame:
    """Per station, how many of its newest photos lie beyond the models' range, and the warning that earns.

    Args:
        card: the bundle card the warning names the training data from (:func:`models_card`).
        last: how many of each station's newest records with a known OOD flag to look at; default
            :data:`inspection.ood.WARN_WINDOW`, as the service's ``/v1/stations/{id}/drift``.

    Returns:
        Columns :data:`OOD_COLUMNS`: ``ood_photos`` (records with a known flag, at most ``last``), ``ood_flagged``,
        ``ood_share`` (NaN without photos) and ``ood_warning`` (:func:`inspection.ood.station_warning`, or
        None). Empty for a database from before the flag (migration 0005).
    """
    from inspection.ood import WARN_WINDOW, station_warning  # loads torch: only when the page asks

    if "ood" not in {c["name"] for c in inspect(engine).get_columns(T.name)}:
        return pd.DataFrame(columns=OOD_COLUMNS)
    last = WARN_WINDOW if last is None else last
    rows = []
    with engine.connect() as conn:
        for station in list_stations(engine):
            flagged, photos = conn.execute(ood_share_query(station, last)).one()
            rows.append({
                "station_id": station,
                "ood_photos": int(photos),
                "ood_flagged": int(flagged),
                "ood_share": flagged / photos if photos else float("nan"),
                "ood_warning": station_warning(int(flagged), int(photos), card),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=OOD_COLUMNS)


def ood_warning(station_id: str, warning: str) -> str:
    """The Stations page's line for a station out of the models' range, Markdown-safe (the station id is
    caller-supplied text; the warning is :func:`inspection.ood.station_warning`'s own)."""
    return f"**{escape_markdown(station_id)}**: {warning}."


def unauthenticated_attempts(
    engine: Engine, *, start: datetime | None = None, end: datetime | None = None
) -> int:
    """How many requests the service refused for a missing or wrong API key between ``start`` and ``end``."""
    conds: list[ColumnElement[bool]] = [T.c.station_id == UNAUTHENTICATED_STATION]
    if start is not None:
        conds.append(T.c.created_at >= start)
    if end is not None:
        conds.append(T.c.created_at <= end)
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(T).where(*conds)).scalar_one())


def unauthenticated_line(count: int) -> str:
    """The Stations page's one line about refused requests (they count for no station)."""
    attempts = "attempt" if count == 1 else "attempts"
    return (
        f"{count:,} unauthenticated {attempts} in the window (requests with a missing or wrong API key; "
        "counted for no station)."
    )


def drift_warning(finding: DriftFinding) -> str:
    """The drift warning for one station, Markdown-safe (the station id is caller-supplied text)."""
    reasons = "; ".join(escape_markdown(r) for r in finding.reasons)
    return f"**{escape_markdown(finding.station_id)}** drifts from its baseline: {reasons}."


WINDOW_COLUMNS = ["station_id", "recent", "noise_type", "verdict", "n", "conf_sum", "conf_n"]


WINDOW_BUCKET_S = 3600  # the whole buckets :func:`window_counts` sums, when it is given them
# The hours kept for the windows: the longest the Stations page offers (30 days + 72 hours), and more.
WINDOW_KEEP = timedelta(days=35)
WINDOW_KEYS = ["station_id", "recent", "noise_type", "verdict"]


def window_counts(
    engine: Engine, *, end: datetime, recent: timedelta, baseline: timedelta, base: KeptCounts | None = None
) -> pd.DataFrame:
    """Scored records per station in the baseline and recent windows ending at ``end``.

    The drift rule (:func:`window_stats`) and the p-chart (:func:`control_from_counts`) both read these rows.
    With ``base`` (counts per bucket over every record, kept by the server: :class:`AppendedCounts`) only the
    buckets that a window's edge cuts (at its start, at ``end - recent`` and at ``end``) are counted from the
    records; the whole buckets between are summed from ``base``.

    Returns:
        Columns :data:`WINDOW_COLUMNS`: ``recent`` (1 from ``end - recent`` on, 0 in the baseline window before
        it), ``noise_type`` and ``verdict`` (missing where NULL), ``n``, and the sum and count of known noise
        confidences.
    """
    cut = end - recent
    start = cut - baseline
    if base is None or (
        base.complete_from is not None and bucket_of(start, base.bucket_seconds) < base.complete_from
    ):
        return _window_scan(engine, start, cut, end)
    edges = sorted({bucket_of(t, base.bucket_seconds) for t in (start, cut, end)})
    spans = [
        (datetime.fromtimestamp(b, UTC), datetime.fromtimestamp(b + base.bucket_seconds, UTC)) for b in edges
    ]
    counts, bucket = base.counts, base.counts["bucket"]
    whole = counts[
        (bucket > edges[0]) & (bucket < edges[-1]) & ~bucket.isin(edges) & (counts["status"] == STATUS_OK)
    ]
    whole = whole.assign(recent=(whole["bucket"] >= unix_seconds(cut)).astype(int))[WINDOW_COLUMNS]
    edge = _window_scan(engine, start, cut, end, spans)
    both = pd.concat([edge, whole], ignore_index=True)
    frame = (
        both.groupby(WINDOW_KEYS, dropna=False, sort=False)[["n", "conf_sum", "conf_n"]].sum().reset_index()
    )
    return frame.astype({"recent": "int64", "n": "int64", "conf_sum": "float64", "conf_n": "int64"})


def _window_scan(
    engine: Engine, start: datetime, cut: datetime, end: datetime, spans: list[tuple[datetime, datetime]] = ()
) -> pd.DataFrame:
    """:func:`window_counts` from the records between ``start`` and ``end`` (only those in ``spans``, if any)."""
    is_recent = case((T.c.created_at >= cut, 1), else_=0).label("recent")
    within = [and_(T.c.created_at >= lo, T.c.created_at < hi) for lo, hi in spans]
    stmt = (
        select(
            T.c.station_id,
            is_recent,
            T.c.noise_type,
            T.c.verdict,
            func.count().label("n"),
            func.sum(T.c.noise_probability).label("conf_sum"),
            func.count(T.c.noise_probability).label("conf_n"),
        )
        .where(REAL_STATION, T.c.status == STATUS_OK, T.c.created_at >= start, T.c.created_at <= end)
        .where(*([or_(*within)] if within else []))
        .group_by(T.c.station_id, is_recent, T.c.noise_type, T.c.verdict)
    )
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(stmt).all(), columns=WINDOW_COLUMNS)
    frame["conf_sum"] = frame["conf_sum"].astype(float).fillna(0.0)
    return frame


def stats_from_counts(counts: pd.DataFrame) -> dict[str, tuple[WindowStats, WindowStats]]:
    """Per station, the (baseline, recent) :class:`WindowStats` from :func:`window_counts` rows."""
    typed = counts[counts["noise_type"].notna()]
    out = {}
    for station, rows in typed.groupby("station_id", sort=True):
        stats = []
        for flag in (0, 1):
            window = rows[rows["recent"] == flag]
            by_type = window.groupby("noise_type")["n"].sum()
            conf_n = int(window["conf_n"].sum())
            mean = float(window["conf_sum"].sum()) / conf_n if conf_n else None
            stats.append(WindowStats({str(k): int(v) for k, v in by_type.items()}, mean))
        out[str(station)] = (stats[0], stats[1])
    return out


def window_stats(
    engine: Engine, *, end: datetime, recent: timedelta, baseline: timedelta
) -> dict[str, tuple[WindowStats, WindowStats]]:
    """Per station, the (baseline, recent) windows ending at ``end``: noise-type counts and mean confidence."""
    return stats_from_counts(window_counts(engine, end=end, recent=recent, baseline=baseline))


def station_drift(
    engine: Engine,
    *,
    end: datetime | None = None,
    recent: timedelta = timedelta(hours=24),
    baseline: timedelta = timedelta(days=7),
    tv_threshold: float = 0.15,
    confidence_drop: float = 0.10,
    min_records: int = 50,
) -> list[DriftFinding]:
    """Run :func:`~inspection.dashboard.drift.detect_drift` for every station (drifted stations first).

    ``end`` defaults to the newest record, so an archive shows the drift it ended with.
    """
    if end is None:
        span = time_span(engine)
        if span is None:
            return []
        end = span.end
    windows = window_stats(engine, end=end, recent=recent, baseline=baseline)
    return drift_from_stats(
        windows, tv_threshold=tv_threshold, confidence_drop=confidence_drop, min_records=min_records
    )


def drift_from_stats(
    windows: dict[str, tuple[WindowStats, WindowStats]],
    *,
    tv_threshold: float = 0.15,
    confidence_drop: float = 0.10,
    min_records: int = 50,
) -> list[DriftFinding]:
    """:func:`station_drift` from :func:`stats_from_counts` windows (drifted stations first)."""
    findings = [
        detect_drift(
            s, b, r, tv_threshold=tv_threshold, confidence_drop=confidence_drop, min_records=min_records
        )
        for s, (b, r) in sorted(windows.items())
    ]
    order = {"drift": 0, "stable": 1, "insufficient": 2}
    return sorted(findings, key=lambda f: (order[f.status], f.station_id))


def station_defects(
    engine: Engine, *, start: datetime | None = None, before: datetime | None = None
) -> pd.DataFrame:
    """Scored and defective parts per station from ``start`` (inclusive) to ``before`` (exclusive).

    Returns columns ``station_id, scored, defective``; stations without records in the window are absent.
    """
    conds: list[ColumnElement[bool]] = [REAL_STATION, T.c.status == STATUS_OK]
    if start is not None:
        conds.append(T.c.created_at >= start)
    if before is not None:
        conds.append(T.c.created_at < before)
    stmt = (
        select(
            T.c.station_id,
            func.count().label("scored"),
            func.sum(case((T.c.verdict == "defective", 1), else_=0)).label("defective"),
        )
        .where(*conds)
        .group_by(T.c.station_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return pd.DataFrame(rows, columns=["station_id", "scored", "defective"])


@dataclass(frozen=True)
class DefectControl:
    """Each station's p-chart references and its recent window's verdict (:mod:`inspection.dashboard.spc`)."""

    references: dict[str, tuple[Reference | None, Reference | None]]
    findings: list[DefectFinding]


def defect_control(
    engine: Engine,
    *,
    end: datetime | None = None,
    recent: timedelta = timedelta(hours=24),
    baseline: timedelta = timedelta(days=7),
) -> DefectControl:
    """The p-chart references and verdicts with the drift rule's windows; ``end`` defaults to the newest record."""
    if end is None:
        span = time_span(engine)
        if span is None:
            return DefectControl({}, [])
        end = span.end
    return control_from_counts(window_counts(engine, end=end, recent=recent, baseline=baseline))


def control_from_counts(counts: pd.DataFrame) -> DefectControl:
    """:func:`defect_control` from :func:`window_counts` rows."""
    cols = ["station_id", "scored", "defective"]
    rows = counts.assign(scored=counts["n"], defective=counts["n"].where(counts["verdict"] == "defective", 0))
    by_window = rows.groupby(["station_id", "recent"], sort=True)[["scored", "defective"]].sum().reset_index()
    before = by_window.loc[by_window["recent"] == 0, cols].reset_index(drop=True)
    latest = by_window.loc[by_window["recent"] == 1, cols].reset_index(drop=True)
    both = by_window.groupby("station_id", sort=True)[["scored", "defective"]].sum().reset_index()[cols]
    refs = station_references(before, both)
    return DefectControl(refs, check_stations(latest, refs))


def defect_warning(finding: DefectFinding) -> str:
    """The p-chart warning for one station, Markdown-safe (the station id is caller-supplied text)."""
    reasons = "; ".join(escape_markdown(r) for r in finding.reasons)
    station = f"**{escape_markdown(finding.station_id)}**"
    if finding.status == "differs from the fleet":
        return (
            f"{station} differs from the fleet: {reasons}. It is within its own limits, so this is a lasting "
            "difference, not a change."
        )
    return f"{station} is out of control: {reasons}."


@dataclass(frozen=True)
class Note:
    """A page line and its style: ``success`` only for a verdict reached on enough data, else ``info``."""

    kind: str  # "success" or "info"
    text: str


def quiet_notes(checked: list[str], insufficient: list[str], *, clear: str, needs: str) -> list[Note]:
    """What to say when no station is flagged: the all-clear for the stations checked, and never in green for
    the stations with too little data to check.

    Args:
        checked: stations judged and found in order.
        insufficient: stations with too little data for a verdict.
        clear: the all-clear sentence (``No station drifts from its own baseline``).
        needs: what a verdict needs (``50 scored photos in each window``).
    """
    notes = []
    if checked:
        n = len(checked)
        notes.append(Note("success", f"{clear} ({n} station{'' if n == 1 else 's'} checked)."))
    if insufficient:
        names = ", ".join(escape_markdown(s) for s in insufficient)
        notes.append(Note("info", f"Too little data to judge {names}: a verdict needs {needs}."))
    return notes


def control_frame(control: DefectControl) -> pd.DataFrame:
    """Per station, the p-chart verdict and what it was held to: ``station_id, control, held to``."""
    rows = [
        {
            "station_id": f.station_id,
            "control": f.status,
            "held to": " and ".join(r.source for r in (f.own, f.fleet) if r is not None) or "nothing yet",
        }
        for f in control.findings
    ]
    return pd.DataFrame(rows, columns=["station_id", "control", "held to"])


def drift_frame(findings: list[DriftFinding]) -> pd.DataFrame:
    """Per station, the drift verdict and its two measures: ``station_id, drift, mix moved, confidence change``."""
    rows = [
        {
            "station_id": f.station_id,
            "drift": f.status,
            "mix moved": f.tv_distance,
            "confidence change": f.confidence_change,
        }
        for f in findings
    ]
    return pd.DataFrame(rows, columns=["station_id", "drift", "mix moved", "confidence change"])
