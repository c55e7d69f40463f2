"""The Overview, Noise and Denoisers pages read honestly: bars from zero, gains in points, the defect erasure
and realistic-noise sections, a badge on synthetic numbers, sane percent ticks and a legend for every method."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers.dashboard import open_page
from streamlit.testing.v1 import AppTest

from inspection.dashboard import reports

REALISTIC = {
    "jpeg": {"routes": {"clean": 40, "gaussian": 20}, "safe_path": 3, "accuracy_none": 0.80,
             "accuracy_routed": 0.875, "n": 60},
    "blur": {"routes": {"clean": 60}, "safe_path": 0, "accuracy_none": 0.90, "accuracy_routed": 0.85, "n": 60},
}  # fmt: skip


def specs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def badges(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if "badge[" in m.value]


def latest_report(env: dict[str, str]) -> dict[str, Any]:
    return reports.load_report(reports.list_reports(env["INSPECTION_REPORTS"])[0].path)


@pytest.fixture
def real_report_env(dashboard_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture's latest report, as if run on real castings and with a realistic-noise block."""
    source = reports.list_reports(dashboard_env["INSPECTION_REPORTS"])[0].path
    folder = tmp_path / "reports" / "20261126T080000Z-casting"
    shutil.copytree(source, folder)
    report = json.loads((folder / "report.json").read_text())
    report["id"] = folder.name
    report["dataset"] = {"name": "casting", "root": "/data/casting", "split": "test", "n_images": 715}
    report["realistic"] = REALISTIC
    (folder / "report.json").write_text(json.dumps(report))
    monkeypatch.setenv("INSPECTION_REPORTS", str(tmp_path / "reports"))
    return folder


def test_overview_bars_from_zero_gains_in_points(dashboard_env: dict[str, str]) -> None:
    at = open_page("overview")
    report = latest_report(dashboard_env)
    for spec in specs(at):  # bars, and the reliability diagram's layers: every y axis from 0 to 100%
        for view in spec.get("layer") or [spec.get("spec", spec)]:
            y = view["encoding"]["y"]
            assert y["scale"]["domain"] == [0.0, 1.0], y
    gains = at.dataframe[0].value.set_index("noise_type")
    per_type = report["defect"]["per_type"]
    expected = (
        per_type["noisy_routed"]["periodic"]["accuracy"] - per_type["noisy_none"]["periodic"]["accuracy"]
    ) * 100
    assert gains.loc["periodic", "gain"] == pytest.approx(expected)
    assert 10 < gains.loc["periodic", "gain"] < 30  # points, not a fraction
    compare = at.dataframe[-1].value.set_index("metric")
    assert compare.loc["gain from denoising: periodic", "latest"].endswith(" pts")
    assert compare.loc["Noisy, routed denoising: accuracy", "latest"].endswith("%")
    assert compare["change"].str.endswith(" pts").all()


def test_overview_badges_synthetic_numbers_and_shows_the_erasure(dashboard_env: dict[str, str]) -> None:
    at = open_page("overview")
    assert len(badges(at)) == 1 and "Synthetic data" in badges(at)[0]
    assert [m.value for m in at.metric if m.label == "Defects erased by denoising"] == ["1.0%"]
    assert "Realistic noise, never trained on" not in [h.value for h in at.subheader]


def test_overview_of_a_real_report_with_realistic_noise(real_report_env: Path) -> None:
    at = open_page("overview")
    assert not badges(at)
    assert "Realistic noise, never trained on" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "kind" in d.value.columns).set_index("kind")
    assert table.loc["jpeg", "gain"] == pytest.approx(7.5) and table.loc["blur", "gain"] == pytest.approx(
        -5.0
    )
    assert table.loc["jpeg", "routes"] == "clean: 40, gaussian: 20" and table.loc["jpeg", "safe_path"] == 3


def test_is_synthetic_reads_the_dataset_section() -> None:
    assert reports.is_synthetic({"dataset": {"name": "synthetic", "root": "(fixture)"}})
    assert reports.is_synthetic(
        {"dataset": {"name": "test", "root": "/home/x/.inspection/data/synthetic/seed0"}}
    )
    assert not reports.is_synthetic({"dataset": {"name": "casting", "root": "/data/casting_512x512"}})
    assert not reports.is_synthetic({"dataset": {"name": "synthetic", "synthetic": False}})
    assert not reports.is_synthetic({})


def test_noise_page_percent_ticks(dashboard_env: dict[str, str]) -> None:
    levels = specs(open_page("noise"))[1]
    assert levels["encoding"]["y"]["axis"]["format"] == ".1~%"  # 97.5%, 100%: never 100.000000%


def test_denoisers_box_plot_names_every_method(dashboard_env: dict[str, str]) -> None:
    report = latest_report(dashboard_env)
    methods = sorted({s["method"] for s in report["denoise"]["samples"]})
    for spec in specs(open_page("denoisers")):
        encoding = spec["spec"]["encoding"]
        assert (
            encoding["color"]["scale"]["domain"] == methods
            and encoding["color"]["legend"]["orient"] == "bottom"
        )
        assert encoding["x"]["axis"] is None  # no names under the boxes to crowd out: the legend names them
