"""The Models page: a card per bundle version (data, fingerprint, synthetic badge, validation, golden set,
promotion decision with its table, parent), each version listed once, bars from zero."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers.dashboard import APP
from streamlit.testing.v1 import AppTest

from inspection.dashboard import cards, charts, versions
from inspection.store.records import RecordStore

SHA = "0ff940b90fa42b1a2fcb7f098e1580149dcaa2391dfbbb7b98561e05d443a689"


def _meta(task: str, version: str, *, synthetic: bool) -> dict:
    data = {
        "n_images": 1600,
        "n_train": 1360,
        "n_val": 240,
        "sha256": SHA,
        "root": "/data/x",
        "synthetic": synthetic,
    }
    if synthetic:
        data["dataset"] = {"synthetic": True, "generator": "inspection.data.write_synthetic_dataset", "seed": 0,
                           "size": 160, "products": ["casting"]}  # fmt: skip
    metrics = {"val_accuracy": 0.89, "val_recall": 0.88, "val_threshold": 0.44} if task == "defect" else {
        "val_accuracy": 0.97}  # fmt: skip
    return {"version": version, "task": task, "architecture": f"{task}_arch", "metrics": metrics,
            "training_data": data, "created": "2026-11-20T10:00:00+00:00"}  # fmt: skip


def write_bundle_root(root: Path, *, v2_synthetic: bool = True) -> Path:
    """Two bundles as JSON only (the page reads no weights): v1, and v2 whose parent is v1 and which is live."""
    for version, parent, created, synthetic in (
        ("bundle-v1", None, "2026-11-01T08:00:00+00:00", True),
        ("bundle-v2", "bundle-v1", "2026-11-20T08:00:00+00:00", v2_synthetic),
    ):
        folder = root / "bundles" / version
        for task in ("noise", "defect"):
            (folder / task).mkdir(parents=True)
            model_version = "noise-v1" if task == "noise" else f"defect-{version}"
            (folder / task / "meta.json").write_text(
                json.dumps(_meta(task, model_version, synthetic=synthetic))
            )
        (folder / "pipeline.json").write_text(json.dumps({"format_version": 1, "version": version}))
        card = {"version": version, "parent": parent, "created": created, "synthetic_only": synthetic,
                "commands": ["inspection train defect --data DATA"], "golden": {}}  # fmt: skip
        if version == "bundle-v2":
            card["golden"] = {"accuracy": 0.896, "recall": 0.833, "balanced_accuracy": 0.911,
                              "decided without review": 1.0, "photos": 60, "set": "/golden",
                              "set_sha256": SHA, "seed": 0, "evaluated": "2026-11-21T08:00:00+00:00"}  # fmt: skip
        (folder / "card.json").write_text(json.dumps(card))
    (root / "LIVE").write_text("bundle-v2\n")
    return root


COMPARISON = {
    "tolerance": 0.02,
    "failed": [],
    "rows": [
        {"metric": "accuracy", "live": 0.90, "candidate": 0.896, "gated": True, "change": -0.004, "passed": True},
        {"metric": "balanced accuracy", "live": 0.913, "candidate": 0.911, "gated": False, "change": -0.002,
         "passed": True},
    ],
}  # fmt: skip


@pytest.fixture
def bundle_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_bundle_root(tmp_path / "models")
    url = f"sqlite:///{tmp_path / 'records.db'}"
    store = RecordStore(url)
    store.record_promotion(str(root.resolve()), "bundle-v2", "bundle-v1", "promote", "qa", COMPARISON)
    for key, value in {"INSPECTION_MODELS": str(root), "INSPECTION_DB": url,
                       "INSPECTION_REPORTS": str(tmp_path / "reports"), "INSPECTION_PHOTOS": str(tmp_path / "p"),
                       "INSPECTION_DASHBOARD_NO_MODELS": "1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    return root


def test_cards_read_bundles_and_promotions(bundle_env: Path) -> None:
    from inspection.dashboard import config

    engine = __import__("sqlalchemy").create_engine(config.sources().db_url)
    found = cards.bundle_cards(bundle_env, engine)
    assert [c.version for c in found] == ["bundle-v2", "bundle-v1"]  # newest first
    v2 = found[0]
    assert v2.live and v2.parent == "bundle-v1" and v2.synthetic_only
    assert v2.promotion is not None and v2.promotion["previous"] == "bundle-v1"
    text = cards.card_summary(v2)
    assert "parent version **bundle-v1**" in text and SHA[:12] in text and "seed 0" in text
    assert "1,360 train / 240 validation" in text
    assert cards.decision_text(v2).startswith("Promoted against bundle-v1 by qa")
    table = cards.comparison_frame(v2.promotion)
    assert list(table["gate"]) == ["ok", "not gated"] and table["change (pts)"].iloc[0] == -0.4
    assert ("defect · accuracy", 0.89) in cards.headline_metrics(v2)
    assert found[1].promotion is None and "No promotion" in cards.decision_text(found[1])


def test_models_page_shows_a_card_per_bundle(bundle_env: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/models.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(m.value for m in at.markdown)
    assert "`bundle-v2` · live" in text and "`bundle-v1`" in text
    assert text.count("parent version") == 2 and SHA[:12] in text
    assert "Promoted against bundle\\-v1 by qa" in text  # escaped Markdown
    badges = [m.value for m in at.markdown if "Synthetic data only" in m.value]
    assert len(badges) == 2
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["In use: defect"] == "defect\\-bundle\\-v2" and metrics["defect · accuracy"] == "89.0%"
    assert metrics["accuracy"] == "89.6%"  # the golden set
    versions_table = at.dataframe[-1].value
    assert not versions_table.duplicated(["task", "version"]).any()
    noise = versions_table[versions_table["task"] == "noise"]
    assert len(noise) == 1 and noise["bundles"].iloc[0] == "bundle-v1, bundle-v2"  # one model, two bundles


def test_badge_only_for_synthetic_only_bundles(tmp_path: Path) -> None:
    root = write_bundle_root(tmp_path / "models", v2_synthetic=False)
    found = {c.version: c for c in cards.bundle_cards(root)}
    assert found["bundle-v1"].synthetic_only and not found["bundle-v2"].synthetic_only
    assert "not marked generated data" in cards.card_summary(found["bundle-v2"])


def test_merge_versions_lists_each_version_once() -> None:
    frame = pd.DataFrame(
        [
            {"task": "noise", "version": "n1", "in_use": False, "source": "checkpoint", "bundles": "b1"},
            {"task": "noise", "version": "n1", "in_use": True, "source": "checkpoint", "bundles": "b2"},
            {"task": "noise", "version": "n1", "in_use": False, "source": "store", "bundles": ""},
            {"task": "noise", "version": "n0", "in_use": True, "source": "checkpoint", "bundles": ""},
        ]
    ).reindex(columns=versions.COLUMNS)
    merged = versions.merge_versions(frame).set_index("version")
    assert len(merged) == 2 and merged.loc["n1", "bundles"] == "b1, b2"
    assert merged.loc["n1", "source"] == "checkpoint, store"
    assert not merged.loc["n1", "in_use"]  # the store knows n1 and says it is not in use


def test_metrics_chart_starts_at_zero() -> None:
    frame = pd.DataFrame([{"task": "noise", "version": "a", "metric": "acc", "value": 0.96},
                          {"task": "noise", "version": "b", "metric": "acc", "value": 0.99}])  # fmt: skip
    spec = charts.metrics_chart(frame).to_dict()
    assert spec["spec"]["encoding"]["y"]["scale"]["zero"] is True
