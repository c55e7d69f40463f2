"""The shared training loop: seeded, validated, checkpoint-on-best, with a time or epoch budget.

The task-specific parts (what a batch is, what is validated) live in ``inspection.train``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from inspection.configs import TrainConfig
from inspection.data import DatasetError, dataset_fingerprint, list_split, read_photos
from inspection.models import save_checkpoint
from inspection.noise import add_noise

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    path: Path
    metrics: dict[str, Any]
    seconds: float


def split_indices(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded train/validation index split."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = max(1, int(round(len(idx) * val_fraction)))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotations by 90 degrees and flips: a top view of a round part has no preferred orientation."""
    img = np.rot90(img, int(rng.integers(4)))
    return np.ascontiguousarray(img[:, ::-1] if rng.random() < 0.5 else img)


class Trainer:
    """Shared loop: AdamW + one-cycle schedule, per-epoch validation, checkpoint-on-best, budget."""

    def __init__(self, cfg: TrainConfig) -> None:
        """Read the training photos (``cfg.data``'s train split or ``cfg.labels``, plus ``cfg.replay``'s train
        splits) at their own sizes, and carve out the validation split.

        Validation is stratified by source, label and kind, so it holds new and replayed photos of every kind in
        proportion. An unreadable photo is left out and listed in ``fingerprint["rejected"]``.
        """
        cfg = cfg.resolved()
        if not cfg.data and cfg.labels:
            cfg = replace(cfg, data=str(Path(cfg.labels).parent))
        self.cfg = cfg
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        torch.manual_seed(self.cfg.seed)
        self.rng = np.random.default_rng(self.cfg.seed)
        roots = [self.cfg.data, *self.cfg.replay]
        listed = [
            list_split(
                self.cfg.data, "train", kinds_only=self.cfg.kinds_only, labels=self.cfg.labels or None
            ),
            *(list_split(r, "train") for r in self.cfg.replay),
        ]
        samples = [s for part in listed for s in part]
        source = np.concatenate([np.full(len(part), k) for k, part in enumerate(listed)])
        if self.cfg.max_images:
            pick = np.sort(self.rng.permutation(len(samples))[: self.cfg.max_images])
            samples, source = [samples[i] for i in pick], source[pick]
        log.info("loading %d training photos from %s", len(samples), ", ".join(map(str, roots)))
        self.images, kept, rejected = read_photos(samples, self.cfg.load_size or None)
        if not kept:
            raise DatasetError(
                f"none of the {len(samples)} training photos could be read, e.g. {rejected[0]}"
            )
        read = np.zeros(len(samples), bool)  # kept is samples less the rejected, in order
        j = 0
        for i, s in enumerate(samples):
            if j < len(kept) and kept[j] is s:
                read[i], j = True, j + 1
        source = source[read]
        self.samples = kept
        self.source = source
        self.labels = np.array([s.label for s in kept])
        self.sample_kinds = [s.kind for s in kept]
        self.sources = [
            {
                "root": str(Path(r).resolve()),
                "replay": k > 0,
                **dataset_fingerprint([s for s, src in zip(kept, source, strict=True) if src == k]),
            }
            for k, r in enumerate(roots)
        ]
        self.fingerprint = {
            **dataset_fingerprint(kept),
            "sources": self.sources,
            "rejected": [{"path": str(r.path), "reason": r.reason, "message": r.message} for r in rejected],
        }
        if self.cfg.labels:
            self.fingerprint["labels_csv"] = str(Path(self.cfg.labels).resolve())
        # Stratify by (source, label, kind); a group too small to split falls back to (source, label).
        groups = np.array([f"{k}|{s.label}|{s.kind}" for k, s in zip(source, kept, strict=True)])
        names, counts = np.unique(groups, return_counts=True)
        small = set(names[counts < 2])
        groups = np.array(
            [f"{k}|{s.label}|" if g in small else g for g, k, s in zip(groups, source, kept, strict=True)]
        )
        self.train_idx, self.val_idx = split_indices(groups, self.cfg.val_fraction, self.cfg.seed)

    def fit(
        self,
        model: nn.Module,
        batch_fn: Callable[[np.ndarray, np.random.Generator], tuple[torch.Tensor, torch.Tensor]],
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        validate: Callable[[nn.Module], dict[str, float]],
        score_key: str,
    ) -> tuple[nn.Module, dict[str, float], int]:
        cfg = self.cfg
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps_per_epoch = max(1, len(self.train_idx) // cfg.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
        best: dict[str, float] = {}
        best_state: dict[str, torch.Tensor] | None = None
        best_epoch = 0
        start = time.monotonic()
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            order = self.rng.permutation(self.train_idx)
            bar = tqdm(
                range(steps_per_epoch), desc=f"{cfg.task} epoch {epoch}/{cfg.epochs}", disable=cfg.quiet
            )
            for step in bar:
                x, y = batch_fn(order[step * cfg.batch_size : (step + 1) * cfg.batch_size], self.rng)
                loss = loss_fn(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.set_postfix(loss=f"{loss.item():.4f}")
            model.eval()
            metrics = validate(model)
            log.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in metrics.items()})
            if not best or metrics[score_key] > best[score_key]:
                best, best_epoch = metrics, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if cfg.time_budget_s and time.monotonic() - start > cfg.time_budget_s:
                log.info("time budget of %.0f s reached after epoch %d", cfg.time_budget_s, epoch)
                break
        assert best_state is not None
        model.load_state_dict(best_state)
        model.eval()
        return model, best, best_epoch

    def save(self, model: nn.Module, metrics: dict[str, Any], **meta: Any) -> Path:
        cfg = self.cfg
        summary = {
            **self.fingerprint,
            "root": str(Path(cfg.data).resolve()),
            "split": "train",
            "n_train": int(len(self.train_idx)),
            "n_val": int(len(self.val_idx)),
        }
        return save_checkpoint(
            model,
            Path(cfg.out) / cfg.task / cfg.version,
            architecture=cfg.arch,
            training_data=summary,
            metrics=metrics,
            extra={"train_config": json.loads(json.dumps(asdict(cfg)))},
            **meta,
        )

    def noisy(self, img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
        return add_noise(img, kind, rng=rng)
