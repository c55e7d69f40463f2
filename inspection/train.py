"""Training loops for the three models: seeded, validated, checkpoint-on-best, with a time or epoch budget.

Data is any folder in the ``train|test/<class>/`` layout (or a labels CSV), of photos of any size; only
``train`` is read, and a seeded validation split is carved out of it for every choice (epoch, temperature,
threshold). Noise is synthesised on the fly from the clean photos at their full resolution.

The defect model (:func:`train_defect`):

- **Input.** :class:`~inspection.transforms.DefectTransform` (pad, crop or stretch to the square input), with
  mean and std measured on the training photos; stored in ``meta["preprocessing"]``.
- **Outputs.** Output 0 is the defect logit; with kinds, outputs 1..K are the kind logits (``meta["kinds"]``).
  Kinds are learned when the training data names at least two (``inspection.data``), when the parent model of
  ``init_from`` has kinds, or with ``kinds_only``.
- **Loss.** Binary cross-entropy on output 0, plus cross-entropy on the kind logits for defective photos with a
  kind.
- **Class imbalance.** The defect term is weighted by ``pos_weight = n_ok / n_defective`` of the training split,
  and the kind term by inverse kind frequency, so the rare class pulls as hard as the common one
  (``meta["class_balance"]``). Weighting shifts the learned logit by ``log(pos_weight)``; trained from scratch,
  that shift is taken back out of output 0's bias after training (``bias_correction``), so P(defective) again
  reflects the data's defect rate before it is calibrated.
- **Validation views.** With ``noise_aug``, each validation photo is also seen once under each routed noise type,
  denoised by its route (:func:`validation_views`), so every choice below is made on photos as the pipeline
  shows them to the model.
- **Calibration.** A temperature T > 0 is fitted on the validation logits (least NLL against Platt's smoothed
  targets); P(defective) = ``sigmoid(logit0 / T)`` (``meta["calibration"]``).
- **Threshold.** On the calibrated validation probabilities, the threshold with the least expected cost per part
  ``miss_cost * p_def * miss_rate + false_reject_cost * (1 - p_def) * false_reject_rate``, where ``p_def`` is
  ``defect_rate`` or, when 0, the validation photos' defect share (then costs 1 and 1 minimise the error rate;
  ``defect_rate=0.5`` with costs 1 and 1 maximises balanced accuracy). The best epoch is the one with the
  highest ``val_score``: 1 - cost / (cost of the best constant answer), averaged with the kinds' balanced
  accuracy when there are kinds.
- **Kinds only.** Training data with no good part cannot teach P(defective). With ``kinds_only`` (and only
  then) the model is a kind classifier: output 0 is not trained but set to a constant (P(defective) = 1), the
  threshold is 0, so every part is judged defective and given a kind; ``meta["kinds_only"]`` is true. Replaying
  a dataset with good parts (``replay``) makes it a full defect model again. Data with no good part and no
  ``kinds_only`` is refused: a model fitted to it would call every part defective.
- **Fine-tuning** (``init_from``): starts from a defect checkpoint's weights, architecture and preprocessing;
  its kinds keep their order and outputs, new kinds are appended (the output layer grows, old rows kept).
  ``replay`` datasets' train splits join training and, stratified, validation, so the threshold and the best
  epoch reflect the old kinds too. ``meta["parent"]`` and ``meta["replay"]`` record where it came from. The
  parent's output 0 already has its pos_weight shift taken out, so it is not corrected again: the shift
  ``log(pos_weight)`` is added to output 0 inside the loss only (``logit_adjustment``), and the weights keep
  learning the unshifted logit. With learning rate 0 the model's outputs are the parent's.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit, softmax
from torch import nn

from inspection import NOISE_TYPES
from inspection.camera import camera_jitter
from inspection.configs import TASK_DEFAULT_SIZE, TrainConfig
from inspection.data import MASKS_DIR, NO_KIND_NAMES, DatasetError, mask_path
from inspection.denoise import AutoencoderDenoiser, Router, build_denoisers
from inspection.metrics import (
    balanced_accuracy,
    binary_nll,
    binary_scores,
    cost_threshold,
    expected_calibration_error,
    expected_cost,
    fit_temperature,
    fit_temperature_multiclass,
    top_label_ece,
)
from inspection.models import create_model, load_checkpoint
from inspection.models.checkpoint import Checkpoint, CheckpointError
from inspection.models.zoo import defect_head, load_grown
from inspection.noise import CAMERA, TRAINING_NOISES, add_noise, add_training_noise, camera_noise, routed_as
from inspection.spectrum import noise_features
from inspection.task_loss import TaskLoss
from inspection.trainer import Trainer, TrainResult, augment
from inspection.transforms import RESIZE_MODES, DefectTransform, pixel_statistics

log = logging.getLogger(__name__)


def noise_class_draw(
    clean: np.ndarray, kind: str, noise_types: Sequence[str], rng: np.random.Generator
) -> np.ndarray:
    """A photo of noise class ``kind``; with ``camera`` in ``noise_types``, half the ``gaussian`` class is camera
    noise (shot and read noise, possibly correlated and JPEG), which the pipeline routes as ``gaussian``."""
    if kind == routed_as(CAMERA) and CAMERA in noise_types and rng.random() < 0.5:
        return camera_noise(clean, rng)
    return add_noise(clean, kind, rng=rng)


def train_noise(cfg: TrainConfig) -> TrainResult:
    """Train the noise-type classifier on (spectrum, residual) features of freshly noised photos."""
    t0 = time.monotonic()
    tr = Trainer(cfg)
    c = tr.cfg
    channels = 1 if c.arch == "freq_vgg16" else c.feature_channels
    model = create_model(c.arch, in_chans=channels)

    def features(idx: np.ndarray, rng: np.random.Generator, kinds: np.ndarray) -> torch.Tensor:
        def one(i: int, k: int) -> np.ndarray:
            clean = (
                camera_jitter(augment(tr.images[i], rng), rng, c.camera_aug)
                if c.camera_aug
                else augment(tr.images[i], rng)
            )
            return noise_features(
                noise_class_draw(clean, NOISE_TYPES[k], c.noise_types, rng), c.input_size, channels
            )

        return torch.from_numpy(np.stack([one(i, k) for i, k in zip(idx, kinds, strict=True)]))

    def batch_fn(idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        kinds = rng.integers(len(NOISE_TYPES), size=len(idx))
        return features(idx, rng, kinds), torch.from_numpy(kinds)

    # A fixed validation set: every validation photo under every noise type.
    vrng = np.random.default_rng(c.seed + 1)
    v_idx = np.repeat(tr.val_idx, len(NOISE_TYPES))
    v_kinds = np.tile(np.arange(len(NOISE_TYPES)), len(tr.val_idx))
    vx = features(v_idx, vrng, v_kinds)

    def validate(model: nn.Module) -> dict[str, float]:
        pred = _logits(model, vx).argmax(1)
        out = {"val_accuracy": float((pred == v_kinds).mean())}
        for k, name in enumerate(NOISE_TYPES):
            out[f"val_recall_{name}"] = float((pred[v_kinds == k] == k).mean())
        return out

    model, metrics, epoch = tr.fit(model, batch_fn, F.cross_entropy, validate, "val_accuracy")
    path = tr.save(
        model,
        {**metrics, "best_epoch": epoch},
        model_kwargs={"in_chans": channels},
        input_size=c.input_size,
        class_names=list(NOISE_TYPES),
        extra={"calibration": calibrate_noise(_logits(model, vx), v_kinds)},
    )
    return TrainResult(path, metrics, time.monotonic() - t0)


PIXELWISE_NOISES = ("clean", "gaussian", "salt_pepper")
"""Noises drawn for each pixel alone: on a crop they are what they are on the whole photo, cropped."""


def noisy_crop(
    photo: np.ndarray, kind: str, side: int, rng: np.random.Generator, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A random ``side`` x ``side`` crop of ``photo`` (rotated or flipped) under noise ``kind``, its clean crop, and
    the same crop of ``mask`` (None without one).

    Pixelwise noise is drawn on the crop alone (5 to 10 times fewer draws on 300 px photos); the others (periodic
    noise in cycles per photo, camera noise's blur and JPEG blocks) on the whole photo, then cropped. A mask takes
    the photo's rotation, flip and window, and draws no random number, so the crop and noise are the same with it.
    """
    both = augment(photo if mask is None else np.dstack([photo, mask.astype(photo.dtype)]), rng)
    clean = np.ascontiguousarray(both[..., 0]) if mask is not None else both
    h, w = clean.shape
    top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
    window = (slice(top, top + side), slice(left, left + side))
    mask_crop = np.ascontiguousarray(both[..., 1][window]) if mask is not None else None
    if kind in PIXELWISE_NOISES:
        target = np.ascontiguousarray(clean[window])
        return add_training_noise(target, kind, rng), target, mask_crop
    return add_training_noise(clean, kind, rng)[window], clean[window], mask_crop


