"""The shared training loop: seeded, validated, checkpoint-on-best, with a time or epoch budget.

The task-specific parts (what a batch is, what is validated) live in ``inspection.train``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from inspection.configs import TrainConfig
from inspection.data import (
    DatasetError,
    Sample,
    dataset_fingerprint,
    golden_hashes,
    list_split,
    photo_sha256,
    read_photos,
)
from inspection.distributed import (
    Cluster,
    broadcast_json,
    cluster_from_env,
    mean_over_ranks,
    shard_batches,
    start_process_group,
    stop_process_group,
    sync_buffers,
)
from inspection.hardware import OnDevice, autocast, autocast_dtype, grad_scaler, resolve_device
from inspection.models import save_checkpoint
from inspection.models.checkpoint import CheckpointError
from inspection.noise import add_noise
from inspection.resume import (
    STATE_FILE,
    Progress,
    ResumeError,
    read_resume_state,
    remove_resume_state,
    resume_dir,
    unfinished_runs,
    write_resume_state,
)
from inspection.tracking import Tracker, redact_uri, start_run, tracking_uri

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


def limit_threads(threads: int) -> None:
    """Run torch, the BLAS under NumPy and SciPy, and OpenCV on ``threads`` threads each (0: leave as they are).

    ``--threads`` used to reach torch alone: NumPy's OpenBLAS and OpenCV still started a thread per core, and on
    a busy machine their threads spun waiting for each other (a 300 x 12 matrix product in the notch denoiser
    took 0.7 ms of CPU instead of 0.04).
    """
    if not threads:
        return
    torch.set_num_threads(threads)
    threadpool_limits(threads)
    cv2.setNumThreads(threads)


def memory_format(cfg: TrainConfig) -> torch.memory_format:
    """The layout ``fit`` trains in: channels-last (``cfg.channels_last``), else PyTorch's default."""
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


