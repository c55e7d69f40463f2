"""Statistical process control of each station's defect rate: a p-chart per station.

The rule:

* A bucket of ``n`` scored parts with ``d`` defective has the rate ``p = d / n``. It is held to a reference
  rate ``p̄`` by the limits ``p̄ ± 3·sqrt(p̄(1−p̄)/n)`` (clipped to 0..1): the fewer parts, the wider.
* Two references, both fixed before the chart is drawn:

  * **own history**: the station's scored parts in its *baseline* window (the days before the recent
    window, as for drift). A station needs :data:`MIN_REFERENCE` of them to have a baseline; a new station
    has none yet and is held to the fleet alone until it has.
  * **the fleet**: the median of the *other* stations' rates over the baseline and recent windows together
    (backed by at least :data:`MIN_REFERENCE` of their parts). The station itself is left out, and the
    median is taken, so that one broken station neither drags the fleet's rate up to meet it nor pushes
    the healthy stations below the fleet's limits.

* A station's recent window, taken as one bucket, is held to both. Outside its own limits (or the fleet's,
  while it has no baseline) it is *out of control*: something changed. Outside only the fleet's it *differs
  from the fleet*: a lasting difference. That check is what catches a station that has always been bad (at
  100% defective its own history says nothing is wrong). It looks only upward: a station with fewer defects
  than its peers raises no alarm, while a fall below its own lower limit does (a camera that stopped seeing
  defects is a change).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SIGMAS = 3.0
MIN_REFERENCE = 50  # scored parts behind a reference rate, as the drift rule's min_records
SOURCES = ("own", "fleet")
NO_REFERENCE = f"neither a baseline of its own nor a fleet to compare with ({MIN_REFERENCE} scored parts needed for either)"


@dataclass(frozen=True)
class Reference:
    """A defect rate a station is held to: its own history or the rest of the fleet."""

    source: str  # "own" or "fleet"
    rate: float
    scored: int  # the parts behind the rate

    def limits(self, n: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The lower and upper control limits for buckets of ``n`` scored parts."""
        return control_limits(self.rate, n)


@dataclass(frozen=True)
class DefectFinding:
    """One station's recent window against its references; ``reasons`` are sentences ready for the screen."""

    station_id: str
    status: str  # "out of control", "differs from the fleet", "in control" or "insufficient"
    scored: int
    defective: int
    own: Reference | None = None
    fleet: Reference | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.status in ("out of control", "differs from the fleet")

    @property
    def rate(self) -> float | None:
        return self.defective / self.scored if self.scored else None


