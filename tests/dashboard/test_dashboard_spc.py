"""The Stations page's p-chart: control limits worked out by hand on small stores, the station at 100%
defective flagged, new stations held to the fleet, charts drawn from a single time bucket, and too little data
never shown in green."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from helpers.dashboard import APP
from streamlit.testing.v1 import AppTest

from inspection.dashboard import db, spc, stations

END = datetime(2026, 11, 25, 12, tzinfo=UTC)
BASELINE, RECENT = END - timedelta(days=3), END - timedelta(hours=1)  # in the 7-day baseline; the last 24 h


def control(url: str) -> stations.DefectControl:
    return stations.defect_control(db.open_engine(url))


def finding(result: stations.DefectControl, station: str) -> spc.DefectFinding:
    return next(f for f in result.findings if f.station_id == station)


def open_stations(view: str | None = None, param: str = "view") -> AppTest:
    """The Stations page; ``view`` opens that tab below the p-chart, as the ``?view=`` link does (``?chart=``
    in links from before the per-station table became a tab)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/stations.py")
    if view is not None:
        at.query_params[param] = view
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_control_limits_by_hand() -> None:
    lcl, ucl = spc.control_limits(0.1, 100)  # 3·sqrt(0.1·0.9/100) = 0.09
    assert (float(lcl), float(ucl)) == pytest.approx((0.01, 0.19))
    lcl, ucl = spc.control_limits(0.2, np.array([100, 400]))  # 3·sqrt(0.16/n) = 0.12, 0.06
    assert lcl == pytest.approx([0.08, 0.14]) and ucl == pytest.approx([0.32, 0.26])
    lcl, ucl = spc.control_limits(0.02, 10)  # 0.02 ± 0.133: clipped at zero
    assert float(lcl) == 0.0 and float(ucl) == pytest.approx(0.02 + 3 * np.sqrt(0.02 * 0.98 / 10))


def test_p_chart_limits_on_a_small_store(batches_env: Callable[..., str]) -> None:
    # A: 10% before and after. B: 10% before, 30% in the recent window.
    url = batches_env([
        ("A", BASELINE, 100, 10), ("A", RECENT, 100, 10),
        ("B", BASELINE, 100, 10), ("B", RECENT, 100, 30),
    ])  # fmt: skip
    result = control(url)
    own_a, fleet_a = result.references["A"]
    assert (own_a.rate, own_a.scored) == (0.1, 100)
    assert (fleet_a.rate, fleet_a.scored) == (pytest.approx(0.2), 200)  # B's 40 of 200 parts
    assert result.references["B"][1].rate == pytest.approx(0.1)  # A's 20 of 200
    assert finding(result, "A").status == "in control"
    b = finding(result, "B")
    assert b.status == "out of control" and b.flagged
    assert b.reasons == [
        "defect rate 30.0% of 100 recent parts is above the station's own limit 19.0% (station's own rate 10.0%)",
        "defect rate 30.0% of 100 recent parts is above the fleet's limit 19.0% (fleet's rate 10.0%)",
    ]

    series = stations.station_timeseries(db.open_engine(url), 3600)
    frame = spc.p_chart_frame(series, result.references, 3600)
    recent = frame[frame["time"] == RECENT.replace(minute=0)].set_index("station_id")
    assert recent.loc["A", ["own_lcl", "own_ucl"]].tolist() == pytest.approx([0.01, 0.19])
    assert recent.loc["A", ["fleet_lcl", "fleet_ucl"]].tolist() == pytest.approx([0.08, 0.32])
    assert recent.loc["A", "outside"] == "" and recent.loc["B", "outside"] == "own fleet"
    assert recent.loc["B", "p"] == pytest.approx(0.3)


def test_station_at_100_percent_defective_is_flagged(batches_env: Callable[..., str]) -> None:
    # C has been at 100% all along: its own history says nothing changed, the fleet says otherwise.
    url = batches_env([
        ("A", BASELINE, 100, 10), ("A", RECENT, 100, 10),
        ("C", BASELINE, 100, 100), ("C", RECENT, 100, 100),
    ])  # fmt: skip
    result = control(url)
    c = finding(result, "C")
    assert c.flagged and c.status == "differs from the fleet"
    assert c.reasons == [
        "defect rate 100.0% of 100 recent parts is above the fleet's limit 19.0% (fleet's rate 10.0%)"
    ]
    assert "lasting difference" in stations.defect_warning(c)
    # The fleet looks upward only: beside the broken station, A is not flagged for being better.
    assert finding(result, "A").status == "in control"


