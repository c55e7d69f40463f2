"""Out-of-distribution photos on the dashboard: each station's share on the Stations page, the warning for the
station whose photos left the models' range (the fixtures' ``line-4``), and the flag of one record."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers.dashboard import open_page
from streamlit.testing.v1 import AppTest

from inspection.dashboard import db, fixtures, parts, review, stations
from inspection.dashboard.text import escape_markdown
from inspection.ood import WARN_WINDOW, station_warning
from inspection.store import RecordStore


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return values[0]


@pytest.fixture(scope="module")
def shares(data_env: dict[str, str]) -> pd.DataFrame:
    return stations.station_ood(db.open_engine(data_env["INSPECTION_DB"])).set_index("station_id")


def test_station_ood_matches_the_stores_share(data_env: dict[str, str], shares: pd.DataFrame) -> None:
    assert list(shares.index) == list(fixtures.STATIONS)
    with RecordStore(data_env["INSPECTION_DB"], migrate=False) as store:
        for station in fixtures.STATIONS:
            flagged, photos = store.ood_share(station)
            assert (shares.loc[station, "ood_flagged"], shares.loc[station, "ood_photos"]) == (
                flagged,
                photos,
            )
    assert (shares["ood_photos"] == WARN_WINDOW).all()
    drifted = shares.loc[fixtures.OOD_STATION]
    assert drifted["ood_share"] > 0.8 and drifted["ood_warning"] == station_warning(
        int(drifted["ood_flagged"]), WARN_WINDOW, {}
    )
    steady = shares.drop(index=fixtures.OOD_STATION)
    assert (steady["ood_share"] < 0.05).all() and steady["ood_warning"].isna().all()


def test_station_ood_names_the_bundles_training_data(
    data_env: dict[str, str], tiny_root: Path, tiny_models: Path
) -> None:
    assert stations.models_card(data_env["INSPECTION_MODELS"]) == {}  # a models folder from before bundles
    card = stations.models_card(tiny_root)
    assert card and card == stations.models_card(tiny_models)  # a models root's live bundle, or the bundle
    engine = db.open_engine(data_env["INSPECTION_DB"])
    synthetic = stations.station_ood(engine, {"synthetic_only": True}).set_index("station_id")
    assert "trained on synthetic data only" in synthetic.loc[fixtures.OOD_STATION, "ood_warning"]
    assert stations.station_ood(engine, last=10)["ood_photos"].max() == 10


def test_stations_page_warns_about_the_station_out_of_range(
    dashboard_env: dict[str, str], shares: pd.DataFrame
) -> None:
    at = open_page("stations")
    # the p-chart's defect-rate warnings first, then the noise-mix drift of line-3, then the station whose
    # photos left the models' range
    warnings = [w.value for w in at.warning if "is out of control" not in w.value]
    warnings = [w for w in warnings if "differs from the fleet" not in w]
    assert "line\\-3" in warnings[0] and "periodic noise rose" in warnings[0]
    expected = stations.ood_warning(fixtures.OOD_STATION, shares.loc[fixtures.OOD_STATION, "ood_warning"])
    assert warnings[1:] == [expected]
    assert metric(at, "Stations out of range") == "1" and metric(at, "Stations drifting") == "1"
    assert expected.startswith(f"**{escape_markdown(fixtures.OOD_STATION)}**: these models were trained on")
    assert f"of this station's last {WARN_WINDOW} photos are out of their range" in expected
    table = at.dataframe[0].value.set_index("station_id")
    share = table[f"OOD, last {WARN_WINDOW}"]
    assert share[fixtures.OOD_STATION] == pytest.approx(shares.loc[fixtures.OOD_STATION, "ood_share"])
    assert share.drop(index=fixtures.OOD_STATION).max() < 0.05
    assert (table["checked"] == WARN_WINDOW).all()


def test_part_lookup_shows_a_records_ood_flag(dashboard_env: dict[str, str]) -> None:
    engine = db.open_engine(dashboard_env["INSPECTION_DB"])
    found = parts.find_parts(engine, stations=[fixtures.OOD_STATION], limit=50)
    flagged = found[found["ood"] == True].iloc[0]  # noqa: E712 - a column of booleans and None
    record = parts.get_part(engine, int(flagged["id"]))
    assert record is not None and record["ood"] is True and record["ood_score"] > 1

    at = open_page("part_lookup")
    at.text_input(key="part_id").set_value(str(flagged["part_id"]))
    at.run()
    assert not at.exception
    assert metric(at, "Out of distribution") == "yes"
    notes = [w.value for w in at.warning]
    assert parts.ood_note(record) in notes and f"score {record['ood_score']:.2f}" in parts.ood_note(record)
    assert [m.help for m in at.metric if m.label == "Out of distribution"] == [parts.ood_help(record)]


def test_ood_texts_of_a_record() -> None:
    unchecked = {"ood": None, "ood_score": None}
    assert parts.ood_value(unchecked) == "not checked" and parts.ood_note(unchecked) is None
    assert "no out-of-distribution model" in parts.ood_help(unchecked)
    assert parts.ood_value({"ood": False, "ood_score": 0.4}) == "no"
    assert parts.ood_help({"ood": False, "ood_score": 0.4}).startswith("score 0.40")
    facts = dict(
        review.facts_frame(
            {"verdict": "review", "review_reason": "ood", "ood": True, "ood_score": 2.5}
        ).values
    )
    assert facts["Out of distribution"] == "yes (score 2.50)" and facts["Review reason"] == "ood"
    assert dict(review.facts_frame({"verdict": "ok"}).values)["Out of distribution"] == "not checked"
