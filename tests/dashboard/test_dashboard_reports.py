"""Report loading and the tables the Overview, Noise and Denoisers pages draw."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inspection.dashboard import fixtures, reports


@pytest.fixture
def report() -> dict:
    return fixtures.fixture_report("20261124T080000Z-synthetic", datetime(2026, 11, 24, tzinfo=UTC), seed=2)


def test_list_reports_newest_first_and_skips_folders_without_json(tmp_path: Path) -> None:
    for rid in ("20261101T080000Z-a", "20261124T080000Z-b", "20261110T080000Z-c"):
        (tmp_path / rid).mkdir()
        (tmp_path / rid / "report.json").write_text("{}")
    (tmp_path / "20261130T000000Z-unfinished").mkdir()
    assert [r.id for r in reports.list_reports(tmp_path)] == [
        "20261124T080000Z-b",
        "20261110T080000Z-c",
        "20261101T080000Z-a",
    ]
    assert reports.list_reports(tmp_path / "missing") == []


def test_load_report_refuses_unknown_schema_and_bad_json(tmp_path: Path) -> None:
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "report.json").write_text(json.dumps({"schema_version": 2}))
    with pytest.raises(reports.ReportError, match="schema_version 2"):
        reports.load_report(tmp_path / "r1")
    (tmp_path / "r2").mkdir()
    (tmp_path / "r2" / "report.json").write_text("{not json")
    with pytest.raises(reports.ReportError, match="not valid JSON"):
        reports.load_report(tmp_path / "r2")
    with pytest.raises(reports.ReportError, match="inspection demo"):
        reports.load_report(tmp_path / "r3")


def test_headline_table_has_three_conditions_with_all_metrics(report: dict) -> None:
    table = reports.headline_table(report).set_index("condition")
    assert list(table.index) == ["clean", "noisy_none", "noisy_routed"]
    assert table.loc["noisy_routed", "accuracy"] == report["defect"]["conditions"]["noisy_routed"]["accuracy"]
    assert table.loc["clean", "n"] == 120
    assert table[["accuracy", "sensitivity", "specificity"]].notna().all().all()


def test_headline_falls_back_to_flat_accuracy() -> None:
    table = reports.headline_table(
        {"defect_accuracy": {"clean": 0.99, "noisy_none": 0.7, "noisy_routed": 0.95}}
    )
    assert list(table["accuracy"]) == [0.99, 0.7, 0.95]
    assert table["sensitivity"].isna().all()
    assert reports.overall_gain(
        {"defect_accuracy": {"noisy_none": 0.7, "noisy_routed": 0.95}}
    ) == pytest.approx(0.25)


def test_gain_per_type_is_routed_minus_none(report: dict) -> None:
    gains = reports.gain_per_type(report).set_index("noise_type")
    assert list(gains.index) == ["gaussian", "salt_pepper", "periodic"]
    none = report["defect"]["per_type"]["noisy_none"]["periodic"]["accuracy"]
    routed = report["defect"]["per_type"]["noisy_routed"]["periodic"]["accuracy"]
    assert gains.loc["periodic", "gain"] == pytest.approx(routed - none)


def test_gain_comparison_includes_reference_study(report: dict) -> None:
    frame = reports.gain_comparison_frame(report)
    ref = frame[frame["series"] == "reference (VGG16)"].set_index("stage")["accuracy"]
    assert ref["without"] == pytest.approx(0.946) and ref["with denoising"] == pytest.approx(0.970)
    assert reports.reference_figures({})["gain"] == pytest.approx(0.024)


def test_compare_reports_change_column(report: dict) -> None:
    earlier = fixtures.fixture_report(
        "20261101T080000Z-synthetic", datetime(2026, 11, 1, tzinfo=UTC), seed=1, quality=0.9
    )
    table = reports.compare_reports(report, earlier).set_index("metric")
    row = table.loc["Noisy, routed denoising: accuracy"]
    assert row["change"] == pytest.approx(row["latest"] - row["earlier"])
    assert row["change"] > 0  # the weaker earlier run
    assert "gain from denoising: salt_pepper" in table.index


def test_confusion_frame_shares_sum_to_one_per_row(report: dict) -> None:
    frame = reports.confusion_frame(report)
    assert len(frame) == 16
    assert frame.groupby("true")["share"].sum().round(6).eq(1.0).all()
    assert frame["count"].sum() == 120


def test_accuracy_by_level_ordered_low_mid_high(report: dict) -> None:
    frame = reports.accuracy_by_level_frame(report)
    assert list(frame[frame["noise_type"] == "gaussian"]["level_bin"]) == ["low", "mid", "high"]


def test_denoise_frames(report: dict) -> None:
    summary, samples = reports.denoise_summary_frame(report), reports.denoise_samples_frame(report)
    assert set(summary["method"]) == {"autoencoder", "median", "notch"}
    assert len(samples) == 6 * 36 and samples["psnr"].between(10, 50).all()


def test_missing_sections_give_empty_frames() -> None:
    minimal = {"schema_version": 1, "id": "x"}
    assert reports.confusion_frame(minimal).empty
    assert reports.accuracy_by_level_frame(minimal).empty
    assert reports.denoise_samples_frame(minimal).empty
    assert reports.gain_per_type(minimal).empty
    assert reports.overall_gain(minimal) is None


def test_gallery_entries_resolve_inside_report_only(tmp_path: Path) -> None:
    folder = fixtures.write_fixture_report(
        tmp_path, "20261124T080000Z-synthetic", datetime(2026, 11, 24, tzinfo=UTC)
    )
    report = reports.load_report(folder)
    report["gallery"].append({"noise_type": "periodic", "noisy": "../../etc/passwd"})
    entries = reports.gallery_entries(report, folder)
    assert [e.noise_type for e in entries[:4]] == ["clean", "gaussian", "salt_pepper", "periodic"]
    assert all(e.noisy is not None and e.noisy.is_file() for e in entries[:4])
    assert all(e.heat is not None and e.heat.is_file() and e.p_defective == 0.9 for e in entries[:4])
    assert entries[-1].noisy is None


def test_calibration_frame_holds_each_models_bins_and_is_empty_for_older_reports() -> None:
    report = fixtures.fixture_report("20261124T080000Z-synthetic", datetime(2026, 11, 24, tzinfo=UTC))
    frame = reports.calibration_frame(report)
    assert set(frame["model"]) == {"noise type (top probability)", "P(defective)"}
    noise = frame[frame["model"] == "noise type (top probability)"]
    assert noise["n"].sum() == report["calibration"]["noise"]["n"]
    assert ((noise["low"] <= noise["mean_probability"]) & (noise["mean_probability"] <= noise["high"])).all()
    errors = reports.calibration_errors(report)
    assert errors["noise"] == report["calibration"]["noise"]["ece"] and 0 <= errors["defect"] < 0.2
    del report["calibration"]
    assert reports.calibration_frame(report).empty
    assert reports.calibration_errors(report) == {"noise": None, "defect": None}
