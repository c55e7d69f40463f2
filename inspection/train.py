"""Training loops for the three models: seeded, validated, checkpoint-on-best, with a time or epoch budget.

Data is any folder in the ``train|test/<class>/`` layout; only ``train`` is read, and a seeded validation
split is carved out of it for every choice (epoch, threshold). Noise is synthesised on the fly from the
clean photos at their full resolution.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inspection import NOISE_TYPES
from inspection.configs import TrainConfig
from inspection.denoise import Router, build_denoisers
from inspection.models import create_model, load_checkpoint
from inspection.noise import add_noise
from inspection.spectrum import noise_features
from inspection.trainer import Trainer, TrainResult, augment

log = logging.getLogger(__name__)


def train_noise(cfg: TrainConfig) -> TrainResult:
    """Train the noise-type classifier on (spectrum, residual) features of freshly noised photos."""
    t0 = time.monotonic()
    tr = Trainer(cfg)
    c = tr.cfg
    channels = 1 if c.arch == "freq_vgg16" else 2
    model = create_model(c.arch, in_chans=channels)

    def features(idx: np.ndarray, rng: np.random.Generator, kinds: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(
            np.stack(
                [
                    noise_features(
                        add_noise(augment(tr.images[i], rng), NOISE_TYPES[k], rng=rng),
                        c.input_size,
                        channels,
                    )
                    for i, k in zip(idx, kinds, strict=True)
                ]
            )
        )

    def batch_fn(idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        kinds = rng.integers(len(NOISE_TYPES), size=len(idx))
        return features(idx, rng, kinds), torch.from_numpy(kinds)

    # A fixed validation set: every validation photo under every noise type.
    vrng = np.random.default_rng(c.seed + 1)
    v_idx = np.repeat(tr.val_idx, len(NOISE_TYPES))
    v_kinds = np.tile(np.arange(len(NOISE_TYPES)), len(tr.val_idx))
    vx = features(v_idx, vrng, v_kinds)

    @torch.inference_mode()
    def validate(model: nn.Module) -> dict[str, float]:
        pred = torch.cat([model(vx[i : i + 256]).argmax(1) for i in range(0, len(vx), 256)]).numpy()
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
    )
    return TrainResult(path, metrics, time.monotonic() - t0)


def train_denoiser(cfg: TrainConfig) -> TrainResult:
    """Train a denoising autoencoder on random crops of photos noised at full resolution."""
    t0 = time.monotonic()
    tr = Trainer(cfg)
    c = tr.cfg
    model = create_model(c.arch)
    for kind in c.noise_types:
        if kind not in NOISE_TYPES:
            raise ValueError(f"unknown noise type {kind!r}; expected some of {NOISE_TYPES}")

    def pairs(idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for i in idx:
            clean = augment(tr.images[i], rng)
            noisy = add_noise(clean, c.noise_types[int(rng.integers(len(c.noise_types)))], rng=rng)
            h, w = clean.shape
            s = min(c.input_size, h, w)
            top, left = int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1))
            xs.append(noisy[top : top + s, left : left + s])
            ys.append(clean[top : top + s, left : left + s])
        to_t = lambda a: torch.from_numpy(np.stack(a)).float().div_(255.0)[:, None]  # noqa: E731
        return to_t(xs), to_t(ys)

    vx, vy = pairs(tr.val_idx, np.random.default_rng(c.seed + 1))

    @torch.inference_mode()
    def validate(model: nn.Module) -> dict[str, float]:
        mse = torch.cat(
            [
                ((model(vx[i : i + 64]).clamp(0, 1) - vy[i : i + 64]) ** 2).mean((1, 2, 3))
                for i in range(0, len(vx), 64)
            ]
        )
        return {"val_psnr": float((10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean())}

    model, metrics, epoch = tr.fit(model, pairs, F.l1_loss, validate, "val_psnr")
    path = tr.save(
        model,
        {**metrics, "best_epoch": epoch, "noise_types": list(c.noise_types)},
        input_size=None,
        class_names=[],
    )
    return TrainResult(path, metrics, time.monotonic() - t0)


def best_threshold(prob: np.ndarray, labels: np.ndarray) -> float:
    """The threshold maximising balanced accuracy on validation data (midpoint between neighbours)."""
    cands = np.unique(np.concatenate([[0.5], prob]))
    best_t, best_score = 0.5, -1.0
    for t in cands:
        pred = prob >= t
        score = 0.5 * ((pred[labels == 1]).mean() + (~pred[labels == 0]).mean())
        if score > best_score + 1e-12:
            best_t, best_score = float(t), float(score)
    return best_t


def train_defect(cfg: TrainConfig) -> TrainResult:
    """Train the defect classifier; the decision threshold is chosen on the validation split."""
    t0 = time.monotonic()
    tr = Trainer(cfg)
    c = tr.cfg
    model = create_model(c.arch)
    mean, std = 0.5, 0.25
    routed = ("gaussian", "salt_pepper", "periodic")

    def to_input(imgs: list[np.ndarray]) -> torch.Tensor:
        s = c.input_size
        arr = np.stack(
            [
                cv2.resize(im, (s, s), interpolation=cv2.INTER_AREA) if im.shape != (s, s) else im
                for im in imgs
            ]
        )
        return ((torch.from_numpy(arr).float() / 255.0 - mean) / std)[:, None]

    router = _oracle_router(c.denoiser) if c.denoiser else None

    def batch_fn(idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        imgs = []
        for i in idx:
            im = augment(tr.images[i], rng)
            if c.noise_aug and rng.random() < c.noise_aug:
                kind = routed[int(rng.integers(3))]
                im = add_noise(im, kind, rng=rng)
                if router is not None:
                    im = router.denoiser_for(kind)(im)
            imgs.append(im)
        return to_input(imgs), torch.from_numpy(tr.labels[idx]).float()

    vx = to_input([tr.images[i] for i in tr.val_idx])
    vy = tr.labels[tr.val_idx]

    @torch.inference_mode()
    def val_prob(model: nn.Module) -> np.ndarray:
        return torch.cat(
            [torch.sigmoid(model(vx[i : i + 128])[:, 0]) for i in range(0, len(vx), 128)]
        ).numpy()

    def validate(model: nn.Module) -> dict[str, float]:
        prob = val_prob(model)
        t = best_threshold(prob, vy)
        pred = prob >= t
        return {
            "val_accuracy": float((pred == vy).mean()),
            "val_accuracy_at_0.5": float(((prob >= 0.5) == vy).mean()),
            "val_threshold": t,
        }

    loss = lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y)  # noqa: E731
    model, metrics, epoch = tr.fit(model, batch_fn, loss, validate, "val_accuracy")
    path = tr.save(
        model,
        {**metrics, "best_epoch": epoch},
        input_size=c.input_size,
        class_names=["ok", "defective"],
        normalisation={"mean": mean, "std": std},
        threshold=metrics["val_threshold"],
    )
    return TrainResult(path, metrics, time.monotonic() - t0)


def _oracle_router(path: str) -> Router:
    from inspection.bundle import resolve_checkpoint_dir

    root = Path(path)
    ck = load_checkpoint(resolve_checkpoint_dir(root / "denoiser" if (root / "denoiser").is_dir() else root))
    return Router(build_denoisers(ck.model, version=ck.version))


TRAINERS: dict[str, Callable[[TrainConfig], TrainResult]] = {
    "noise": train_noise,
    "denoiser": train_denoiser,
    "defect": train_defect,
}
