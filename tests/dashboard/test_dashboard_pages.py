"""Every page under Streamlit's AppTest, on fixture data and on empty sources."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.dashboard import open_page
from streamlit.testing.v1 import AppTest

from inspection.dashboard import db, fixtures, parts, reports
from inspection.dashboard.text import escape_markdown

PAGES = ("overview", "noise", "denoisers", "stations", "part_lookup", "models")


def elements(at: AppTest, kind: str) -> list[Any]:
    return [e for e in at.main if type(e).__name__ == kind]


def charts(at: AppTest) -> list[Any]:
    return at.get("vega_lite_chart")


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return values[0]


def latest_report(env: dict[str, str]) -> dict[str, Any]:
    return reports.load_report(reports.list_reports(env["INSPECTION_REPORTS"])[0].path)


def test_overview(dashboard_env: dict[str, str]) -> None:
    at = open_page("overview")
    report = latest_report(dashboard_env)
    conditions = report["defect"]["conditions"]
    assert at.title[0].value == "Overview"
    assert metric(at, "Noisy, routed denoising") == f"{conditions['noisy_routed']['accuracy']:.1%}"
    assert metric(at, "Noisy, no denoising") == f"{conditions['noisy_none']['accuracy']:.1%}"
    gain = (conditions["noisy_routed"]["accuracy"] - conditions["noisy_none"]["accuracy"]) * 100
    assert metric(at, "Gain from denoising") == f"{gain:+.1f} pts"
    assert any("reference VGG16: +2.4 pts" in str(m.proto.delta) for m in at.metric)
    assert len(charts(at)) == 3  # defect metrics, gain per type, reliability diagram
    calibration = report["calibration"]
    assert metric(at, "ECE, noise type") == f"{calibration['noise']['ece']:.3f}"
    assert metric(at, "ECE, P(defective)") == f"{calibration['defect']['ece']:.3f}"
    gains = at.dataframe[0].value.set_index("noise_type")
    assert (
        gains.loc["periodic", "with_denoising"]
        == report["defect"]["per_type"]["noisy_routed"]["periodic"]["accuracy"]
    )
    compare = at.dataframe[1].value.set_index("metric")
    assert "Noisy, routed denoising: accuracy" in compare.index
    assert at.selectbox(key="compare_report").value == "20261101T080000Z-synthetic"


def test_noise(dashboard_env: dict[str, str]) -> None:
    at = open_page("noise")
    report = latest_report(dashboard_env)
    assert metric(at, "Noise-type accuracy") == f"{report['noise_classifier']['accuracy']:.1%}"
    assert metric(at, "Recall: periodic") == f"{report['noise_classifier']['recall']['periodic']:.1%}"
    assert len(charts(at)) == 2  # confusion matrix, accuracy-by-level curves
    confusion = json.loads(charts(at)[0].proto.spec)
    assert confusion["layer"][0]["encoding"]["x"]["field"] == "predicted"
    captions = [m.value for m in elements(at, "Markdown")]
    assert captions == ["**clean**", "**gaussian**", "**salt_pepper**", "**periodic**"]
    assert len(elements(at, "Image")) == 8  # a photo and its spectrum per type


def test_denoisers(dashboard_env: dict[str, str]) -> None:
    at = open_page("denoisers")
    summary = at.dataframe[0].value
    row = summary[(summary["noise_type"] == "periodic") & (summary["method"] == "notch")]
    assert len(row) == 1 and 25 < float(row["psnr"].iloc[0]) < 40
    assert len(charts(at)) == 2  # PSNR and SSIM box plots
    assert at.selectbox(key="gallery_type").value == "periodic"
    # noisy / denoised / clean, each whole and zoomed, and the defect model's heat map on the denoised photo
    assert len(elements(at, "Image")) == 7
    captions = [img.caption for e in elements(at, "Image") for img in e.proto.imgs]
    assert any("LayerCAM" in c and "P(defective) 0.90" in c for c in captions), captions
    at.selectbox(key="gallery_type").set_value("salt_pepper")
    at.slider(key="crop_size").set_value(32)
    at.run()
    assert not at.exception and len(elements(at, "Image")) == 7


def test_stations(dashboard_env: dict[str, str]) -> None:
    at = open_page("stations")
    assert metric(at, "Records") == "4,000"
    assert metric(at, "Stations") == "4"
    assert metric(at, "Stations drifting") == "1"
    warning = next(w.value for w in at.warning if "periodic noise rose" in w.value)
    assert "line\\-3" in warning and "grounding" in warning
    assert len(charts(at)) == 1  # the p-chart; each other chart is built when its tab is opened
    table = at.dataframe[0].value.set_index("station_id")
    assert table.loc["line-3", "drift"] == "drift" and table["records"].sum() == 4000
    at.segmented_control(key="range").set_value("Last 24 hours")
    at.run()
    assert not at.exception and "One point per 6 hours." in [c.value for c in at.caption]


def test_part_lookup(dashboard_env: dict[str, str]) -> None:
    engine = db.open_engine(dashboard_env["INSPECTION_DB"])
    found = parts.find_parts(engine, stations=["line-2"], limit=20)
    target = found[found["status"] == "ok"].iloc[0]
    at = open_page("part_lookup")
    assert len(at.dataframe[0].value) == 200  # the newest records before any filter
    at.text_input(key="part_id").set_value(str(target["part_id"]))
    at.run()
    assert not at.exception
    assert list(at.dataframe[0].value["part_id"]) == [target["part_id"]]
    # Metric values are Markdown: record text is shown escaped (it renders as stored).
    assert metric(at, "Verdict") == escape_markdown(target["verdict"])
    assert metric(at, "Noise type") == escape_markdown(target["noise_type"])
    assert (
        len(elements(at, "Image")) >= 2
    )  # photo and spectrum (and the denoised photo when it can be rebuilt)
    versions = at.dataframe[1].value
    assert dict(versions.values) == fixtures.MODEL_VERSIONS
    assert len(charts(at)) == 1  # noise probabilities


def test_models(dashboard_env: dict[str, str]) -> None:
    at = open_page("models")
    assert metric(at, "In use: noise") == escape_markdown("noise-2026.11.1")
    assert metric(at, "In use: defect") == escape_markdown("defect-2026.11.2")
    table = at.dataframe[0].value
    assert {"noise-2026.10.1", "noise-2026.11.1"} <= set(table["version"])
    assert not table.duplicated(["task", "version"]).any()  # on disk and in the store is one version
    assert set(table["source"]) == {"checkpoint", "checkpoint, store"}
    assert len(charts(at)) == 1


EMPTY_HINTS: dict[str, Callable[[str], bool]] = {
    "overview": lambda s: "No evaluation report" in s and "inspection demo" in s,
    "noise": lambda s: "No evaluation report" in s,
    "denoisers": lambda s: "No evaluation report" in s,
    "stations": lambda s: "no records database" in s and "inspection score" in s,
    "part_lookup": lambda s: "no records database" in s,
    "models": lambda s: "No model versions" in s and "inspection train" in s,
}


@pytest.mark.parametrize("page", PAGES)
def test_empty_sources_show_how_to_fill_them(empty_env: Path, page: str) -> None:
    at = open_page(page)
    assert not at.error
    infos = [i.value for i in at.info]
    assert infos and EMPTY_HINTS[page](infos[0]), infos
    assert at.code, "the empty state shows the command to run"


def test_empty_database_file(empty_env: Path) -> None:
    fixtures.create_schema(f"sqlite:///{empty_env / 'records.db'}").dispose()
    at = open_page("stations")
    assert "the records database is empty" in at.info[0].value


def test_broken_report_shows_an_error_not_a_traceback(
    dashboard_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "reports" / "20991231T000000Z-broken"
    bad.mkdir(parents=True)
    (bad / "report.json").write_text(json.dumps({"schema_version": 99}))
    monkeypatch.setenv("INSPECTION_REPORTS", str(tmp_path / "reports"))
    at = open_page("overview")
    assert not at.exception
    shown = at.error[0].value.replace("\\", "")  # the error text is escaped for Markdown; this is what reads
    assert "schema_version 99" in shown and "server log" in shown
