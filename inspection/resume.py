"""Resume state: what a killed training run needs to go on as if it had never stopped. Never a pickle.

After every epoch the training loop writes ``<out>/<task>/<version>.resume/``:

- ``state-<epoch>.safetensors``: the model's weights (``model.*``), the best epoch's weights (``best.*``) and
  the optimiser's per-parameter tensors (``optim.<parameter index>.<name>``, AdamW's ``exp_avg`` ...);
- ``state.json``: the epoch, seconds spent, best metrics and epoch, whether the time budget was spent, the
  config, the scheduler's and gradient scaler's state, the optimiser's hyper-parameters, the MLflow run id,
  and the name and SHA-256 of the tensors file.

``state.json`` is replaced atomically once its tensors file is complete, so a kill at any moment leaves the
last complete epoch readable. No random-generator state is kept: each epoch's generators are seeded from
(seed, epoch, rank), so a resumed epoch draws what the uninterrupted run would have drawn. The folder is
removed once the final checkpoint is written.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from inspection.fileio import write_text_atomic
from inspection.models.checkpoint import CheckpointError, file_sha256

FORMAT_VERSION = 1
STATE_FILE = "state.json"
SUFFIX = ".resume"
# What may differ between a run and its resumption: where it runs and what it prints, not what it learns.
MAY_CHANGE = frozenset({"resume", "quiet", "device", "amp", "threads", "time_budget_s", "mlflow_uri"})


class ResumeError(CheckpointError):
    """A resume state that cannot be used for this run (a ``CheckpointError``, so the CLI reports it plainly)."""


@dataclass
class Progress:
    """The training loop's own state between epochs (everything but the tensors of model and optimiser)."""

    epoch: int = 0
    elapsed_s: float = 0.0
    best: dict[str, float] = field(default_factory=dict)
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    stop: bool = False
    epoch_seconds: list[float] = field(default_factory=list)
    run_id: str = ""


def resume_dir(out: str | Path, task: str, version: str) -> Path:
    """Where run ``version`` keeps its resume state: beside its final checkpoint folder."""
    return Path(out) / task / f"{version}{SUFFIX}"


def unfinished_runs(out: str | Path, task: str) -> list[str]:
    """Versions of ``task`` under ``out`` that have resume state (killed or still running)."""
    base = Path(out) / task
    if not base.is_dir():
        return []
    return sorted(p.name.removesuffix(SUFFIX) for p in base.glob(f"*{SUFFIX}") if (p / STATE_FILE).is_file())


def comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config entries that must match for a run to be resumed, as JSON values."""
    return {k: v for k, v in json.loads(json.dumps(config)).items() if k not in MAY_CHANGE}


def write_resume_state(
    folder: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    progress: Progress,
    config: dict[str, Any],
) -> Path:
    """Write the state after ``progress.epoch`` to ``folder`` (created); returns the state file."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in (progress.best_state or {}).items()})
    optim = optimizer.state_dict()
    optim_values: dict[str, dict[str, Any]] = {}
    for index, values in optim["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{name}"] = value
            else:
                optim_values.setdefault(str(index), {})[name] = value
    name = f"state-{progress.epoch:04d}.safetensors"
    tmp = folder / f"{name}.tmp"
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        str(tmp),
        metadata={"format": "inspection-resume"},
    )
    os.replace(tmp, folder / name)
    state = {
        "format_version": FORMAT_VERSION,
        "tensors": name,
        "tensors_sha256": file_sha256(folder / name),
        "epoch": progress.epoch,
        "elapsed_s": progress.elapsed_s,
        "best": progress.best,
        "best_epoch": progress.best_epoch,
        "stop": progress.stop,
        "epoch_seconds": progress.epoch_seconds,
        "mlflow_run_id": progress.run_id,
        "optimizer_param_groups": optim["param_groups"],
        "optimizer_values": optim_values,
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "config": json.loads(json.dumps(config)),
    }
    write_text_atomic(folder / STATE_FILE, json.dumps(state, indent=1) + "\n")
    for old in folder.glob("state-*.safetensors"):
        if old.name != name:
            old.unlink()
    return folder / STATE_FILE


def read_resume_state(
    folder: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    config: dict[str, Any],
) -> Progress:
    """Load the state in ``folder`` into model, optimiser, scheduler and scaler; returns the loop's progress.

    Raises:
        ResumeError: the state is damaged, of an unknown format, or from a run with other training options.
    """
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ResumeError(f"cannot read the resume state {folder / STATE_FILE}: {e}") from e
    if state.get("format_version") != FORMAT_VERSION:
        raise ResumeError(
            f"{folder}: unknown resume format {state.get('format_version')!r} (this version reads "
            f"{FORMAT_VERSION}); start the run afresh without --resume"
        )
    was, now = comparable_config(state["config"]), comparable_config(config)
    changed = sorted(k for k in was.keys() | now.keys() if was.get(k) != now.get(k))
    if changed:
        detail = ", ".join(f"{k}: {was.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise ResumeError(
            f"cannot resume {folder.name.removesuffix(SUFFIX)}: it was started with other training options "
            f"({detail}). Resume with the options it was started with, or train a new --version"
        )
    path = folder / state["tensors"]
    if not path.is_file() or file_sha256(path) != state["tensors_sha256"]:
        raise ResumeError(
            f"{path} is missing or does not match {STATE_FILE} (damaged); start the run afresh without --resume"
        )
    tensors = load_file(str(path))
    model.load_state_dict(_prefixed(tensors, "model."), strict=True)
    optim_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    for index, values in state["optimizer_values"].items():
        optim_state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": optim_state, "param_groups": state["optimizer_param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    if state["scaler"] and scaler.is_enabled():  # empty when saved without float16 loss scaling
        scaler.load_state_dict(state["scaler"])
    best_state = _prefixed(tensors, "best.")
    return Progress(
        epoch=state["epoch"],
        elapsed_s=state["elapsed_s"],
        best=state["best"],
        best_epoch=state["best_epoch"],
        best_state=best_state or None,
        stop=state["stop"],
        epoch_seconds=state["epoch_seconds"],
        run_id=state["mlflow_run_id"],
    )


def remove_resume_state(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
