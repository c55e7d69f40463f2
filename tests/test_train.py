import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inspection.cli import main
from inspection.data import synth_casting
from inspection.metrics import binary_nll, cost_threshold, expected_calibration_error, fit_temperature
from inspection.models import load_checkpoint
from inspection.testing import write_tiny_checkpoints
from inspection.train import TRAINERS, TrainConfig, best_threshold
from inspection.trainer import split_indices

TINY_ARCH = {"noise": "test_freq_vgg", "denoiser": "test_unet_ae", "defect": "test_defect_cnn"}


@pytest.mark.parametrize("task", sorted(TRAINERS))
def test_each_trainer_writes_a_loadable_version_folder(task, synthetic_root, tmp_path):
    cfg = TrainConfig(
        task=task,
        data=str(synthetic_root),
        out=str(tmp_path),
        arch=TINY_ARCH[task],
        input_size=32,
        epochs=2,
        batch_size=8,
        quiet=True,
        version="v1",
        threads=1,
    )
    result = TRAINERS[task](cfg)
    assert result.path == tmp_path / task / "v1"
    ck = load_checkpoint(result.path)
    meta = ck.meta
    assert meta["task"] == task and meta["architecture"] == TINY_ARCH[task]
    assert meta["training_data"]["n_images"] == 24 and meta["training_data"]["n_val"] > 0
    assert meta["metrics"]["best_epoch"] in (1, 2)
    assert meta["train_config"]["seed"] == 0
    if task == "defect":
        assert 0 <= meta["threshold"] <= 1 and meta["class_names"] == ["ok", "defective"]
    if task == "noise":
        assert meta["class_names"] == ["clean", "gaussian", "salt_pepper", "periodic"]
        assert 0 <= meta["metrics"]["val_accuracy"] <= 1


def test_same_seed_same_weights(synthetic_root, tmp_path):
    digests = []
    for run in ("a", "b"):
        cfg = TrainConfig(
            task="defect",
            data=str(synthetic_root),
            out=str(tmp_path / run),
            arch="test_defect_cnn",
            input_size=32,
            epochs=1,
            batch_size=8,
            quiet=True,
            version="v",
            threads=1,
            noise_aug=0.5,
        )
        digests.append(json.loads((TRAINERS["defect"](cfg).path / "meta.json").read_text())["weights_sha256"])
    assert digests[0] == digests[1]


def test_time_budget_stops_early(synthetic_root, tmp_path):
    cfg = TrainConfig(
        task="defect",
        data=str(synthetic_root),
        out=str(tmp_path),
        arch="test_defect_cnn",
        input_size=32,
        epochs=50,
        time_budget_s=0.01,
        quiet=True,
        version="v",
    )
    assert TRAINERS["defect"](cfg).metrics  # finished after the first epoch, not fifty
    assert load_checkpoint(tmp_path / "defect" / "v").meta["metrics"]["best_epoch"] == 1


def test_bad_data_folder_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected the layout"):
        TRAINERS["defect"](TrainConfig(task="defect", data=str(tmp_path), quiet=True))
    (tmp_path / "train" / "good").mkdir(parents=True)
    with pytest.raises(ValueError, match="no defective class folder"):
        TRAINERS["defect"](TrainConfig(task="defect", data=str(tmp_path), quiet=True))


def test_split_is_stratified_and_disjoint():
    labels = np.array([0] * 40 + [1] * 60)
    tr, va = split_indices(labels, 0.2, 0)
    assert not set(tr) & set(va) and len(tr) + len(va) == 100
    assert labels[va].sum() == 12 and (labels[va] == 0).sum() == 8


def test_best_threshold_separates_validation_scores():
    prob = np.array([0.1, 0.2, 0.35, 0.4, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 1])
    t = best_threshold(prob, labels)
    assert 0.35 < t <= 0.4


# --- sizes, kinds, costs, fine-tuning ------------------------------------------------------------------