def to_layout(x: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:
    """``x`` in layout ``fmt`` when it is a batch of images (4-D); other tensors as they are."""
    return x.contiguous(memory_format=fmt) if x.dim() == 4 else x


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotations by 90 degrees and flips: a top view of a round part has no preferred orientation."""
    img = np.rot90(img, int(rng.integers(4)))
    return np.ascontiguousarray(img[:, ::-1] if rng.random() < 0.5 else img)


def drop_golden(
    samples: list[Sample], source: np.ndarray, golden: set[str]
) -> tuple[list[Sample], np.ndarray, int]:
    """``samples`` (and their ``source`` indices) less those whose file bytes hash to a ``golden`` SHA-256.

    Returns the kept samples, their sources and how many were dropped. Files are hashed only when ``golden``
    is not empty: a dataset without a golden set costs nothing.

    Raises:
        DatasetError: every photo is golden, so nothing is left to train on.
    """
    if not golden:
        return samples, source, 0
    keep = np.array([photo_sha256(s.path) not in golden for s in samples], bool)
    dropped = int((~keep).sum())
    if dropped:
        log.warning(
            "%d training photo(s) have the bytes of a golden test photo (golden_sha256 in dataset.json) and are "
            "left out of training, e.g. %s",
            dropped,
            samples[int(np.flatnonzero(~keep)[0])].path,
        )
    if not keep.any():
        raise DatasetError(
            f"all {len(samples)} training photos are golden test photos (golden_sha256 in dataset.json); "
            "train on photos outside the golden set"
        )
    return [s for s, k in zip(samples, keep, strict=True) if k], source[keep], dropped


@dataclass
class _Optimisation:
    """What ``fit`` steps with: optimiser, schedule, gradient scaler, autocast type, steps per epoch."""

    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    amp_dtype: torch.dtype | None
    steps: int


def _keep_if_best(
    progress: Progress, model: nn.Module, metrics: dict[str, float], epoch: int, score_key: str
) -> bool:
    """Keep a CPU copy of the weights when ``metrics[score_key]`` beats the best so far; returns whether it did."""
    if progress.best and not metrics[score_key] > progress.best[score_key]:  # a NaN score never improves
        return False
    progress.best, progress.best_epoch = metrics, epoch
    progress.best_state = {
        k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()
    }
    return True


class Trainer:
    """Shared loop: AdamW + one-cycle schedule, per-epoch validation, checkpoint-on-best, budget."""

    def __init__(self, cfg: TrainConfig) -> None:
        """Read the training photos (``cfg.data``'s train split or ``cfg.labels``, plus ``cfg.replay``'s train
        splits) at their own sizes, and carve out the validation split.

        Validation is stratified by source, label and kind, so it holds new and replayed photos of every kind in
        proportion. An unreadable photo is left out and listed in ``fingerprint["rejected"]``. A photo whose bytes
        are those of a golden photo listed in any root's ``dataset.json`` is left out and counted in
        ``fingerprint["golden_excluded"]``: the golden test set never enters training.
        """
        cfg = cfg.resolved()
        if not cfg.data and cfg.labels:
            cfg = replace(cfg, data=str(Path(cfg.labels).parent))
        self.cfg = cfg
        limit_threads(self.cfg.threads)
        torch.manual_seed(self.cfg.seed)
        self.rng = np.random.default_rng(self.cfg.seed)
        roots = [self.cfg.data, *self.cfg.replay]
        samples, source = self._list_samples()
        samples, source, golden_excluded = drop_golden(samples, source, golden_hashes(roots))
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
            "golden_excluded": golden_excluded,
        }
        if self.cfg.labels:
            self.fingerprint["labels_csv"] = str(Path(self.cfg.labels).resolve())
        self.train_idx, self.val_idx = self._split(kept, source)

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        """The training photos of one epoch, shuffled.

        With ``new_share`` and replayed data, that share of the epoch is drawn from the new photos (repeated when
        there are few) and the rest from the replayed ones; otherwise every training photo once.
        """
        share = self.cfg.new_share
        new = self.train_idx[self.source[self.train_idx] == 0]
        old = self.train_idx[self.source[self.train_idx] > 0]
        if not 0 < share < 1 or not len(new) or not len(old):
            return rng.permutation(self.train_idx)
        n_new = round(share * len(self.train_idx))
        n_old = len(self.train_idx) - n_new
        picked = np.concatenate(
            [
                rng.choice(new, n_new, replace=n_new > len(new)),
                rng.choice(old, n_old, replace=n_old > len(old)),
            ]
        )
        return rng.permutation(picked)

    def _list_samples(self) -> tuple[list[Sample], np.ndarray]:
        """Every listed training photo, and the index of the root it comes from (0: ``data``, then replays)."""
        cfg = self.cfg
        listed = [
            list_split(cfg.data, "train", kinds_only=cfg.kinds_only, labels=cfg.labels or None),
            *(list_split(r, "train") for r in cfg.replay),
        ]
        samples = [s for part in listed for s in part]
        source = np.concatenate([np.full(len(part), k) for k, part in enumerate(listed)])
        return samples, source

    def _split(self, kept: list[Sample], source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Train and validation indices, stratified by (source, label, kind).

        A group too small to split falls back to (source, label).
        """
        groups = np.array([f"{k}|{s.label}|{s.kind}" for k, s in zip(source, kept, strict=True)])
        names, counts = np.unique(groups, return_counts=True)
        small = set(names[counts < 2])
        groups = np.array(
            [f"{k}|{s.label}|" if g in small else g for g, k, s in zip(groups, source, kept, strict=True)]
        )
        return split_indices(groups, self.cfg.val_fraction, self.cfg.seed)

    # Set by fit; these defaults serve a save() without fit.
    _cluster: Cluster = Cluster()
    _tracker: Tracker = Tracker()
    _trained_on: dict[str, Any] | None = None

    @cached_property
    def device(self) -> torch.device:
        """Where ``fit`` trains (``cfg.device``); under torchrun, the GPU of this process's local rank.

        Raises:
            DeviceError: ``--device cuda`` without a visible GPU, or an unknown choice.
        """
        return resolve_device(self.cfg.device, cluster_from_env().local_rank)

    @property
    def checkpoint_dir(self) -> Path:
        """The version folder ``save`` writes: ``<out>/<task>/<version>/``."""
        return Path(self.cfg.out) / self.cfg.task / self.cfg.version

    @property
    def resume_dir(self) -> Path:
        """Where the run keeps its per-epoch resume state, beside ``checkpoint_dir``."""
        return resume_dir(self.cfg.out, self.cfg.task, self.cfg.version)

    def fit(
        self,
        model: nn.Module,
        batch_fn: Callable[[np.ndarray, np.random.Generator], tuple[torch.Tensor, torch.Tensor]],
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        validate: Callable[[nn.Module], dict[str, float]],
        score_key: str,
    ) -> tuple[nn.Module, dict[str, float], int]:
        """Train ``model``; returns it on the CPU with its best epoch's weights, that epoch's metrics and number.

        ``batch_fn(idx, rng)`` returns CPU tensors ``(x, y)``, moved here to ``self.device``. ``validate(model)``
        gets a view of the model that takes CPU tensors and returns CPU float32 tensors on any device; under
        torchrun it runs on rank 0 only, and the metrics it returns reach every rank. Every epoch the state to
        resume from is written to ``resume_dir``; with ``cfg.resume`` training goes on from there.
        """
        device = self.device
        cluster = start_process_group(device)
        self._cluster = cluster
        try:
            # The default version is a timestamp, which may differ by a second between ranks: take rank 0's.
            if cluster.active:
                self.cfg = replace(self.cfg, version=broadcast_json(self.cfg.version, cluster, device))
            if (self.checkpoint_dir / "meta.json").exists():
                raise CheckpointError(
                    f"{self.checkpoint_dir} already holds a finished checkpoint; train to a new --version"
                )
            return self._fit(model, batch_fn, loss_fn, validate, score_key, device, cluster)
        except BaseException as e:
            self._tracker.finish("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
            raise
        finally:
            stop_process_group(cluster)

    def _fit(
        self,
        model: nn.Module,
        batch_fn: Callable[[np.ndarray, np.random.Generator], tuple[torch.Tensor, torch.Tensor]],
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        validate: Callable[[nn.Module], dict[str, float]],
        score_key: str,
        device: torch.device,
        cluster: Cluster,
    ) -> tuple[nn.Module, dict[str, float], int]:
        cfg = self.cfg
        model.to(device, memory_format=memory_format(cfg))
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: cuDNN picks its fastest kernels once
        loop = self._optimisation(model, device, cluster)
        config = self._config_record()
        progress = self._start(model, loop.opt, loop.sched, loop.scaler, config, device, cluster)
        if cluster.is_main:
            self._start_tracking(progress, config, cluster, loop.steps)
        net: nn.Module = model
        if cluster.active:
            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        for epoch in range(progress.epoch + 1, cfg.epochs + 1):
            if progress.stop:
                break
            t0 = time.monotonic()
            train_loss = self._train_epoch(net, loop, epoch, progress, batch_fn, loss_fn, device, cluster)
            sync_buffers(model, cluster)
            self._end_epoch(
                model, loop, epoch, t0, train_loss, progress, validate, score_key, config, device, cluster
            )
        if progress.best_state is None:
            raise RuntimeError(f"no epoch was trained (epochs={cfg.epochs}); give --epochs 1 or more")
        model.load_state_dict(progress.best_state)
        model = model.cpu().to(memory_format=torch.contiguous_format)
        return model.eval(), progress.best, progress.best_epoch

    def _optimisation(self, model: nn.Module, device: torch.device, cluster: Cluster) -> _Optimisation:
        """AdamW with a one-cycle schedule over the whole run, and mixed precision where the device has it."""
        cfg = self.cfg
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        # Each rank takes its share of every epoch: the epoch has world_size times fewer steps per rank.
        steps = max(1, len(self.train_idx) // (cfg.batch_size * cluster.world_size))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps)
        amp_dtype = autocast_dtype(device, cfg.amp)
        scaler = grad_scaler(device, enabled=amp_dtype == torch.float16)
        self._trained_on = {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "processes": cluster.world_size,
            "precision": f"{str(amp_dtype).removeprefix('torch.')} mixed" if amp_dtype else "float32",
        }
        return _Optimisation(opt, sched, scaler, amp_dtype, steps)

    def _start_tracking(
        self, progress: Progress, config: dict[str, Any], cluster: Cluster, steps: int
    ) -> None:
        """Open (or, resumed, reopen) the MLflow run and log where and how training runs. Rank 0 only."""
        cfg = self.cfg
        trained_on = self._trained_on or {}
        self._tracker = start_run(
            tracking_uri(cfg.mlflow_uri),
            experiment=f"inspection-{cfg.task}",
            run_name=f"{cfg.task}/{cfg.version}",
            params=config,
            tags={"task": cfg.task, "version": cfg.version},
            run_id=progress.run_id,
        )
        progress.run_id = self._tracker.run_id
        log.info(
            "training %s %s on %s (%s, %d process%s), %d steps per epoch",
            cfg.task,
            cfg.version,
            trained_on["device"],
            trained_on["precision"],
            cluster.world_size,
            "es" if cluster.active else "",
            steps,
        )

    def _train_epoch(
        self,
        net: nn.Module,
        loop: _Optimisation,
        epoch: int,
        progress: Progress,
        batch_fn: Callable[[np.ndarray, np.random.Generator], tuple[torch.Tensor, torch.Tensor]],
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        device: torch.device,
        cluster: Cluster,
    ) -> float:
        """One epoch of optimiser steps; returns the mean training loss over every rank."""
        cfg = self.cfg
        # Generators seeded per (epoch, rank): a resumed epoch draws what the uninterrupted one would.
        order_rng = np.random.default_rng([cfg.seed, epoch, 0])
        batch_rng = np.random.default_rng([cfg.seed, epoch, 1, cluster.rank])
        torch.manual_seed(int(batch_rng.integers(2**62)))
        batches = shard_batches(
            self.epoch_order(order_rng),
            cfg.batch_size,
            loop.steps,
            cluster.rank,
            cluster.world_size,
        )
        net.train()
        bar = tqdm(
            batches,
            desc=f"{cfg.task} epoch {epoch}/{cfg.epochs}, ETA {format_eta(progress, cfg)}",
            disable=cfg.quiet or not cluster.is_main,
            leave=False,
        )
        total = torch.zeros((), device=device)
        fmt = memory_format(cfg)
        for step, idx in enumerate(bar, 1):
            x, y = batch_fn(idx, batch_rng)
            x, y = to_layout(x.to(device, non_blocking=True), fmt), y.to(device, non_blocking=True)
            with autocast(device, loop.amp_dtype):
                loss = loss_fn(net(x), y)
            loop.opt.zero_grad(set_to_none=True)
            loop.scaler.scale(loss).backward()
            loop.scaler.step(loop.opt)
            loop.scaler.update()
            loop.sched.step()
            total += loss.detach().float()
            if step % 10 == 0 or step == len(batches):  # .item() waits for the GPU: not every step
                bar.set_postfix(loss=f"{loss.item():.4f}")
        return mean_over_ranks(total / len(batches), cluster)

    def _end_epoch(
        self,
        model: nn.Module,
        loop: _Optimisation,
        epoch: int,
        t0: float,
        train_loss: float,
        progress: Progress,
        validate: Callable[[nn.Module], dict[str, float]],
        score_key: str,
        config: dict[str, Any],
        device: torch.device,
        cluster: Cluster,
    ) -> None:
        """Validate (rank 0; every rank gets the result), keep the best epoch, log, and write the resume state."""
        cfg = self.cfg
        decision: dict[str, Any] | None = None
        if cluster.is_main:
            decision = self._validate(model, validate, device, t0, progress)
        decision = broadcast_json(decision, cluster, device)
        metrics, seconds = decision["metrics"], decision["seconds"]
        progress.epoch, progress.stop = epoch, decision["stop"]
        progress.elapsed_s += seconds
        progress.epoch_seconds.append(seconds)
        improved = _keep_if_best(progress, model, metrics, epoch, score_key)
        stalled = should_stop_early(cfg.patience, epoch, progress.best_epoch)
        progress.stop = progress.stop or stalled
        if not cluster.is_main:
            return
        log.info(progress_line(cfg, progress, train_loss, metrics, improved))
        self._tracker.log_epoch(
            epoch,
            {"train_loss": train_loss, "lr": loop.sched.get_last_lr()[0], "epoch_s": seconds, **metrics},
        )
        write_resume_state(
            self.resume_dir,
            model=model,
            optimizer=loop.opt,
            scheduler=loop.sched,
            scaler=loop.scaler,
            progress=progress,
            config=config,
        )
        if stalled:
            log.info(
                "stopping early after epoch %d: no better %s in %d epochs since epoch %d",
                epoch,
                score_key,
                cfg.patience,
                progress.best_epoch,
            )
        elif progress.stop:
            log.info("time budget of %.0f s reached after epoch %d", cfg.time_budget_s, epoch)

    def _validate(
        self,
        model: nn.Module,
        validate: Callable[[nn.Module], dict[str, float]],
        device: torch.device,
        t0: float,
        progress: Progress,
    ) -> dict[str, Any]:
        """The epoch's validation metrics, its seconds, and whether the time budget is spent."""
        model.eval()
        metrics = validate(OnDevice(model, device))
        seconds = time.monotonic() - t0
        budget = self.cfg.time_budget_s
        return {
            "metrics": metrics,
            "seconds": seconds,
            "stop": bool(budget and progress.elapsed_s + seconds > budget),
        }

    def _start(
        self,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        sched: Any,
        scaler: Any,
        config: dict[str, Any],
        device: torch.device,
        cluster: Cluster,
    ) -> Progress:
        """Where training starts: with ``cfg.resume``, the resume state (loaded into the objects), else epoch 0."""
        cfg, folder = self.cfg, self.resume_dir
        progress = Progress()
        if cfg.resume and (folder / STATE_FILE).is_file():
            progress = read_resume_state(
                folder, model=model, optimizer=opt, scheduler=sched, scaler=scaler, config=config
            )
            if cluster.is_main:
                log.info(
                    "resuming %s after epoch %d of %d (%s)", cfg.version, progress.epoch, cfg.epochs, folder
                )
        elif cfg.resume:
            others = [v for v in unfinished_runs(cfg.out, cfg.task) if v != cfg.version]
            if others:
                raise ResumeError(
                    f"--resume: no unfinished run {cfg.version!r} in {folder.parent}; the unfinished runs there "
                    f"are {others}: pass --version with one of them"
                )
            if cluster.is_main:
                log.info("--resume: %s has no unfinished run to resume; starting afresh", cfg.version)
        elif folder.exists() and cluster.is_main:
            log.warning(
                "%s: an unfinished run of this version; starting afresh (add --resume to continue it)", folder
            )
        start = broadcast_json(progress.epoch, cluster, device)
        if start != progress.epoch:
            raise ResumeError(
                f"rank {cluster.rank} would resume after epoch {progress.epoch} but rank 0 after epoch {start}: "
                f"every machine must see the same --out folder ({cfg.out})"
            )
        return progress

    def _config_record(self) -> dict[str, Any]:
        """The config as JSON values, with any password in the tracking URI masked."""
        record = json.loads(json.dumps(asdict(self.cfg)))
        record["mlflow_uri"] = redact_uri(record.get("mlflow_uri", ""))
        return record

    def save(
        self, model: nn.Module, metrics: dict[str, Any], *, extra: dict[str, Any] | None = None, **meta: Any
    ) -> Path:
        """Write ``model`` (from a CPU copy) to ``checkpoint_dir``, track it, and drop the run's resume state.

        ``meta`` are ``save_checkpoint``'s fields (``input_size``, ``threshold`` ...); ``extra`` adds the task's
        own top-level keys (a defect model's preprocessing, kinds, calibration ...). ``meta.json`` is written once,
        complete, before the resume state goes: a kill at any moment leaves either a run that resumes or a
        finished checkpoint, never one that lacks part of its meta. Under torchrun only rank 0 writes; the
        other ranks return the path it writes to.
        """
        cfg = self.cfg
        path = self.checkpoint_dir
        if not self._cluster.is_main:
            return path
        summary = {
            **self.fingerprint,
            "root": str(Path(cfg.data).resolve()),
            "split": "train",
            "n_train": int(len(self.train_idx)),
            "n_val": int(len(self.val_idx)),
        }
        try:
            save_checkpoint(
                model,
                path,
                architecture=cfg.arch,
                training_data=summary,
                metrics=metrics,
                extra={
                    "train_config": self._config_record(),
                    "trained_on": self._trained_on or {},
                    **(extra or {}),
                },
                **meta,
            )
            self._tracker.log_checkpoint(path, metrics)
        except BaseException:
            self._tracker.finish("FAILED")
            raise
        self._tracker.finish()
        remove_resume_state(self.resume_dir)
        return path

    def noisy(self, img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
        return add_noise(img, kind, rng=rng)


def should_stop_early(patience: int, epoch: int, best_epoch: int) -> bool:
    """Whether ``patience`` epochs (0: never) have passed since the best epoch without a better score."""
    return bool(patience) and epoch - best_epoch >= patience


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def eta_seconds(progress: Progress, cfg: TrainConfig) -> float | None:
    """Seconds left: epochs left times the mean epoch so far, capped by the budget left (None: unknown)."""
    if progress.stop or progress.epoch >= cfg.epochs:
        return 0.0
    if not progress.epoch_seconds:
        return None
    left = (cfg.epochs - progress.epoch) * sum(progress.epoch_seconds) / len(progress.epoch_seconds)
    if cfg.time_budget_s:
        left = min(left, max(0.0, cfg.time_budget_s - progress.elapsed_s))
    return left


def format_eta(progress: Progress, cfg: TrainConfig) -> str:
    eta = eta_seconds(progress, cfg)
    return "?" if eta is None else format_duration(eta)


def progress_line(
    cfg: TrainConfig, progress: Progress, train_loss: float, metrics: dict[str, float], improved: bool
) -> str:
    """The one line logged per epoch (shown with ``--quiet`` too): loss, metrics, time, ETA."""
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, int | float))
    line = (
        f"{cfg.task} epoch {progress.epoch}/{cfg.epochs}: loss {train_loss:.4f}, {shown}"
        f"{' (best)' if improved else ''}; {progress.epoch_seconds[-1]:.1f} s, ETA {format_eta(progress, cfg)}"
    )
    if cfg.time_budget_s:
        spent = format_duration(progress.elapsed_s)
        line += f" (time budget {format_duration(cfg.time_budget_s)}, {spent} spent)"
    return line
