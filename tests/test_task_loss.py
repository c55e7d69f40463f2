"""The denoiser trained against a frozen defect model's judgement (``--task-model``), and fine-tuned (``--init-from``)."""

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers.training import TINY_ARCH, tiny_train_config, write_photos

from inspection.configs import TrainConfig
from inspection.data import DatasetError, synth_casting, write_synthetic_dataset
from inspection.models import load_checkpoint
from inspection.task_loss import TaskLoss, fit_tensor
from inspection.train import TRAINERS
from inspection.transforms import DefectTransform


@pytest.mark.parametrize(
    ("shape", "resize"), [((64, 64), "pad"), ((48, 80), "pad"), ((80, 48), "crop"), ((48, 80), "stretch")]
)
def test_fit_tensor_matches_the_pipelines_preprocessing(shape, resize):
    casting = synth_casting(np.random.default_rng(0), max(shape), "crack")
    photo = np.ascontiguousarray(casting[: shape[0], : shape[1]])
    transform = DefectTransform(40, mean=0.4, std=0.2, resize=resize)
    expected = transform([photo])
    got = fit_tensor(transform, torch.from_numpy(photo).float().div(255)[None, None])
    assert got.shape == expected.shape == (1, 1, 40, 40)
    # the same pixels but for the pipeline's rounding to whole gray levels after resizing
    gray_levels = (got - expected).abs() * transform.std * 255
    assert float(gray_levels.max()) <= 0.51


@pytest.fixture(scope="module")
def square_parts(tmp_path_factory):
    """16 generated castings, 48 px, good and defective, and a tiny defect model trained on them."""
    root = tmp_path_factory.mktemp("task")
    data = root / "data"
    write_synthetic_dataset(data, n_train=16, n_test=0, size=48, seed=0)
    cfg = tiny_train_config(data, root / "m", epochs=1, batch_size=8)
    return data, TRAINERS["defect"](cfg).path, root


def test_task_loss_reads_the_defect_models_own_probability_and_gives_the_denoiser_a_gradient(square_parts):
    data, defect, _ = square_parts
    ck = load_checkpoint(defect)
    loss = TaskLoss(ck, pos_weight=1.0)
    photos = [
        cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in sorted(Path(data, "train").rglob("*.png"))[:6]
    ]
    x = torch.from_numpy(np.stack(photos)).float().div(255)[:, None].requires_grad_(True)
    # output 0, the temperature and the preprocessing are the defect model's: its calibrated probability
    tf = DefectTransform.from_meta(ck.meta)
    with torch.no_grad():
        expected = torch.sigmoid(ck.model(tf(photos))[:, 0] / loss.temperature)
    assert torch.allclose(torch.sigmoid(loss.logits(x)), expected, atol=1e-5)
    loss(x, torch.ones(6)).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0  # the denoiser gets a gradient
    assert all(not q.requires_grad for q in loss.model.parameters())  # the defect model stays frozen


def test_task_loss_with_class_weights_is_least_at_the_data_defect_share():
    """Weighted as the defect model was trained, the loss is least where P(defective) is the data's share of
    defective photos (a photo telling nothing), not pulled towards "defective" by the weight."""
    share = 0.05
    labels = torch.tensor([1.0] * 5 + [0.0] * 95)
    loss = TaskLoss.__new__(TaskLoss)
    loss.pos_weight = 95 / 5
    grid = torch.linspace(-8, 8, 1601)
    values = torch.stack([loss.loss_of_logits(torch.full((100,), float(z)), labels) for z in grid])
    best = float(torch.sigmoid(grid[values.argmin()]))
    assert best == pytest.approx(share, abs=0.005)