def control_limits(rate: float | np.ndarray, n: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rate ± 3·sqrt(rate(1−rate)/n)``, clipped to 0..1 (``rate`` and ``n`` may be arrays, NaN stays NaN)."""
    n = np.asarray(n, dtype=float)
    sigma = np.sqrt(rate * (1.0 - rate) / np.where(n > 0, n, np.nan))
    return np.clip(rate - SIGMAS * sigma, 0.0, 1.0), np.clip(rate + SIGMAS * sigma, 0.0, 1.0)


def station_references(
    baseline: pd.DataFrame, window: pd.DataFrame, *, min_scored: int = MIN_REFERENCE
) -> dict[str, tuple[Reference | None, Reference | None]]:
    """Per station, its (own, fleet) references, each None when fewer than ``min_scored`` parts back it.

    Args:
        baseline: ``station_id, scored, defective`` over the baseline window (the station's own history).
        window: the same columns over the baseline and recent windows together (the fleet's rate).
    """
    own_counts = baseline.set_index("station_id")
    counts = window[window["scored"] > 0].set_index("station_id")
    rates = counts["defective"] / counts["scored"]
    out: dict[str, tuple[Reference | None, Reference | None]] = {}
    for station in sorted(set(counts.index) | set(own_counts.index)):
        own = None
        if station in own_counts.index and own_counts.loc[station, "scored"] >= min_scored:
            row = own_counts.loc[station]
            own = Reference("own", float(row["defective"] / row["scored"]), int(row["scored"]))
        others = counts.index != station
        n_others = int(counts.loc[others, "scored"].sum())
        fleet = (
            Reference("fleet", float(rates[others].median()), n_others) if n_others >= min_scored else None
        )
        out[station] = (own, fleet)
    return out


def check_station(
    station_id: str, defective: int, scored: int, own: Reference | None, fleet: Reference | None
) -> DefectFinding:
    """Hold a station's recent window (``defective`` of ``scored`` parts) to its references.

    Outside its own limits, or outside the fleet's when it has no baseline yet, a station is *out of control*.
    Outside the fleet's limits but within its own, it *differs from the fleet*: a lasting difference, not a
    change (a station at 100% defective all along is one).
    """
    if scored == 0 or (own is None and fleet is None):
        why = "no scored parts in the recent window" if scored == 0 else NO_REFERENCE
        return DefectFinding(station_id, "insufficient", scored, defective, own, fleet, [why])
    outside = {ref.source: _breach(ref, defective, scored) for ref in (own, fleet) if ref is not None}
    reasons = [r for r in outside.values() if r]
    if outside.get("own") or (own is None and outside.get("fleet")):
        status = "out of control"
    else:
        status = "differs from the fleet" if reasons else "in control"
    return DefectFinding(station_id, status, scored, defective, own, fleet, reasons)


def _breach(ref: Reference, defective: int, scored: int) -> str:
    """Why the rate lies outside ``ref``'s limits, or ``""`` when it lies within (the fleet's: only above)."""
    rate = defective / scored
    lcl, ucl = (float(x) for x in ref.limits(scored))
    if rate <= ucl and (rate >= lcl or ref.source == "fleet"):
        return ""
    side, limit = ("above", ucl) if rate > ucl else ("below", lcl)
    return (
        f"defect rate {rate:.1%} of {scored:,} recent parts is {side} the {_name(ref)} limit {limit:.1%} "
        f"({_name(ref)} rate {ref.rate:.1%})"
    )


def _name(ref: Reference) -> str:
    return "fleet's" if ref.source == "fleet" else "station's own"


def check_stations(
    recent: pd.DataFrame, refs: dict[str, tuple[Reference | None, Reference | None]]
) -> list[DefectFinding]:
    """:func:`check_station` for every station (``recent``: ``station_id, scored, defective``), flagged first."""
    counts = recent.set_index("station_id")
    findings = []
    for station in sorted(set(refs) | set(counts.index)):
        own, fleet = refs.get(station, (None, None))
        row = counts.loc[station] if station in counts.index else {"defective": 0, "scored": 0}
        findings.append(check_station(station, int(row["defective"]), int(row["scored"]), own, fleet))
    order = {"out of control": 0, "differs from the fleet": 1, "in control": 2, "insufficient": 3}
    return sorted(findings, key=lambda f: (order[f.status], f.station_id))


def p_chart_frame(
    series: pd.DataFrame, refs: dict[str, tuple[Reference | None, Reference | None]], bucket_seconds: int
) -> pd.DataFrame:
    """The p-chart's rows: each station's buckets with their rate and both references' limits.

    Args:
        series: :func:`inspection.dashboard.stations.station_timeseries` rows.

    Returns:
        Columns ``station_id, time, time_end, scored, defective, p`` and, per source (``own``, ``fleet``),
        ``<source>_rate, <source>_lcl, <source>_ucl`` (NaN where the station has no such reference), and
        ``outside``: the references whose limits the bucket lies outside (``""`` when none).
    """
    frame = series[series["scored"] > 0].copy()
    frame["time_end"] = frame["time"] + pd.Timedelta(seconds=bucket_seconds)
    frame["p"] = frame["defective"] / frame["scored"]
    frame["outside"] = ""
    station = frame["station_id"].astype(str)
    for i, source in enumerate(SOURCES):
        rates = {s: ref[i].rate for s, ref in refs.items() if ref[i] is not None}
        rate = station.map(rates).astype(float).to_numpy()  # NaN where the station has no such reference
        lcl, ucl = control_limits(rate, frame["scored"].to_numpy())
        frame[f"{source}_rate"], frame[f"{source}_lcl"], frame[f"{source}_ucl"] = rate, lcl, ucl
        out = frame["p"] > frame[f"{source}_ucl"]
        if source == "own":
            out |= frame["p"] < frame[f"{source}_lcl"]
        frame.loc[out, "outside"] = (frame.loc[out, "outside"] + " " + source).str.strip()
    columns = ["station_id", "time", "time_end", "scored", "defective", "p"]
    limits = [f"{s}_{c}" for s in SOURCES for c in ("rate", "lcl", "ucl")]
    return frame[[*columns, *limits, "outside"]].reset_index(drop=True)