def defect_masks(tr: Trainer, dilate: int = 2) -> list[np.ndarray]:
    """Each training photo's drawn-defect mask (uint8 0/1, dilated by ``dilate`` px), from its root's ``masks/``.

    A photo without a mask file is defect-free (zeros). Raises DatasetError when no photo has one: the loss would
    be plain L1, and the data was not generated with ``inspection synth --masks``.
    """
    roots = [tr.cfg.data, *tr.cfg.replay]
    kernel = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
    masks, found = [], 0
    for sample, source, image in zip(tr.samples, tr.source, tr.images, strict=True):
        try:
            path = mask_path(roots[source], sample.path)
        except ValueError:  # a photo outside its root (a labels CSV's): no mask of the generator's
            path = None
        drawn = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path is not None and path.is_file() else None
        if drawn is None:
            masks.append(np.zeros(image.shape, np.uint8))
            continue
        if drawn.shape != image.shape:  # the photo was scaled on loading (--load-size): scale its mask alike
            drawn = cv2.resize(drawn, image.shape[::-1], interpolation=cv2.INTER_NEAREST)
        found += 1
        masks.append(cv2.dilate((drawn > 0).astype(np.uint8), kernel))
    if not found:
        raise DatasetError(
            f"--defect-weight needs defect masks beside the photos ({MASKS_DIR}/ in {', '.join(map(str, roots))});"
            " generate the data with `inspection synth --masks`"
        )
    log.info("defect masks for %d of %d training photos", found, len(masks))
    return masks


def denoiser_parent(cfg: TrainConfig) -> tuple[TrainConfig, Checkpoint | None]:
    """The ``init_from`` denoiser checkpoint, and the config with its architecture (None, ``cfg``: none given)."""
    if not cfg.init_from:
        return cfg, None
    parent = load_checkpoint(denoiser_dir(cfg.init_from, flag="--init-from"))
    if parent.meta["task"] != "denoiser":
        raise CheckpointError(
            f"--init-from {cfg.init_from}: {parent.path} holds a {parent.meta['task']} model, not a denoiser"
        )
    arch = str(parent.meta["architecture"])
    if cfg.arch and cfg.arch != arch:
        raise ValueError(f"--arch {cfg.arch} differs from the --init-from model's {arch}; leave --arch out")
    return replace(cfg, arch=arch), parent


