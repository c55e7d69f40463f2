import hashlib
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.training import TINY_ARCH, tiny_train_config, write_photos

from inspection import trainer as trainer_module
from inspection.cli import main
from inspection.data import DatasetError
from inspection.metrics import (
    binary_nll,
    cost_threshold,
    expected_calibration_error,
    fit_temperature,
    fit_temperature_multiclass,
    top_label_ece,
)
from inspection.models import load_checkpoint
from inspection.testing import write_tiny_checkpoints
from inspection.train import TRAINERS, best_threshold, defect_masks, denoiser_dir, edge_weighted_l1
from inspection.trainer import Trainer, split_indices


@pytest.mark.parametrize("task", sorted(TRAINERS))
def test_each_trainer_writes_a_loadable_version_folder(task, synthetic_root, tmp_path):
    cfg = tiny_train_config(synthetic_root, tmp_path, task=task, batch_size=8)
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
        cal = meta["calibration"]
        assert cal["fitted"] and cal["temperature"] > 0 and 0 <= cal["ece_after"] <= 1


def test_same_seed_same_weights(synthetic_root, tmp_path):
    digests = []
    for run in ("a", "b"):
        cfg = tiny_train_config(
            synthetic_root, tmp_path / run, epochs=1, batch_size=8, version="v", noise_aug=0.5
        )
        digests.append(json.loads((TRAINERS["defect"](cfg).path / "meta.json").read_text())["weights_sha256"])
    assert digests[0] == digests[1]


def test_time_budget_stops_early(synthetic_root, tmp_path):
    cfg = tiny_train_config(synthetic_root, tmp_path, epochs=50, time_budget_s=0.01, version="v")
    assert TRAINERS["defect"](cfg).metrics  # finished after the first epoch, not fifty
    assert load_checkpoint(tmp_path / "defect" / "v").meta["metrics"]["best_epoch"] == 1


def test_bad_data_folder_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected the layout"):
        TRAINERS["defect"](tiny_train_config(tmp_path, tmp_path / "m"))
    (tmp_path / "train" / "good").mkdir(parents=True)
    with pytest.raises(ValueError, match="no defective class folder"):
        TRAINERS["defect"](tiny_train_config(tmp_path, tmp_path / "m"))


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
    result = TRAINERS["defect"](tiny_train_config("", tmp_path / "m", labels=str(data / "labels.csv")))
    meta = load_checkpoint(result.path).meta
    assert meta["kinds"] == ["crack", "hole"] and meta["training_data"]["n_images"] == 12
    assert meta["training_data"]["labels_csv"].endswith("labels.csv")


def test_single_defect_folder_means_no_kinds(synthetic_root, tmp_path):
    meta = load_checkpoint(TRAINERS["defect"](tiny_train_config(synthetic_root, tmp_path)).path).meta
    assert meta["kinds"] == [] and meta["model_kwargs"] == {}
    assert set(meta["costs"]) >= {"miss_cost", "false_reject_cost", "defect_rate"}
    assert meta["parent"] is None and meta["replay"] == [] and meta["training_data"]["golden_excluded"] == 0
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


def test_multiclass_temperature_calibrates_an_overconfident_toy():
    rng = np.random.default_rng(0)
    labels = rng.integers(4, size=4000)
    logits = rng.normal(0, 1, (4000, 4))
    logits[np.arange(4000), labels] += 1.5  # right about 70% of the time
    hot = 5.0 * logits  # five times too confident
    t = fit_temperature_multiclass(hot, labels)
    assert 3.0 < t < 8.0

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    assert top_label_ece(softmax(hot / t), labels) < 0.03 < top_label_ece(softmax(hot), labels)


