import json

import numpy as np
import pytest

from inspection.models import load_checkpoint
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