def task_loss_for(tr: Trainer) -> tuple[TaskLoss, int]:
    """The ``task_model``'s loss, and the side of the whole photos the denoiser then trains on.

    The defect model judges whole photos, so crops will not do: every training photo must be one square size.
    """
    c = tr.cfg
    sizes = sorted({im.shape for im in tr.images})
    if len(sizes) != 1:
        raise DatasetError(
            f"--task-model trains the denoiser on whole photos, which must all be one size; found {sizes[:3]} "
            "and more: bring them to one square size first, or leave --task-model out"
        )
    if sizes[0][0] != sizes[0][1]:
        raise DatasetError(
            f"--task-model trains the denoiser on whole photos, which must be square (rotated by 90 degrees as "
            f"they are augmented); they are {sizes[0][1]}x{sizes[0][0]}: crop or pad them to squares first"
        )
    if c.input_size != TASK_DEFAULT_SIZE["denoiser"]:
        log.warning(
            "--input-size %d is not used: with --task-model the crop is the whole photo", c.input_size
        )
    labels = tr.labels[tr.train_idx]
    n_def, n_ok = int(labels.sum()), int((labels == 0).sum())
    if not n_def or not n_ok:
        raise DatasetError(
            "--task-model needs good and defective training photos to judge the denoised ones by"
        )
    judge = load_parent(c.task_model, flag="--task-model")
    if judge.meta.get("kinds_only"):
        raise ValueError(
            f"--task-model {c.task_model}: a kinds-only defect model judges every part defective, so it cannot "
            "tell the denoiser what a defect looks like; name a model trained on good and defective parts"
        )
    task = TaskLoss(judge, n_ok / n_def, tr.device)
    return task, int(sizes[0][0])


def train_denoiser(cfg: TrainConfig) -> TrainResult:
    """Train a denoising autoencoder on random crops of photos noised at full resolution.

    With ``init_from`` it starts from that denoiser's weights; with ``task_model`` it trains on whole photos and
    its loss adds that defect model's judgement of them (``inspection.task_loss``).
    """
    t0 = time.monotonic()
    cfg, parent = denoiser_parent(cfg)
    tr = Trainer(cfg)  # seeds torch: a model built after it starts from the seed's weights
    c = tr.cfg
    model = parent.model.train() if parent is not None else create_model(c.arch)
    for kind in c.noise_types:
        if kind not in TRAINING_NOISES:
            raise ValueError(f"unknown noise type {kind!r}; expected some of {TRAINING_NOISES}")
    task, side = task_loss_for(tr) if c.task_model else (None, 0)
    # One crop side for every photo, so a batch of photos of different sizes stacks.
    crop = side or min(c.input_size, *(min(im.shape) for im in tr.images))
    if crop < c.input_size and not side:
        log.warning("training crops are %d px: the smallest photo is smaller than --input-size", crop)
    pairs = denoiser_pairs(tr, crop, defect_masks(tr) if c.defect_weight else None, task is not None)
    vx, vy = pairs(tr.val_idx, np.random.default_rng(c.seed + 1))

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        clean = target[:, :1]
        weight = 1.0 + c.defect_weight * target[:, 1:2] if c.defect_weight else None
        pixels = edge_weighted_l1(out, clean, c.edge_weight, weight)
        return pixels if task is None else pixels + c.task_weight * task(out.clamp(0, 1), target[:, -1, 0, 0])

    validate = denoiser_validation(vx, vy, task, c.task_weight)
    score = "val_objective" if task is not None else "val_psnr"
    model, metrics, epoch = tr.fit(model, pairs, loss, validate, score)
    extra = {
        "init_from": None
        if parent is None
        else {
            "version": parent.version,
            "weights_sha256": parent.meta["weights_sha256"],
            "path": str(parent.path.resolve()),
        },
        "task_model": None if task is None else task.provenance(),
    }
    path = tr.save(
        model,
        {**metrics, "best_epoch": epoch, "noise_types": list(c.noise_types)},
        input_size=None,
        class_names=[],
        model_kwargs=parent.meta.get("model_kwargs", {}) if parent is not None else {},
        extra={k: v for k, v in extra.items() if v is not None},
    )
    return TrainResult(path, metrics, time.monotonic() - t0)