def write_photos(root, classes, *, n=6, seed=0, sizes=((40, 56), (56, 40), (48, 48), (64, 44))):
    """Castings of mixed sizes and aspect ratios in ``root/{train,test}/<class>/``; class -> defect kind."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("test", 2)):
        for cls, kind in classes.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                h, w = sizes[i % len(sizes)]
                img = synth_casting(rng, max(h, w), kind)
                top, left = (max(h, w) - h) // 2, (max(h, w) - w) // 2
                cv2.imwrite(str(root / split / cls / f"{i}.png"), img[top : top + h, left : left + w])
    return root


def tiny_defect_config(data, out, **kw):
    base = dict(
        task="defect",
        data=str(data),
        out=str(out),
        arch="test_defect_cnn",
        input_size=32,
        epochs=2,
        batch_size=4,
        quiet=True,
        version="v1",
        threads=1,
    )
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    """A pre-bundle models root with the tiny noise and denoiser models; tests train the defect model into it."""
    parts = write_tiny_checkpoints(tmp_path_factory.mktemp("parts"))
    return parts


def _models_with(parts, tmp_path):
    root = tmp_path / "models"
    for task in ("noise", "denoiser"):
        shutil.copytree(parts / task, root / task)
    return root


def _cli_train(data, models, *extra):
    args = ["train", "defect", "--data", str(data), "--out", str(models), "--arch", "test_defect_cnn"]
    args += ["--input-size", "32", "--epochs", "1", "--batch-size", "4", "--quiet", "--version", "v1", *extra]
    return main(args)


def _cli_evaluate(data, models, reports, *extra):
    args = ["evaluate", "--data", str(data), "--models", str(models), "--reports", str(reports), "--quiet"]
    return main([*args, "--methods", "median", "--no-realistic", *extra])


def test_mixed_sizes_with_kinds_train_and_evaluate_from_the_cli(tmp_path, models_root, capsys):
    data = write_photos(tmp_path / "data", {"ok": None, "def_crack": "crack", "def_burr": "burr"})
    models = _models_with(models_root, tmp_path)
    assert _cli_train(data, models, "--resize", "crop") == 0
    out = json.loads(capsys.readouterr().out)
    meta = load_checkpoint(out["checkpoint"]).meta
    assert meta["kinds"] == ["burr", "crack"] and meta["model_kwargs"] == {"num_kinds": 2}
    assert meta["preprocessing"]["resize"] == "crop" and meta["preprocessing"]["size"] == 32
    assert meta["preprocessing"]["mean"] != 0.5  # measured on the photos, not assumed
    assert meta["calibration"]["temperature"] > 0 and not meta["kinds_only"]
    for key in (
        "val_accuracy",
        "val_balanced_accuracy",
        "val_recall",
        "val_specificity",
        "val_kind_accuracy",
    ):
        assert 0 <= out[key] <= 1
    with pytest.warns(FutureWarning):
        assert _cli_evaluate(data, models, tmp_path / "reports") == 0
    printed = capsys.readouterr().out
    assert "balanced accuracy" in printed and "| crack |" in printed
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    kinds = report["kinds"]["clean"]
    assert kinds["true"] == ["burr", "crack"] and kinds["predicted"] == ["burr", "crack", "ok"]
    assert sum(map(sum, kinds["matrix"])) == 4 and set(kinds["recall_defective"]) == {"burr", "crack"}
    assert "balanced_accuracy" in report["defect"]["conditions"]["noisy_routed"]


def test_kinds_only_folder_trains_and_evaluates_from_the_cli(tmp_path, models_root, capsys):
    data = write_photos(tmp_path / "data", {"blowhole": "blowhole", "crack": "crack", "scratch": "scratch"})
    models = _models_with(models_root, tmp_path)
    with pytest.raises(SystemExit, match="--kinds-only"):  # a message that says what to do, not a traceback
        _cli_train(data, tmp_path / "refused")
    assert _cli_train(data, models, "--kinds-only") == 0
    meta = load_checkpoint(json.loads(capsys.readouterr().out)["checkpoint"]).meta
    assert (
        meta["kinds_only"] and meta["kinds"] == ["blowhole", "crack", "scratch"] and meta["threshold"] == 0.0
    )
    with pytest.warns(FutureWarning):
        assert _cli_evaluate(data, models, tmp_path / "reports", "--kinds-only") == 0
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    assert report["defect"]["conditions"]["clean"]["sensitivity"] == 1.0  # every part is judged defective
    assert report["kinds"]["clean"]["predicted"] == ["blowhole", "crack", "scratch", "ok"]


def test_labels_csv_gives_kinds(tmp_path):
    data = write_photos(tmp_path / "data", {"good": None, "a": "crack", "b": "blowhole"}, n=4)
    rows = ["path,label,kind"]
    for p in sorted((data / "train").rglob("*.png")):
        label, kind = (
            ("ok", "")
            if p.parent.name == "good"
            else ("defective", {"a": "crack", "b": "hole"}[p.parent.name])
        )
        rows.append(f"{p.relative_to(data).as_posix()},{label},{kind}")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    result = TRAINERS["defect"](tiny_defect_config("", tmp_path / "m", labels=str(data / "labels.csv")))
    meta = load_checkpoint(result.path).meta
    assert meta["kinds"] == ["crack", "hole"] and meta["training_data"]["n_images"] == 12
    assert meta["training_data"]["labels_csv"].endswith("labels.csv")


def test_single_defect_folder_means_no_kinds(synthetic_root, tmp_path):
    meta = load_checkpoint(TRAINERS["defect"](tiny_defect_config(synthetic_root, tmp_path)).path).meta
    assert meta["kinds"] == [] and meta["model_kwargs"] == {}
    assert set(meta["costs"]) >= {"miss_cost", "false_reject_cost", "defect_rate"}
    assert meta["class_balance"]["pos_weight"] > 0 and meta["parent"] is None and meta["replay"] == []
    cal = meta["calibration"]
    assert cal["nll_after"] <= cal["nll_before"] + 1e-9 and {"ece_before", "ece_after"} <= set(cal)


def test_temperature_fit_lowers_nll_on_an_overconfident_toy():
    rng = np.random.default_rng(0)
    labels = rng.random(2000) < 0.3
    true_logit = np.where(labels, 1.0, -1.0) + rng.normal(0, 1.5, labels.size)
    logits = 4.0 * true_logit  # four times too confident
    t = fit_temperature(logits, labels)
    assert 2.0 < t < 8.0
    assert binary_nll(logits, labels, t) < binary_nll(logits, labels) - 0.1
    p_before, p_after = 1 / (1 + np.exp(-logits)), 1 / (1 + np.exp(-logits / t))
    assert expected_calibration_error(p_after, labels) < expected_calibration_error(p_before, labels)


def test_cost_threshold_falls_as_misses_cost_more():
    rng = np.random.default_rng(1)
    labels = rng.random(400) < 0.3
    prob = np.clip(np.where(labels, 0.65, 0.35) + rng.normal(0, 0.15, labels.size), 0, 1)
    thresholds = [cost_threshold(prob, labels, miss_cost=m, false_reject_cost=1.0) for m in (0.5, 1, 4, 20)]
    assert thresholds == sorted(thresholds, reverse=True) and thresholds[0] > thresholds[-1]
    recalls = [(prob[labels] >= t).mean() for t in thresholds]
    assert recalls == sorted(recalls) and recalls[-1] > recalls[0]
    # with costs 1 and 1 and the data's own defect rate, the cost is the error rate
    t = cost_threshold(prob, labels)
    best = max(((prob >= u) == labels).mean() for u in np.unique(prob))
    assert ((prob >= t) == labels).mean() == pytest.approx(best)


def test_init_from_grows_the_head_and_keeps_old_weights(tmp_path):
    old = write_photos(tmp_path / "old", {"ok": None, "def_crack": "crack", "def_burr": "burr"}, n=4)
    v1 = TRAINERS["defect"](tiny_defect_config(old, tmp_path / "m", epochs=1)).path
    new = write_photos(tmp_path / "new", {"ok": None, "def_scratch": "scratch"}, n=4, seed=5)
    cfg = tiny_defect_config(
        new, tmp_path / "m", epochs=1, version="v2", init_from=str(v1), replay=(str(old),), lr=0.0
    )
    v2 = TRAINERS["defect"](cfg).path
    parent, child = load_checkpoint(v1), load_checkpoint(v2)
    meta = child.meta
    assert meta["kinds"] == ["burr", "crack", "scratch"] and meta["model_kwargs"] == {"num_kinds": 3}
    assert (
        meta["parent"]["version"] == "v1"
        and meta["parent"]["weights_sha256"] == parent.meta["weights_sha256"]
    )
    assert meta["preprocessing"] == parent.meta["preprocessing"]
    assert [r["root"] for r in meta["replay"]] == [str(old.resolve())] and meta["replay"][0]["sha256"]
    sources = meta["training_data"]["sources"]
    assert [s["replay"] for s in sources] == [False, True]
    a, b = parent.model.state_dict(), child.model.state_dict()
    head = "head.1"
    assert b[f"{head}.weight"].shape[0] == 4 and a[f"{head}.weight"].shape[0] == 3
    # lr 0: nothing but the grown rows (and the bias correction of output 0) differs from the parent
    assert torch.equal(b[f"{head}.weight"][:3], a[f"{head}.weight"])
    assert torch.equal(b[f"{head}.bias"][1:3], a[f"{head}.bias"][1:3])
    for k, v in a.items():
        if not k.startswith(head) and "running" not in k and "num_batches" not in k:
            assert torch.equal(v, b[k]), k
    with pytest.raises(ValueError, match="differs from the --init-from"):
        TRAINERS["defect"](replace(cfg, arch="defect_cnn_small", version="v3"))


def test_unreadable_training_photo_is_recorded_not_fatal(tmp_path):
    data = write_photos(tmp_path / "data", {"ok": None, "def_front": "crack"}, n=4)
    (data / "train" / "ok" / "broken.png").write_bytes(b"\x89PNG not really")
    meta = load_checkpoint(TRAINERS["defect"](tiny_defect_config(data, tmp_path / "m", epochs=1)).path).meta
    rejected = meta["training_data"]["rejected"]
    assert [Path(r["path"]).name for r in rejected] == ["broken.png"] and rejected[0]["reason"]


@pytest.mark.parametrize("task", ["noise", "denoiser"])
def test_noise_and_denoiser_train_on_mixed_sizes(task, tmp_path):
    data = write_photos(tmp_path / "data", {"ok": None, "def_front": "crack"}, n=4)
    cfg = replace(tiny_defect_config(data, tmp_path / "m", epochs=1), task=task, arch=TINY_ARCH[task])
    assert load_checkpoint(TRAINERS[task](cfg).path).meta["training_data"]["n_images"] == 8


def test_temperature_stays_finite_when_validation_is_separated():
    logits = np.array([-6.0, -5.0, -4.0, 4.0, 5.0, 7.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    t = fit_temperature(logits, labels)
    assert 0.5 < t < 10  # hard targets would drive T to its lower bound and P(defective) to exactly 0 or 1
    assert 0.7 < 1 / (1 + np.exp(-4.0 / t)) < 0.999