def test_denoiser_fine_tuned_against_a_defect_model_records_both(square_parts, tmp_path):
    data, defect, root = square_parts
    base = tiny_train_config(data, root / "m", task="denoiser", epochs=1, version="base")
    parent = TRAINERS["denoiser"](base).path
    cfg = replace(
        base, version="task", arch="", init_from=str(parent), task_model=str(defect), task_weight=0.5
    )
    meta = load_checkpoint(TRAINERS["denoiser"](cfg).path).meta
    assert meta["architecture"] == TINY_ARCH["denoiser"]
    assert meta["init_from"]["weights_sha256"] == load_checkpoint(parent).meta["weights_sha256"]
    assert meta["task_model"]["weights_sha256"] == load_checkpoint(defect).meta["weights_sha256"]
    metrics = meta["metrics"]
    assert 0 <= metrics["val_task_accuracy"] <= 1 and metrics["val_task_loss"] > 0
    assert np.isfinite(metrics["val_objective"]) and np.isfinite(metrics["val_psnr"])
    # With learning rate 0 the fine-tuned denoiser's weights are its parent's.
    still = load_checkpoint(TRAINERS["denoiser"](replace(cfg, version="lr0", lr=0.0)).path)
    same = load_checkpoint(parent).model.state_dict()
    assert all(torch.equal(v, same[k]) for k, v in still.model.state_dict().items())


def test_task_model_needs_photos_of_one_square_size(square_parts, tmp_path):
    _, defect, _ = square_parts
    mixed = write_photos(tmp_path / "mixed", {"ok": None, "def_front": "crack"}, n=4)
    cfg = tiny_train_config(mixed, tmp_path / "m", task="denoiser", task_model=str(defect), task_weight=1.0)
    with pytest.raises(DatasetError, match="must all be one size"):
        TRAINERS["denoiser"](cfg)


def test_task_options_are_refused_unless_complete_and_for_the_denoiser(square_parts):
    _, defect, _ = square_parts
    for bad, match in (
        (TrainConfig("denoiser", "d", task_model=str(defect)), "give both"),
        (TrainConfig("denoiser", "d", task_weight=1.0), "give both"),
        (
            TrainConfig("defect", "d", task_model=str(defect), task_weight=1.0),
            "a defect model to train a denoiser",
        ),
        (TrainConfig("defect", "d", task_weight=1.0), "loss weight of the denoiser"),
        (TrainConfig("noise", "d", init_from=str(defect)), "fine-tuning is for"),
    ):
        with pytest.raises(ValueError, match=match):
            bad.resolved()


def test_denoiser_init_from_refuses_another_architecture_or_task_and_a_task_model_that_is_no_defect_model(
    square_parts, tmp_path
):
    data, defect, root = square_parts
    parent = TRAINERS["denoiser"](tiny_train_config(data, root / "m", task="denoiser", epochs=1, version="p"))
    cfg = tiny_train_config(data, tmp_path, task="denoiser", init_from=str(parent.path), arch="unet_ae_fast")
    with pytest.raises(ValueError, match="differs from the --init-from model"):
        TRAINERS["denoiser"](cfg)
    with pytest.raises(ValueError, match="--init-from .* not a denoiser"):
        TRAINERS["denoiser"](replace(cfg, arch="", init_from=str(defect)))
    wrong = replace(cfg, arch="", task_model=str(parent.path), task_weight=1.0)
    with pytest.raises(ValueError, match="--task-model .* not a defect model"):
        TRAINERS["denoiser"](wrong)


def test_the_seed_sets_a_new_denoisers_first_weights(square_parts, tmp_path):
    data, _, _ = square_parts
    weights = []
    for seed in (0, 0, 1):
        cfg = tiny_train_config(
            data, tmp_path / f"s{seed}{len(weights)}", task="denoiser", epochs=1, lr=0.0, seed=seed
        )
        weights.append(load_checkpoint(TRAINERS["denoiser"](cfg).path).meta["weights_sha256"])
    assert weights[0] == weights[1] != weights[2]


def test_task_loss_trains_beside_the_defect_weighted_loss(square_parts, tmp_path):
    """The mask and the label planes of the target at once (``--defect-weight`` with ``--task-model``)."""
    _, defect, _ = square_parts
    data = tmp_path / "masked"
    write_synthetic_dataset(data, n_train=16, n_test=0, size=48, seed=1, masks=True)
    cfg = tiny_train_config(
        data,
        tmp_path / "m",
        task="denoiser",
        epochs=1,
        defect_weight=9.0,
        task_model=str(defect),
        task_weight=0.5,
    )
    meta = load_checkpoint(TRAINERS["denoiser"](cfg).path).meta
    assert meta["train_config"]["defect_weight"] == 9.0 and meta["task_model"]["version"] == "v1"
    assert 0 <= meta["metrics"]["val_task_accuracy"] <= 1
