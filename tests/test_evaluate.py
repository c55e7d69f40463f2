import json

import cv2

from inspection import NOISE_TYPES
from inspection.evaluate import EvalConfig, evaluate, kind_summary
from inspection.metrics import binary_scores


def test_report_has_documented_schema(synthetic_root, tiny_models, tmp_path):
    cfg = EvalConfig(
        data=str(synthetic_root),
        models=str(tiny_models),
        reports=str(tmp_path),
        quiet=True,
        methods=("median", "notch", "autoencoder"),
        blind_denoiser=str(tiny_models / "denoiser"),
        defect_aug=str(tiny_models / "defect"),
    )
    report, folder = evaluate(cfg)
    assert folder.parent == tmp_path and folder.name.endswith("-" + synthetic_root.name)
    on_disk = json.loads((folder / "report.json").read_text())
    assert on_disk["id"] == report["id"] and on_disk["schema_version"] == 1
    n = report["dataset"]["n_images"]
    assert n == 8
    nc = report["noise_classifier"]
    assert sum(map(sum, nc["confusion"]["matrix"])) == 4 * n
    assert set(nc["recall"]) == set(NOISE_TYPES)
    conds = report["defect"]["conditions"]
    for c in (
        "clean",
        "noisy_none",
        "noisy_routed",
        "noisy_oracle",
        "noisy_blind",
        "aug_noisy_none",
        "aug_noisy_routed",
        "clean_routed",
    ):
        assert c in conds
    assert conds["clean"]["n"] == n and conds["noisy_routed"]["n"] == 3 * n
    assert set(report["defect_accuracy"]["noisy_routed_per_type"]) == {"gaussian", "salt_pepper", "periodic"}
    assert 0 <= report["defect_erasure"] <= 1
    calibration = report["calibration"]
    assert (
        calibration["noise"]["n"] == 4 * n and calibration["defect"]["n"] == 4 * n
    )  # clean + 3 routed noisy
    assert all(0 <= calibration[m]["ece"] <= 1 for m in ("noise", "defect"))
    methods = {(r["noise_type"], r["method"]) for r in report["denoise"]["summary"]}
    assert ("salt_pepper", "median") in methods and ("periodic", "notch") in methods
    assert ("gaussian", "routed") in methods and ("gaussian", "none") in methods
    assert len(report["denoise"]["samples"]) == 3 * n * (3 + 2)
    for g in report["gallery"]:
        for role in ("noisy", "denoised", "clean", "spectrum", "heat"):
            assert (folder / g[role]).is_file()
        heat = cv2.imread(str(folder / g["heat"]), cv2.IMREAD_UNCHANGED)
        denoised = cv2.imread(str(folder / g["denoised"]), cv2.IMREAD_GRAYSCALE)
        assert heat.shape == (*denoised.shape, 3)  # the heat map in colour over the denoised photo
        assert (heat[..., 0] != heat[..., 2]).any() and 0.0 <= g["p_defective"] <= 1.0
    assert set(report["realistic"]) == {
        "poisson_gaussian",
        "correlated",
        "jpeg_noisy",
        "salt_pepper_gaussian",
    }
    md = (folder / "report.md").read_text()
    assert "| noisy, routed denoising |" in md and "| salt_pepper | median |" in md


def test_same_seed_same_report(synthetic_root, tiny_models, tmp_path):
    cfg = EvalConfig(
        data=str(synthetic_root),
        models=str(tiny_models),
        reports=str(tmp_path),
        quiet=True,
        methods=("median",),
        realistic=False,
        max_images=4,
    )
    a, _ = evaluate(cfg)
    b, _ = evaluate(cfg)
    assert a["noise_classifier"] == b["noise_classifier"] and a["defect"] == b["defect"]


def test_binary_scores():
    s = binary_scores([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert s["accuracy"] == 0.6 and s["sensitivity"] == 2 / 3 and s["specificity"] == 0.5
    assert abs(s["f1"] - 2 * 2 / (2 * 2 + 1 + 1)) < 1e-12


def test_balanced_accuracy_beside_accuracy():
    s = binary_scores([0, 0, 0, 0, 1], [0, 0, 0, 0, 1])
    assert s["balanced_accuracy"] == 1.0
    always_ok = binary_scores([0] * 10, [1] * 2 + [0] * 8)
    assert always_ok["accuracy"] == 0.8 and always_ok["balanced_accuracy"] == 0.5
    assert binary_scores([1, 0], [1, 1])["balanced_accuracy"] == 0.5  # no good part: the defect recall


def test_kind_summary_counts_kinds_and_misses():
    true = ["crack", "crack", "burr", "scratch", "", ""]
    pred = ["crack", "ok", "crack", "burr", "ok", "burr"]
    k = kind_summary(true, pred, ["burr", "crack"])
    assert k["true"] == ["burr", "crack", "scratch"] and k["predicted"] == ["burr", "crack", "ok"]
    assert k["matrix"] == [[0, 1, 0], [0, 1, 1], [1, 0, 0]]
    assert k["recall_defective"] == {"burr": 1.0, "crack": 0.5, "scratch": 1.0}
    assert k["kind_accuracy"] == {"burr": 0.0, "crack": 0.5, "scratch": None}  # never learned: no accuracy
    no_kinds = kind_summary(["crack", "burr"], ["defective", "ok"], [])
    assert no_kinds["predicted"] == ["defective", "ok"] and no_kinds["recall_defective"]["crack"] == 1.0


def test_percentages_never_round_a_miss_away() -> None:
    """Reports, the promotion gate and the dashboard show 2,603 of 2,604 as 99.96%, never as 100.0%."""
    from inspection.results import percent_text

    assert percent_text(2603 / 2604) == "99.96%" and percent_text(1 / 2604) == "0.04%"
    assert percent_text(1.0) == "100.0%" and percent_text(0.0) == "0.0%" and percent_text(0.9123) == "91.2%"
    assert percent_text(None) == "-" and percent_text(float("nan"), missing="n/a") == "n/a"