def test_per_kind_recall_shows_a_forgotten_kind():
    from inspection.train import kind_recalls

    flagged = np.array([1, 1, 0, 0, 1, 0], bool)
    labels = np.array([1, 1, 1, 1, 0, 0])
    kinds = np.array([0, 0, 1, 1, -1, -1])
    out = kind_recalls(flagged, labels, kinds, ["crack", "missing_material", "never_seen"])
    assert out == {"val_recall_crack": 1.0, "val_recall_missing_material": 0.0, "val_worst_kind_recall": 0.0}


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
    v1 = TRAINERS["defect"](tiny_train_config(old, tmp_path / "m", epochs=1)).path
    new = write_photos(tmp_path / "new", {"ok": None, "def_scratch": "scratch"}, n=4, seed=5)
    cfg = tiny_train_config(
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
    # lr 0: nothing but the grown rows differs from the parent; output 0's bias, already corrected for the
    # parent's class balance, is not corrected again
    assert torch.equal(b[f"{head}.weight"][:3], a[f"{head}.weight"])
    assert torch.equal(b[f"{head}.bias"][:3], a[f"{head}.bias"])
    for k, v in a.items():
        if not k.startswith(head) and "running" not in k and "num_batches" not in k:
            assert torch.equal(v, b[k]), k
    balance = meta["class_balance"]
    assert balance["bias_correction"] == 0.0
    assert balance["logit_adjustment"] == pytest.approx(math.log(balance["pos_weight"]))
    # so the outputs are the parent's (given the same batch-norm statistics, which training mode updates)
    same_stats = parent.model
    same_stats.load_state_dict({**a, **{k: v for k, v in b.items() if "running" in k or "num_batches" in k}})
    x = torch.randn(5, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # equal up to float rounding: the grown layer multiplies in another order
        torch.testing.assert_close(child.model(x)[:, :3], same_stats(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="differs from the --init-from"):
        TRAINERS["defect"](replace(cfg, arch="defect_cnn_small", version="v3"))


def test_unreadable_training_photo_is_recorded_not_fatal(tmp_path):
    data = write_photos(tmp_path / "data", {"ok": None, "def_front": "crack"}, n=4)
    (data / "train" / "ok" / "broken.png").write_bytes(b"\x89PNG not really")
    meta = load_checkpoint(TRAINERS["defect"](tiny_train_config(data, tmp_path / "m", epochs=1)).path).meta
    rejected = meta["training_data"]["rejected"]
    assert [Path(r["path"]).name for r in rejected] == ["broken.png"] and rejected[0]["reason"]


@pytest.mark.parametrize("task", ["noise", "denoiser"])
def test_noise_and_denoiser_train_on_mixed_sizes(task, tmp_path):
    data = write_photos(tmp_path / "data", {"ok": None, "def_front": "crack"}, n=4)
    cfg = replace(tiny_train_config(data, tmp_path / "m", epochs=1), task=task, arch=TINY_ARCH[task])
    assert load_checkpoint(TRAINERS[task](cfg).path).meta["training_data"]["n_images"] == 8


def test_edge_weighted_loss_makes_an_erased_crack_cost_more_than_flat_error():
    clean = torch.full((1, 1, 32, 32), 0.5)
    clean[..., 16, 4:28] = 0.1  # a one-pixel dark crack
    erased = torch.full_like(clean, 0.5)  # the crack smoothed away: 24 pixels off by 0.4
    hazy = clean.clone()
    hazy[..., 2:8, 2:18] += 0.1  # the same total error, spread over a flat area
    assert edge_weighted_l1(erased, clean, 0.0) == pytest.approx(float((erased - clean).abs().mean()))
    assert edge_weighted_l1(erased, clean, 0.0) == pytest.approx(float(edge_weighted_l1(hazy, clean, 0.0)))
    assert edge_weighted_l1(erased, clean, 4.0) > 5 * edge_weighted_l1(hazy, clean, 4.0)


def test_denoiser_trains_with_the_edge_weighted_loss(tmp_path):
    data = write_photos(tmp_path / "data", {"ok": None, "def_front": "crack"}, n=4)
    cfg = replace(
        tiny_train_config(data, tmp_path / "m", epochs=1), task="denoiser", arch=TINY_ARCH["denoiser"]
    )
    meta = load_checkpoint(TRAINERS["denoiser"](replace(cfg, edge_weight=4.0)).path).meta
    assert meta["train_config"]["edge_weight"] == 4.0 and math.isfinite(meta["metrics"]["val_psnr"])


def test_defect_weight_makes_an_erased_defect_cost_more_than_the_same_error_elsewhere():
    clean = torch.full((1, 1, 32, 32), 0.5)
    clean[..., 16, 4:28] = 0.1
    mask = torch.zeros_like(clean)
    mask[..., 15:18, 2:30] = 1.0  # the crack's drawn mask, dilated
    erased = torch.full_like(clean, 0.5)
    hazy = clean.clone()
    hazy[..., 2:8, 2:18] += 0.1
    weight = 1.0 + 9.0 * mask
    assert edge_weighted_l1(erased, clean, 0.0, weight) > 5 * edge_weighted_l1(hazy, clean, 0.0, weight)
    assert edge_weighted_l1(hazy, clean, 0.0, torch.ones_like(clean)) == pytest.approx(
        float(edge_weighted_l1(hazy, clean, 0.0))
    )


def test_loss_weights_are_refused_outside_the_denoiser_or_below_zero():
    from inspection.configs import TrainConfig

    assert TrainConfig("denoiser", "d", defect_weight=9).resolved().defect_weight == 9
    bad_configs = (
        TrainConfig("defect", "d", defect_weight=9),
        TrainConfig("denoiser", "d", edge_weight=-1),
        TrainConfig("denoiser", "d", defect_weight=float("nan")),
    )
    for bad in bad_configs:
        with pytest.raises(ValueError, match="a loss weight of the denoiser"):
            bad.resolved()


def test_noisy_crop_takes_the_mask_through_the_same_rotation_and_window():
    from inspection.train import noisy_crop

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 200, (40, 50), dtype=np.uint8)
    mask = np.zeros(photo.shape, np.uint8)
    mask[10:30, 20:24] = 1
    photo[mask == 1] = 255  # the "defect": every masked pixel, and only those, is 255
    for seed in range(8):
        noisy, clean, crop = noisy_crop(photo, "clean", 16, np.random.default_rng(seed), mask)
        assert np.array_equal(crop == 1, clean == 255)
        plain = noisy_crop(photo, "gaussian", 16, np.random.default_rng(seed))
        masked = noisy_crop(photo, "gaussian", 16, np.random.default_rng(seed), mask)
        assert np.array_equal(plain[0], masked[0]) and np.array_equal(plain[1], masked[1])  # same draws


def test_denoiser_trains_with_the_defect_weighted_loss_on_generated_masks(tmp_path):
    from inspection.data import write_synthetic_dataset

    data = tmp_path / "data"
    write_synthetic_dataset(data, n_train=16, n_test=0, size=64, seed=0, masks=True)
    cfg = replace(
        tiny_train_config(data, tmp_path / "m", epochs=1), task="denoiser", arch=TINY_ARCH["denoiser"]
    )
    meta = load_checkpoint(TRAINERS["denoiser"](replace(cfg, defect_weight=9.0)).path).meta
    assert meta["train_config"]["defect_weight"] == 9.0 and math.isfinite(meta["metrics"]["val_psnr"])
    # Every defective photo's mask is found, at the photo's size also when photos are scaled on loading.
    for load_size in (0, 48):
        tr = Trainer(replace(cfg, defect_weight=9.0, load_size=load_size).resolved())
        masks = defect_masks(tr)
        assert [bool(m.any()) for m in masks] == [bool(label) for label in tr.labels]
        assert all(m.shape == im.shape for m, im in zip(masks, tr.images, strict=True))
    without = write_photos(tmp_path / "plain", {"ok": None, "def_front": "crack"}, n=4)
    with pytest.raises(DatasetError, match="inspection synth --masks"):
        TRAINERS["denoiser"](replace(cfg, data=str(without), defect_weight=9.0))


def test_temperature_stays_finite_when_validation_is_separated():
    logits = np.array([-6.0, -5.0, -4.0, 4.0, 5.0, 7.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    t = fit_temperature(logits, labels)
    assert 0.5 < t < 10  # hard targets would drive T to its lower bound and P(defective) to exactly 0 or 1
    assert 0.7 < 1 / (1 + np.exp(-4.0 / t)) < 0.999


# --- kinds only is asked for, never inferred -----------------------------------------------------------------


def test_no_ok_photo_without_kinds_only_is_refused(tmp_path, models_root):
    # a week where only defects were labelled, trained without replay
    defects = write_photos(tmp_path / "week", {"def_crack": "crack", "def_burr": "burr"}, n=4)
    with pytest.raises(
        DatasetError, match=r"no ok photos.*add --replay with ok photos, or pass --kinds-only"
    ):
        TRAINERS["defect"](tiny_train_config(defects, tmp_path / "m"))
    with pytest.raises(SystemExit, match="no ok photos"):
        _cli_train(defects, tmp_path / "cli")
    assert not (tmp_path / "m" / "defect").exists()
    # replaying data with ok photos makes it a full defect model
    old = write_photos(tmp_path / "old", {"ok": None, "def_crack": "crack"}, n=4, seed=3)
    meta = load_checkpoint(
        TRAINERS["defect"](tiny_train_config(defects, tmp_path / "m", epochs=1, replay=(str(old),))).path
    ).meta
    assert not meta["kinds_only"] and meta["calibration"]["fitted"]


def test_kinds_only_parent_fine_tuned_with_kinds_only(tmp_path):
    kinds = {"blowhole": "blowhole", "crack": "crack"}
    v1 = TRAINERS["defect"](
        tiny_train_config(write_photos(tmp_path / "a", kinds, n=4), tmp_path / "m", epochs=1, kinds_only=True)
    ).path
    assert load_checkpoint(v1).meta["kinds_only"]
    new = write_photos(tmp_path / "b", {"crack": "crack", "scratch": "scratch"}, n=4, seed=2)
    cfg = tiny_train_config(new, tmp_path / "m", epochs=1, version="v2", init_from=str(v1), kinds_only=True)
    meta = load_checkpoint(TRAINERS["defect"](cfg).path).meta
    assert meta["kinds_only"] and meta["threshold"] == 0.0
    assert meta["kinds"] == ["blowhole", "crack", "scratch"]
    # the same defects in def_ folders, without --kinds-only and without ok photos: refused, not inferred
    labelled = write_photos(tmp_path / "c", {"def_crack": "crack", "def_scratch": "scratch"}, n=4, seed=2)
    with pytest.raises(DatasetError, match="no ok photos"):
        TRAINERS["defect"](replace(cfg, data=str(labelled), kinds_only=False, version="v3"))


# --- meta.json is written once, complete --------------------------------------------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the raise runs."""


def test_a_kill_right_after_the_checkpoint_is_written_leaves_its_whole_meta(
    synthetic_root, tmp_path, monkeypatch
):
    real = trainer_module.save_checkpoint

    def write_then_die(*args, **kw):
        real(*args, **kw)
        raise Killed

    monkeypatch.setattr(trainer_module, "save_checkpoint", write_then_die)
    with pytest.raises(Killed):
        TRAINERS["defect"](tiny_train_config(synthetic_root, tmp_path, epochs=1))
    meta = load_checkpoint(tmp_path / "defect" / "v1").meta
    assert {"preprocessing", "kinds", "kinds_only", "calibration", "costs", "class_balance"} <= set(meta)
    assert meta["calibration"]["fitted"] and meta["preprocessing"]["mean"] != 0.5


# --- --denoiser takes what --models takes -------------------------------------------------------------------


def test_denoiser_from_a_models_root_a_bundle_or_a_checkpoint(tiny_root, tiny_models, tmp_path):
    expected = tiny_models / "denoiser"
    assert denoiser_dir(tiny_root) == expected and denoiser_dir(tiny_models) == expected
    assert denoiser_dir(expected) == expected  # a checkpoint folder
    task = tmp_path / "denoiser"  # a pre-bundle task folder
    shutil.copytree(expected, task / "d1")
    (task / "CURRENT").write_text("d1\n")
    assert denoiser_dir(task) == task / "d1" and denoiser_dir(tmp_path) == task / "d1"
    data = write_photos(tmp_path / "data", {"ok": None, "def_front": "crack"}, n=4)
    cfg = tiny_train_config(data, tmp_path / "m", epochs=1, noise_aug=1.0, denoiser=str(tiny_root))
    assert load_checkpoint(TRAINERS["defect"](cfg).path).meta["train_config"]["denoiser"] == str(tiny_root)


# --- golden photos never enter training ---------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_golden_photos_are_dropped_from_every_root(tmp_path, monkeypatch):
    data = write_photos(tmp_path / "data", {"ok": None, "def_front": "crack"}, n=4)
    golden = data / "test" / "ok" / "0.png"
    (data / "dataset.json").write_text(json.dumps({"golden_sha256": [_sha256(golden).upper()]}))
    replay = write_photos(tmp_path / "replay", {"ok": None, "def_front": "burr"}, n=4, seed=9)
    shutil.copyfile(golden, replay / "train" / "ok" / "golden-copy.png")
    shutil.copyfile(golden, data / "train" / "def_front" / "mislabelled-golden.png")
    cfg = tiny_train_config(data, tmp_path / "m", epochs=1, replay=(str(replay),))
    tr = Trainer(cfg)
    assert tr.fingerprint["golden_excluded"] == 2
    assert not {"golden-copy.png", "mislabelled-golden.png"} & {s.path.name for s in tr.samples}
    assert [s["n_images"] for s in tr.sources] == [8, 8]
    meta = load_checkpoint(TRAINERS["defect"](cfg).path).meta
    assert meta["training_data"]["golden_excluded"] == 2 and meta["training_data"]["n_images"] == 16

    # no golden hash known: no photo is hashed
    (data / "dataset.json").write_text(json.dumps({"golden_sha256": []}))
    monkeypatch.setattr(trainer_module, "photo_sha256", lambda path: pytest.fail(f"hashed {path}"))
    assert Trainer(cfg).fingerprint["golden_excluded"] == 0
    (data / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="golden photos cannot be kept out"):
        Trainer(cfg)


# --- class imbalance ----------------------------------------------------------------------------------------


def test_class_weights_follow_the_training_split_counts(tmp_path, monkeypatch):
    # 12 ok, 6 cracks, 3 burrs; the stratified validation split takes 2, 1 and 1, leaving 10, 5 and 2 to train on
    n = {"ok": 12, "def_crack": 6, "def_burr": 3}
    data = write_photos(tmp_path / "data", {"ok": None, "def_crack": "crack", "def_burr": "burr"}, n=n)
    seen: dict[str, list[torch.Tensor]] = {"pos_weight": [], "weight": []}
    bce, ce = torch.nn.functional.binary_cross_entropy_with_logits, torch.nn.functional.cross_entropy

    def spy_bce(*args, **kw):
        seen["pos_weight"].append(kw["pos_weight"].clone())
        return bce(*args, **kw)

    def spy_ce(*args, **kw):
        seen["weight"].append(kw["weight"].clone())
        return ce(*args, **kw)

    monkeypatch.setattr(torch.nn.functional, "binary_cross_entropy_with_logits", spy_bce)
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", spy_ce)
    meta = load_checkpoint(TRAINERS["defect"](tiny_train_config(data, tmp_path / "m", epochs=1)).path).meta
    balance = meta["class_balance"]
    assert balance["train_counts"] == {"ok": 10, "defective": 7, "burr": 2, "crack": 5}
    assert balance["pos_weight"] == pytest.approx(10 / 7)  # n_ok / n_defective
    # inverse kind frequency, normalised so a balanced set would weigh 1: 7 / (2 kinds * count)
    assert balance["kind_weights"] == pytest.approx({"burr": 7 / 4, "crack": 7 / 10})
    assert (
        balance["bias_correction"] == pytest.approx(-math.log(10 / 7)) and balance["logit_adjustment"] == 0.0
    )
    # and they are the weights the loss used
    assert seen["pos_weight"] and all(float(w) == pytest.approx(10 / 7) for w in seen["pos_weight"])
    assert seen["weight"] and all(w.tolist() == pytest.approx([7 / 4, 7 / 10]) for w in seen["weight"])


def test_validation_sees_each_photo_clean_and_under_each_routed_noise(synthetic_root, tmp_path):
    from inspection.train import validation_views
    from inspection.transforms import DefectTransform

    transform = DefectTransform(size=32)
    kinds = np.full(24, -1)
    plain = Trainer(tiny_train_config(synthetic_root, tmp_path))
    x, y, k = validation_views(plain, transform, kinds, None)
    assert len(x) == len(plain.val_idx) and np.array_equal(y, plain.labels[plain.val_idx])
    noisy = Trainer(tiny_train_config(synthetic_root, tmp_path, noise_aug=0.5))
    x, y, k = validation_views(noisy, transform, kinds, None)
    n = len(noisy.val_idx)
    assert (
        x.shape[0] == 4 * n and np.array_equal(y, np.tile(noisy.labels[noisy.val_idx], 4)) and len(k) == 4 * n
    )
    assert not torch.equal(x[:n], x[n : 2 * n])  # the gaussian copies differ from the clean photos
    camera = Trainer(tiny_train_config(synthetic_root, tmp_path, noise_aug=0.5, noise_types=("camera",)))
    x, y, k = validation_views(camera, transform, kinds, None)
    assert x.shape[0] == 5 * n  # and once under camera noise
    assert not torch.equal(x[:n], x[4 * n :])


def test_defect_augmentation_draws_camera_noise_only_when_asked():
    from inspection.train import augmentation_noises

    assert augmentation_noises(("gaussian",)) == ("gaussian", "salt_pepper", "periodic")
    assert augmentation_noises(("camera",)) == ("gaussian", "salt_pepper", "periodic", "camera")


def test_noise_class_draw_adds_camera_noise_to_the_gaussian_class_only_when_asked():
    from inspection.noise import add_noise, camera_noise
    from inspection.train import noise_class_draw

    photo = np.tile(np.linspace(20, 235, 96).astype(np.uint8), (96, 1))
    for kind in ("clean", "gaussian", "periodic"):  # without camera: exactly add_noise, same random stream
        got = noise_class_draw(photo, kind, ("gaussian",), np.random.default_rng(4))
        assert np.array_equal(got, add_noise(photo, kind, rng=np.random.default_rng(4)))
    draws = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        picked_camera = rng.random() < 0.5
        expected = camera_noise(photo, rng) if picked_camera else add_noise(photo, "gaussian", rng=rng)
        assert np.array_equal(
            noise_class_draw(photo, "gaussian", ("camera",), np.random.default_rng(seed)), expected
        )
        draws.append(picked_camera)
    assert 10 <= sum(draws) <= 30
    periodic = noise_class_draw(photo, "periodic", ("camera",), np.random.default_rng(4))
    assert np.array_equal(periodic, add_noise(photo, "periodic", rng=np.random.default_rng(4)))


def test_noised_copies_are_seeded_by_photo_and_kind_made_once_and_fitted(synthetic_root, tmp_path):
    from inspection.noise import add_training_noise
    from inspection.train import NoisedCopies
    from inspection.transforms import DefectTransform

    tr = Trainer(tiny_train_config(synthetic_root, tmp_path, noise_aug=0.5, seed=3))
    transform = DefectTransform(size=32)
    cache = NoisedCopies(tr, transform, None)
    first = cache.get(5, "periodic")
    assert first.shape == (32, 32) and cache.get(5, "periodic") is first and len(cache.copies) == 1
    # the same copy whichever order (or epoch, or resumed run) asks for it first
    other = NoisedCopies(tr, transform, None)
    other.get(2, "gaussian")
    assert np.array_equal(other.get(5, "periodic"), first)
    expected = add_training_noise(tr.images[5], "periodic", np.random.default_rng([3, 3, 5, 3]))
    assert np.array_equal(first, transform.fit(expected))
    assert not np.array_equal(cache.get(5, "gaussian"), first)


def test_noised_copies_pass_through_the_route_of_their_noise(synthetic_root, tmp_path):
    from inspection.denoise import MedianDenoiser, Router, build_denoisers
    from inspection.noise import add_training_noise
    from inspection.train import NoisedCopies
    from inspection.transforms import DefectTransform

    denoisers = {**build_denoisers(None), "autoencoder": MedianDenoiser()}
    router = Router(denoisers)
    tr = Trainer(tiny_train_config(synthetic_root, tmp_path, noise_aug=0.5))
    transform = DefectTransform(size=32)
    got = NoisedCopies(tr, transform, router).get(1, "salt_pepper")
    noisy = add_training_noise(tr.images[1], "salt_pepper", np.random.default_rng([0, 3, 1, 2]))
    assert np.array_equal(got, transform.fit(router.denoiser_for("salt_pepper")(noisy)))


def test_training_views_follow_the_routers_gate(synthetic_root, tiny_models, tmp_path):
    from inspection.denoise import Router, build_denoisers
    from inspection.models import load_checkpoint
    from inspection.noise import add_training_noise
    from inspection.train import noised_view

    denoisers = build_denoisers(load_checkpoint(tiny_models / "denoiser").model)
    tr = Trainer(tiny_train_config(synthetic_root, tmp_path, noise_aug=0.5))
    noisy = add_training_noise(tr.images[1], "gaussian", np.random.default_rng(4))
    for gate, expected in ((1000.0, noisy), (0.0, denoisers["autoencoder"](noisy))):
        view = noised_view(
            tr.images[1], "gaussian", Router(denoisers, min_denoise_sigma=gate), np.random.default_rng(4)
        )
        assert np.array_equal(view, expected)


@pytest.mark.parametrize("noise_cache", [True, False])
def test_defect_batches_with_and_without_the_noise_cache(noise_cache, synthetic_root, tmp_path):
    from inspection.train import defect_batches
    from inspection.transforms import DefectTransform

    tr = Trainer(tiny_train_config(synthetic_root, tmp_path, noise_aug=1.0, noise_cache=noise_cache))
    batch_fn = defect_batches(tr, DefectTransform(size=32), np.full(24, -1), None)
    idx = tr.train_idx[:8]
    x, y = batch_fn(idx, np.random.default_rng(0))
    x2, _ = batch_fn(idx, np.random.default_rng(0))
    assert x.shape == (8, 1, 32, 32) and torch.equal(x, x2)  # seeded: the same batch for the same generator
    assert np.array_equal(y[:, 0].numpy(), tr.labels[idx])


def test_noisy_crop_draws_pixelwise_noise_on_the_crop_and_periodic_on_the_photo():
    from inspection.train import noisy_crop

    photo = np.tile(np.linspace(20, 235, 80).astype(np.uint8), (60, 1))
    for kind in ("clean", "gaussian", "salt_pepper", "periodic", "camera"):
        noisy, clean, _ = noisy_crop(photo, kind, 24, np.random.default_rng(1))
        assert noisy.shape == clean.shape == (24, 24) and noisy.dtype == clean.dtype == np.uint8
        assert np.array_equal(noisy, clean) == (kind == "clean")
    a = noisy_crop(photo, "gaussian", 24, np.random.default_rng(7))
    b = noisy_crop(photo, "gaussian", 24, np.random.default_rng(7))
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def test_a_gaussian_gate_needs_a_defect_model_trained_through_a_denoiser():
    from inspection.configs import TrainConfig

    assert TrainConfig("defect", "d", denoiser="ae", min_denoise_sigma=25).resolved().min_denoise_sigma == 25
    for bad in (
        TrainConfig("defect", "d", min_denoise_sigma=25),
        TrainConfig("noise", "d", denoiser="ae", min_denoise_sigma=25),
        TrainConfig("defect", "d", denoiser="ae", min_denoise_sigma=-1),
    ):
        with pytest.raises(ValueError, match="min_denoise_sigma"):
            bad.resolved()