def test_new_station_is_held_to_the_fleet(batches_env: Callable[..., str]) -> None:
    url = batches_env([
        ("A", BASELINE, 100, 10), ("A", RECENT, 100, 10),
        ("N", RECENT, 60, 60), ("M", RECENT, 60, 6),
    ])  # fmt: skip
    result = control(url)
    own, fleet = result.references["N"]
    assert own is None and fleet.rate == pytest.approx(0.1)  # the median of A's 10% and M's 10%
    assert finding(result, "N").status == "out of control"
    assert finding(result, "M").status == "in control"
    table = stations.control_frame(result).set_index("station_id")
    assert table.loc["N", "held to"] == "fleet" and table.loc["A", "held to"] == "own and fleet"


def test_quiet_notes_never_green_for_too_little_data() -> None:
    notes = stations.quiet_notes(["A"], ["B", "C"], clear="All fine", needs="50 parts")
    assert [(n.kind, n.text) for n in notes] == [
        ("success", "All fine (1 station checked)."),
        ("info", "Too little data to judge B, C: a verdict needs 50 parts."),
    ]
    assert [n.kind for n in stations.quiet_notes([], ["B"], clear="All fine", needs="50 parts")] == ["info"]


def chart_data(chart: Any) -> pd.DataFrame:
    """The rows a chart was sent (Streamlit ships an Altair chart's data as one Arrow dataset)."""
    (dataset,) = chart.proto.datasets
    return pa.ipc.open_stream(dataset.data.data).read_pandas()


def test_single_bucket_store_draws_every_chart(batches_env: Callable[..., str]) -> None:
    # 224 records in one 15-minute bucket; line-4 calls every part defective.
    batches_env([(f"line-{k}", END, 56, 56 if k == 4 else 5) for k in range(1, 5)])
    at = open_stations()
    assert [m.value for m in at.metric if m.label == "Records"] == ["224"]
    (p_chart,) = at.get("vega_lite_chart")  # the other charts are built when their tabs are opened
    assert len(chart_data(p_chart)) == 4  # one bucket per station
    p_rows = chart_data(p_chart).set_index("station_id")
    assert p_rows["time"].nunique() == 1
    fleet = 5 / 56  # the median of the other stations' rates
    assert p_rows.loc["line-4", "fleet_ucl"] == pytest.approx(fleet + 3 * np.sqrt(fleet * (1 - fleet) / 56))
    assert (
        p_rows.loc["line-4", "state"] == "outside limits" and p_rows.loc["line-1", "state"] == "within limits"
    )
    assert '"x2"' in json.dumps(json.loads(p_chart.proto.spec))  # bands one bucket wide
    mix = open_stations("Noise-type mix").get("vega_lite_chart")
    assert len(mix) == 2 and len(chart_data(mix[1])) == 4  # all clean photos: one bar per station
    assert '"x2"' in json.dumps(json.loads(mix[1].proto.spec))  # bars one bucket wide
    for tab, field in (("Parts scored", "scored"), ("Mean noise confidence", "mean_confidence")):
        tab_charts = open_stations(tab).get("vega_lite_chart")
        assert len(tab_charts) == 2
        assert len(chart_data(tab_charts[1])) == 4 and field in tab_charts[1].proto.spec
        assert '"point"' in tab_charts[1].proto.spec  # a dot per bucket: one bucket still shows
    old_link = open_stations("Parts scored", param="chart")
    assert len(old_link.get("vega_lite_chart")) == 2 and not old_link.dataframe
    warnings = [w.value.replace("\\", "") for w in at.warning]  # as it reads, Markdown escapes dropped
    assert any(w.startswith("**line-4** is out of control: defect rate 100.0% of 56") for w in warnings)
    assert [m.value for m in at.metric if m.label == "Stations outside limits"] == ["1"]
    # Nothing has a baseline window: drift cannot be judged, and that is not shown in green.
    assert not at.success
    infos = [i.value for i in at.info]
    assert any(i.startswith("Too little data to judge line\\-1, line\\-2, line\\-3, line\\-4") for i in infos)
    table = at.dataframe[0].value.set_index("station_id")
    assert table.loc["line-4", "control"] == "out of control" and table.loc["line-1", "held to"] == "fleet"
    assert (table["drift"] == "insufficient").all()


def test_in_control_stations_get_the_all_clear(batches_env: Callable[..., str]) -> None:
    batches_env([(s, when, 100, 10) for s in ("A", "B") for when in (BASELINE, RECENT)])
    at = open_stations()
    assert [s.value for s in at.success] == [
        "Every station's defect rate is within its control limits (2 stations checked).",
        "No station drifts from its own baseline (2 stations checked).",
    ]
    assert not at.info and not at.warning