def denoiser_pairs(tr: Trainer, crop: int, masks: list[np.ndarray] | None, with_labels: bool) -> Batches:
    """``pairs(idx, rng)``: noisy crops, and their targets: the clean crop, then its mask (with ``masks``), then
    a plane holding the photo's label (``with_labels``, for the task loss)."""
    c = tr.cfg

    def pairs(idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for i in idx:
            kind = c.noise_types[int(rng.integers(len(c.noise_types)))]
            x, y, m = noisy_crop(tr.images[i], kind, crop, rng, None if masks is None else masks[i])
            planes = (
                [y]
                + ([m * 255] if m is not None else [])
                + ([np.full_like(y, tr.labels[i] * 255)] if with_labels else [])
            )
            xs.append(x)
            ys.append(np.stack(planes))
        x_t = torch.from_numpy(np.stack(xs)).float().div_(255.0)[:, None]
        return x_t, torch.from_numpy(np.stack(ys)).float().div_(255.0)

    return pairs


def denoiser_validation(
    vx: torch.Tensor, vy: torch.Tensor, task: TaskLoss | None, task_weight: float
) -> Callable[[nn.Module], dict[str, float]]:
    """``validate(model)``: PSNR against the clean targets; with ``task``, also the task loss, the defect model's
    accuracy at its threshold, and ``val_objective``: minus (plain L1 + ``task_weight`` x task loss), the training
    loss less any edge or defect weighting of the L1."""

    @torch.inference_mode()
    def validate(model: nn.Module) -> dict[str, float]:
        outs = torch.cat([model(vx[i : i + 64]).clamp(0, 1) for i in range(0, len(vx), 64)])
        mse = ((outs - vy[:, :1]) ** 2).mean((1, 2, 3))
        metrics = {"val_psnr": float((10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean())}
        if task is None:
            return metrics
        labels = vy[:, -1, 0, 0]
        logits = torch.cat(
            [task.logits(outs[i : i + 64].to(task.device)).float().cpu() for i in range(0, len(outs), 64)]
        )
        bce = float(task.loss_of_logits(logits, labels))
        l1 = float((outs - vy[:, :1]).abs().mean())
        threshold = float(task.meta.get("threshold", 0.5))
        right = ((torch.sigmoid(logits) >= threshold).float() == labels).float().mean()
        return {
            **metrics,
            "val_task_loss": bce,
            "val_task_accuracy": float(right),
            "val_objective": -(l1 + task_weight * bce),
        }

    return validate


def edge_weighted_l1(
    out: torch.Tensor, clean: torch.Tensor, edge_weight: float, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """L1 between ``out`` and ``clean`` (``(n, 1, h, w)``), each pixel weighted by ``1 + edge_weight * e``.

    ``e`` is the clean image's Sobel gradient magnitude, taken as the largest in each pixel's 3x3 neighbourhood
    (the gradient vanishes on the centre line of a one-pixel crack, not beside it), over its mean in each image,
    so a crack or an edge weighs many times a flat pixel whatever the photo's contrast. ``weight`` (same shape,
    say ``1 + w`` on a defect's mask) multiplies that. Normalised by the weights' sum: with ``edge_weight`` 0 and
    no ``weight`` it is the plain mean absolute error.
    """
    if not edge_weight:
        return (
            F.l1_loss(out, clean) if weight is None else ((out - clean).abs() * weight).sum() / weight.sum()
        )
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=clean.dtype)
    kernels = torch.stack([sobel, sobel.T])[:, None].to(clean.device)
    grad = F.conv2d(F.pad(clean, (1, 1, 1, 1), mode="replicate"), kernels)
    edge = F.max_pool2d(grad.pow(2).sum(1, keepdim=True).sqrt(), 3, stride=1, padding=1)
    edges = 1.0 + edge_weight * edge / (edge.mean(dim=(1, 2, 3), keepdim=True) + 1e-6)
    weight = edges if weight is None else edges * weight
    return ((out - clean).abs() * weight).sum() / weight.sum()


KINDS_ONLY_LOGIT = 20.0  # output 0 of a kinds-only model: sigmoid(20) = 1 - 2e-9, every part defective


def best_threshold(prob: np.ndarray, labels: np.ndarray) -> float:
    """The threshold maximising balanced accuracy on validation data (costs 1 and 1, defect rate 0.5)."""
    return cost_threshold(prob, labels, defect_rate=0.5)


def training_kinds(sample_kinds: Sequence[str], parent_kinds: Sequence[str], kinds_only: bool) -> list[str]:
    """The kinds a defect model learns: the parent's, in their order, then the data's new ones, sorted.

    None when the data names fewer than two kinds and the parent has none (a single ``def_*`` folder is just
    "defective"), unless ``kinds_only``.
    """
    found = sorted({k for k in sample_kinds if k})
    if not kinds_only:
        found = [k for k in found if k.lower() not in NO_KIND_NAMES]
    if not parent_kinds and not kinds_only and len(found) < 2:
        return []
    return [*parent_kinds, *(k for k in found if k not in parent_kinds)]


def defect_metrics(
    logits: np.ndarray,
    labels: np.ndarray,
    kinds: np.ndarray,
    cfg: TrainConfig,
    *,
    temperature: float = 1.0,
    threshold: float | None = None,
    kinds_only: bool = False,
    kind_names: Sequence[str] = (),
) -> dict[str, float]:
    """Validation metrics of defect logits ``(n, 1 + K)`` at ``threshold`` (default: the least-cost one).

    ``kinds`` holds each photo's kind index, -1 for none. ``val_score`` is what picks the best epoch. With
    ``kind_names``, ``val_recall_<kind>`` is the share of each kind's defective photos judged defective, and
    ``val_worst_kind_recall`` the least of them: what shows a fine-tune forgetting an old kind.
    """
    out: dict[str, float] = {}
    score_parts = []
    if not kinds_only:
        prob = expit(logits[:, 0] / temperature)
        rate = cfg.defect_rate or float(labels.mean())
        costs = {"miss_cost": cfg.miss_cost, "false_reject_cost": cfg.false_reject_cost, "defect_rate": rate}
        if threshold is None:
            threshold = cost_threshold(prob, labels, **costs)
        scores = binary_scores(prob >= threshold, labels)
        cost = expected_cost(prob >= threshold, labels, **costs)
        trivial = min(cfg.miss_cost * rate, cfg.false_reject_cost * (1 - rate))
        out.update(
            val_accuracy=scores["accuracy"],
            val_balanced_accuracy=scores["balanced_accuracy"],
            val_recall=scores["sensitivity"],
            val_specificity=scores["specificity"],
            val_threshold=float(threshold),
            val_expected_cost=cost,
            **{"val_accuracy_at_0.5": float(((prob >= 0.5) == labels).mean())},
        )
        score_parts.append(1.0 - cost / trivial if trivial > 0 else float(cost == 0))
        out.update(kind_recalls(prob >= threshold, labels, kinds, kind_names))
    has_kind = kinds >= 0
    if logits.shape[1] > 1 and has_kind.any():
        pred = logits[has_kind, 1:].argmax(1)
        out["val_kind_accuracy"] = float((pred == kinds[has_kind]).mean())
        out["val_kind_balanced_accuracy"] = balanced_accuracy(kinds[has_kind], pred)
        score_parts.append(out["val_kind_balanced_accuracy"])
    out["val_score"] = float(np.mean(score_parts)) if score_parts else 0.0
    return out


def load_parent(path: str | Path, flag: str = "--init-from") -> Checkpoint:
    """The defect checkpoint ``flag`` names: a checkpoint folder, a bundle, or a models root (its live bundle)."""
    folder = Path(path)
    if not (folder / "meta.json").is_file():
        from inspection.bundle import load_bundle

        found = load_bundle(folder).checkpoint_dir("defect")
        assert found is not None  # a bundle always has a defect model
        folder = found
    ck = load_checkpoint(folder)
    if ck.meta["task"] != "defect":
        raise CheckpointError(f"{flag} {path}: {folder} holds a {ck.meta['task']} model, not a defect model")
    return ck


def check_defect_options(cfg: TrainConfig) -> None:
    """Refuse an unknown resize mode, a cost that is not positive, or a defect rate outside [0, 1)."""
    if cfg.resize not in RESIZE_MODES:
        raise ValueError(f"--resize {cfg.resize!r} is not one of {RESIZE_MODES}")
    if cfg.miss_cost <= 0 or cfg.false_reject_cost <= 0 or not 0 <= cfg.defect_rate < 1:
        raise ValueError(
            f"costs must be above 0 and the defect rate in [0, 1): got --miss-cost {cfg.miss_cost}, "
            f"--false-reject-cost {cfg.false_reject_cost}, --defect-rate {cfg.defect_rate}"
        )


def inherit_from_parent(cfg: TrainConfig, parent: Checkpoint) -> TrainConfig:
    """``cfg`` with the parent's architecture, input size and resize mode, which come with its weights."""
    arch = str(parent.meta["architecture"])
    if cfg.arch and cfg.arch != arch:
        raise ValueError(f"--arch {cfg.arch} differs from the --init-from model's {arch}; leave --arch out")
    inherited = DefectTransform.from_meta(parent.meta)
    return replace(cfg, arch=arch, input_size=inherited.size, resize=inherited.resize)


def kind_targets(sample_kinds: Sequence[str], labels: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
    """Each photo's index in ``kinds``; -1 for a good part or a defect of no learned kind."""
    index = {k: i for i, k in enumerate(kinds)}
    return np.array([index.get(k, -1) if lab else -1 for k, lab in zip(sample_kinds, labels, strict=True)])


def is_kinds_only(labels: np.ndarray, kinds: Sequence[str], cfg: TrainConfig) -> bool:
    """Whether the model is a kind classifier that judges every part defective (module docstring).

    Only ``cfg.kinds_only`` makes one, and only when no training photo is of a good part: ok photos from
    ``replay`` make it a full defect model.

    Raises:
        DatasetError: no ok photo without ``--kinds-only`` (the model would call every part defective), or
            kinds only with no kind to learn.
    """
    if (labels == 0).any():
        return False
    if not cfg.kinds_only:
        roots = ", ".join([cfg.labels or cfg.data, *cfg.replay])
        raise DatasetError(
            f"no ok photos in the training data ({roots}): add --replay with ok photos, or pass --kinds-only "
            "to train a kind classifier that judges every part defective"
        )
    if not kinds:
        raise DatasetError("every training photo is defective and none has a kind: there is nothing to learn")
    return True


@dataclass(frozen=True)
class ClassWeights:
    """Loss weights from the training split's counts (module docstring, "Class imbalance").

    Attributes:
        pos_weight: ``n_ok / n_defective`` (1 when either is 0), the weight of the defect term's defective photos.
        kind_weights: per kind, ``n_with_a_kind / (n_kinds_present * n_of_that_kind)``; 1 for an absent kind.
        n_ok, n_defective: photos of good and defective parts.
        kind_counts: photos per kind.
    """

    pos_weight: float
    kind_weights: np.ndarray
    n_ok: int
    n_defective: int
    kind_counts: np.ndarray


def class_weights(labels: np.ndarray, kinds: np.ndarray, n_kinds: int) -> ClassWeights:
    """The loss weights of training photos with ``labels`` (1 = defective) and kind indices ``kinds`` (-1: none)."""
    n_def, n_ok = int(labels.sum()), int((labels == 0).sum())
    pos_weight = n_ok / n_def if n_def and n_ok else 1.0
    kind_counts = np.bincount(kinds[kinds >= 0], minlength=n_kinds)
    present = kind_counts > 0
    kind_weights = np.ones(n_kinds)
    if present.any():
        kind_weights[present] = kind_counts[present].sum() / (present.sum() * kind_counts[present])
    return ClassWeights(pos_weight, kind_weights, n_ok, n_def, kind_counts)


def defect_transform(tr: Trainer, parent: Checkpoint | None) -> DefectTransform:
    """The parent's preprocessing, or one with mean and std measured on the training split's photos."""
    if parent is not None:
        return DefectTransform.from_meta(parent.meta)
    c = tr.cfg
    fit_only = DefectTransform(c.input_size, resize=c.resize)
    mean, std = pixel_statistics([fit_only.fit(tr.images[i]) for i in tr.train_idx])
    return DefectTransform(c.input_size, mean, std, c.resize)


def create_defect_model(
    arch: str, kinds: Sequence[str], parent: Checkpoint | None
) -> tuple[nn.Module, dict[str, Any], list[str]]:
    """The model to train, its kwargs, and the tensors grown from the parent's (output layer rows for new kinds).

    A fine-tune starts from the parent's weights; its kinds keep their outputs and new kinds get new rows.
    """
    model_kwargs = {
        k: v for k, v in (parent.meta["model_kwargs"] if parent else {}).items() if k != "num_kinds"
    }
    if kinds:
        model_kwargs["num_kinds"] = len(kinds)
    model = create_model(arch, **model_kwargs)
    grown: list[str] = []
    if parent is not None:
        grown = load_grown(model, parent.model.state_dict())
        if grown:
            n_parent = len(parent.meta.get("kinds", []))
            log.info("output layer grown from %d to %d kinds: %s", n_parent, len(kinds), list(kinds))
    return model, model_kwargs, grown


def augmentation_noises(noise_types: Sequence[str]) -> tuple[str, ...]:
    """The noises a defect model's augmentation draws: the routed noise types, plus ``camera`` when asked for."""
    return ("gaussian", "salt_pepper", "periodic", *(k for k in noise_types if k == CAMERA))


Batches = Callable[[np.ndarray, np.random.Generator], tuple[torch.Tensor, torch.Tensor]]


def noised_view(photo: np.ndarray, kind: str, router: Router | None, rng: np.random.Generator) -> np.ndarray:
    """``photo`` under training noise ``kind``, denoised by its route when there is a router."""
    noisy = add_training_noise(photo, kind, rng)
    return router.denoiser_for_photo(routed_as(kind), noisy)(noisy) if router is not None else noisy


class NoisedCopies:
    """Each training photo's noised (and routed) copy per noise type, at the model input size, made on first use.

    A copy is drawn from a generator seeded by (seed, photo, noise type) alone, so it is the same whichever epoch
    first asks for it, in a resumed run too. Rotations and flips commute with fitting a photo to the input size,
    so the batch rotates the stored copy (``TrainConfig.noise_cache``).
    """

    def __init__(self, tr: Trainer, transform: DefectTransform, router: Router | None) -> None:
        self.tr, self.transform, self.router = tr, transform, router
        self.copies: dict[tuple[int, str], np.ndarray] = {}

    def get(self, i: int, kind: str) -> np.ndarray:
        key = (int(i), kind)
        if key not in self.copies:
            k = TRAINING_NOISES.index(kind)
            rng = np.random.default_rng([self.tr.cfg.seed, 3, int(i), k])
            self.copies[key] = self.transform.fit(noised_view(self.tr.images[i], kind, self.router, rng))
        return self.copies[key]


def defect_batches(
    tr: Trainer, transform: DefectTransform, kinds: np.ndarray, router: Router | None
) -> Batches:
    """``batch_fn(idx, rng)``: augmented (and, with ``noise_aug``, noised and routed) inputs, and ``(label, kind)``.

    Every photo is brought to the input size once (rotations and flips commute with that); with ``noise_cache``
    its noised copies are too (:class:`NoisedCopies`), else they are drawn afresh from the full-size photo.
    """
    c = tr.cfg
    kinds_drawn = augmentation_noises(c.noise_types)
    fitted = [transform.fit(im) for im in tr.images]
    cache = NoisedCopies(tr, transform, router) if c.noise_cache else None

    def one(i: int, rng: np.random.Generator) -> np.ndarray:
        if not c.noise_aug or rng.random() >= c.noise_aug:
            return augment(fitted[i], rng)
        kind = kinds_drawn[int(rng.integers(len(kinds_drawn)))]
        if cache is not None:
            return augment(cache.get(i, kind), rng)
        return noised_view(augment(tr.images[i], rng), kind, router, rng)

    def batch_fn(idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        y = np.stack([tr.labels[idx], kinds[idx]], axis=1)
        return transform([one(i, rng) for i in idx]), torch.from_numpy(y).float()

    return batch_fn


def defect_loss(
    weights: ClassWeights, *, kinds_only: bool, n_kinds: int, logit_adjustment: float = 0.0
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Weighted BCE on output 0 (not for kinds only) plus weighted cross-entropy on the kinds of defects with one.

    ``logit_adjustment`` is added to output 0 inside the loss only (module docstring, "Fine-tuning").
    """
    pw_t = torch.tensor(weights.pos_weight, dtype=torch.float32)
    kw_t = torch.tensor(weights.kind_weights, dtype=torch.float32)

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = out.sum() * 0.0
        if not kinds_only:
            logit = out[:, 0] + logit_adjustment if logit_adjustment else out[:, 0]
            loss = loss + F.binary_cross_entropy_with_logits(logit, y[:, 0], pos_weight=pw_t.to(out.device))
        has_kind = y[:, 1] >= 0
        if n_kinds and bool(has_kind.any()):
            loss = loss + F.cross_entropy(
                out[has_kind, 1:], y[has_kind, 1].long(), weight=kw_t.to(out.device)
            )
        return loss

    return loss_fn


def kind_recalls(
    flagged: np.ndarray, labels: np.ndarray, kinds: np.ndarray, kind_names: Sequence[str]
) -> dict[str, float]:
    """``val_recall_<kind>`` for every kind with a defective validation photo, and ``val_worst_kind_recall``."""
    recalls = {
        f"val_recall_{name}": float(flagged[(labels == 1) & (kinds == k)].mean())
        for k, name in enumerate(kind_names)
        if ((labels == 1) & (kinds == k)).any()
    }
    return {**recalls, "val_worst_kind_recall": min(recalls.values())} if recalls else {}


@torch.inference_mode()
def _logits(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    device = next(model.parameters()).device
    return torch.cat([model(x[i : i + 128].to(device)).float().cpu() for i in range(0, len(x), 128)]).numpy()


def finish_output0(model: nn.Module, *, kinds_only: bool, shift: float) -> None:
    """Set output 0 after training: constant ``KINDS_ONLY_LOGIT`` for kinds only, else its bias less ``shift``."""
    _, head = defect_head(model)
    with torch.no_grad():
        if kinds_only:
            head.weight[0].zero_()
            head.bias[0] = KINDS_ONLY_LOGIT
        elif shift:
            head.bias[0] -= shift


def calibrate_noise(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The noise model's ``meta["calibration"]``: a temperature fitted on validation logits, with top-label ECE.

    The pipeline's noise probabilities are ``softmax(logits / T)``, so the safe path's ``min_confidence`` reads
    as a probability that means what it says.
    """
    temperature = fit_temperature_multiclass(logits, labels)
    return {
        "temperature": temperature,
        "fitted": True,
        "n": int(len(labels)),
        "ece_before": top_label_ece(softmax(logits, axis=1), labels),
        "ece_after": top_label_ece(softmax(logits / temperature, axis=1), labels),
    }


def calibrate(logits: np.ndarray, labels: np.ndarray, *, kinds_only: bool) -> dict[str, Any]:
    """``meta["calibration"]``: the temperature fitted on validation logits of output 0, with NLL and ECE."""
    if kinds_only:
        return {
            "temperature": 1.0,
            "fitted": False,
            "reason": "kinds only: no good part to calibrate P(defective) on; every part is judged defective",
        }
    temperature = fit_temperature(logits, labels)
    before, after = expit(logits), expit(logits / temperature)
    return {
        "temperature": temperature,
        "fitted": True,
        "n": int(len(labels)),
        "nll_before": binary_nll(logits, labels),
        "nll_after": binary_nll(logits, labels, temperature),
        "ece_before": expected_calibration_error(before, labels),
        "ece_after": expected_calibration_error(after, labels),
    }


def defect_meta(
    tr: Trainer,
    *,
    transform: DefectTransform,
    kinds: list[str],
    kinds_only: bool,
    calibration: dict[str, Any],
    weights: ClassWeights,
    bias_correction: float,
    logit_adjustment: float,
    parent: Checkpoint | None,
    grown: list[str],
) -> dict[str, Any]:
    """The defect model's own ``meta.json`` keys (module docstring), beside the ones every checkpoint has."""
    c = tr.cfg
    val_labels = tr.labels[tr.val_idx]
    return {
        "preprocessing": transform.to_meta(),
        "kinds": kinds,
        "kinds_only": kinds_only,
        "calibration": calibration,
        "costs": {
            "miss_cost": c.miss_cost,
            "false_reject_cost": c.false_reject_cost,
            "defect_rate": c.defect_rate or float(val_labels.mean()),
            "defect_rate_from": "config" if c.defect_rate else "validation photos",
        },
        "class_balance": {
            "method": "loss weights",
            "pos_weight": weights.pos_weight,
            "bias_correction": bias_correction,
            "logit_adjustment": logit_adjustment,
            "kind_weights": dict(zip(kinds, map(float, weights.kind_weights), strict=True)),
            "train_counts": {
                "ok": weights.n_ok,
                "defective": weights.n_defective,
                **dict(zip(kinds, map(int, weights.kind_counts), strict=True)),
            },
        },
        "parent": (
            {
                "version": parent.version,
                "weights_sha256": parent.meta["weights_sha256"],
                "path": str(parent.path.resolve()),
                "kinds": [str(k) for k in parent.meta.get("kinds", [])],
                "grown": grown,
            }
            if parent is not None
            else None
        ),
        "replay": [{k: v for k, v in src.items() if k != "replay"} for src in tr.sources if src["replay"]],
    }


def train_defect(cfg: TrainConfig) -> TrainResult:
    """Train (or fine-tune) the defect classifier; module docstring: outputs, loss, calibration, threshold."""
    t0 = time.monotonic()
    check_defect_options(cfg)
    parent = load_parent(cfg.init_from) if cfg.init_from else None
    if parent is not None:
        cfg = inherit_from_parent(cfg, parent)
    tr = Trainer(cfg)
    c = tr.cfg
    parent_kinds = [str(k) for k in parent.meta.get("kinds", [])] if parent else []
    kinds = training_kinds(tr.sample_kinds, parent_kinds, c.kinds_only)
    y_kind = kind_targets(tr.sample_kinds, tr.labels, kinds)
    kinds_only = is_kinds_only(tr.labels, kinds, c)
    transform = defect_transform(tr, parent)
    model, model_kwargs, grown = create_defect_model(c.arch, kinds, parent)
    weights = class_weights(tr.labels[tr.train_idx], y_kind[tr.train_idx], len(kinds))
    # Output 0 ends as the unweighted logit (module docstring, "Class imbalance" and "Fine-tuning"): from
    # scratch its bias is shifted back after training; a fine-tune's parent is already shifted back, so its
    # loss adds the shift instead, and its weights are never corrected twice.
    log_pw = math.log(weights.pos_weight)
    adjustment = log_pw if parent is not None and not kinds_only else 0.0
    shift = log_pw if parent is None and not kinds_only else 0.0

    # the denoiser runs where training does: on a GPU, a CPU autoencoder would be the bottleneck of every batch
    router = _oracle_router(c.denoiser, tr.device, c.min_denoise_sigma) if c.denoiser else None
    batch_fn = defect_batches(tr, transform, y_kind, router)
    loss_fn = defect_loss(weights, kinds_only=kinds_only, n_kinds=len(kinds), logit_adjustment=adjustment)
    vx, vy, vk = validation_views(tr, transform, y_kind, router)

    def validate(model: nn.Module) -> dict[str, float]:
        return defect_metrics(_logits(model, vx), vy, vk, c, kinds_only=kinds_only, kind_names=kinds)

    model, _, epoch = tr.fit(model, batch_fn, loss_fn, validate, "val_score")

    # From scratch, take the pos_weight shift out of output 0; then calibrate and choose the threshold.
    finish_output0(model, kinds_only=kinds_only, shift=shift)
    calibration, metrics = _calibrated_metrics(model, (vx, vy, vk), c, kinds_only=kinds_only, kinds=kinds)
    threshold = metrics.get("val_threshold", 0.0)
    metrics["best_epoch"] = epoch
    path = tr.save(
        model,
        metrics,
        model_kwargs=model_kwargs,
        input_size=transform.size,
        class_names=["ok", "defective"],
        normalisation={"mean": transform.mean, "std": transform.std},
        threshold=threshold,
        extra=defect_meta(
            tr,
            transform=transform,
            kinds=kinds,
            kinds_only=kinds_only,
            calibration=calibration,
            weights=weights,
            bias_correction=0.0 if kinds_only or parent is not None else -log_pw,
            logit_adjustment=adjustment,
            parent=parent,
            grown=grown,
        ),
    )
    return TrainResult(path, metrics, time.monotonic() - t0)


def _calibrated_metrics(
    model: nn.Module,
    views: tuple[torch.Tensor, np.ndarray, np.ndarray],
    cfg: TrainConfig,
    *,
    kinds_only: bool,
    kinds: list[str],
) -> tuple[dict[str, Any], dict[str, float]]:
    """Fit the temperature on the validation views ``(x, y, kind)``, then the validation metrics at that
    temperature, with the threshold chosen there (0 for a kinds-only model)."""
    vx, vy, vk = views
    z = _logits(model, vx)
    calibration = calibrate(z[:, 0], vy, kinds_only=kinds_only)
    metrics = defect_metrics(
        z,
        vy,
        vk,
        cfg,
        temperature=calibration["temperature"],
        threshold=0.0 if kinds_only else None,
        kinds_only=kinds_only,
        kind_names=kinds,
    )
    return calibration, metrics


def denoiser_dir(path: str | Path, flag: str = "--denoiser") -> Path:
    """The denoiser checkpoint that ``flag`` names.

    ``path`` may be a checkpoint folder, a pre-bundle task folder (``CURRENT`` or version subfolders), a
    pre-bundle models root (its ``denoiser/``), a bundle, or a models root (its live bundle).
    """
    from inspection.bundle import (
        BUNDLES_DIR,
        LIVE_FILE,
        PIPELINE_FILE,
        load_bundle,
        resolve_checkpoint_dir,
    )

    root = Path(path)
    if any((root / name).exists() for name in (PIPELINE_FILE, LIVE_FILE, BUNDLES_DIR)):
        bundle = load_bundle(root)
        found = bundle.checkpoint_dir("denoiser")
        if found is None:
            raise CheckpointError(
                f"{flag} {path}: bundle {bundle.path} has no denoiser; name a bundle or checkpoint that has one"
            )
        return found
    return resolve_checkpoint_dir(root / "denoiser" if (root / "denoiser").is_dir() else root)


def validation_views(
    tr: Trainer, transform: DefectTransform, kinds: np.ndarray, router: Router | None
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The defect model's validation inputs, labels and kinds: each validation photo clean and, with
    ``noise_aug``, once under each routed noise type (seeded), denoised by its route when there is a denoiser.

    So the best epoch, the temperature and the threshold are chosen on photos as the pipeline shows them to the
    model, not on clean ones only: a threshold fitted to clean photos alone sat below what denoised good parts
    score, and rejected them.
    """
    photos = [tr.images[i] for i in tr.val_idx]
    views = list(photos)
    if tr.cfg.noise_aug:
        rng = np.random.default_rng(tr.cfg.seed + 2)
        for kind in augmentation_noises(tr.cfg.noise_types):
            noisy = [add_training_noise(p, kind, rng) for p in photos]
            views += (
                [router.denoiser_for_photo(routed_as(kind), p)(p) for p in noisy]
                if router is not None
                else noisy
            )
    repeat = len(views) // len(photos)
    return transform(views), np.tile(tr.labels[tr.val_idx], repeat), np.tile(kinds[tr.val_idx], repeat)


def _oracle_router(path: str, device: torch.device | str = "cpu", min_denoise_sigma: float = 0.0) -> Router:
    """The pipeline's routes with the ``--denoiser`` autoencoder, which runs on ``device``."""
    ck = load_checkpoint(denoiser_dir(path))
    denoisers = build_denoisers(ck.model, version=ck.version)
    ae = denoisers["autoencoder"]
    assert isinstance(ae, AutoencoderDenoiser)
    # channels-last runs the autoencoder's convolutions about a quarter faster on a CPU, with the same outputs up to float rounding
    ae.model, ae.device = ae.model.to(device, memory_format=torch.channels_last), str(device)
    return Router(denoisers, min_denoise_sigma=min_denoise_sigma)


TRAINERS: dict[str, Callable[[TrainConfig], TrainResult]] = {
    "noise": train_noise,
    "denoiser": train_denoiser,
    "defect": train_defect,
}
