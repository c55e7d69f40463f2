"""Checkpoints: one folder per model version with ``weights.safetensors`` and ``meta.json``.

Loading never unpickles: weights come from safetensors, metadata from JSON, and the model is rebuilt
through the registry and loaded with ``strict=True``. The weights' SHA-256 is stored in the metadata,
so a corrupted, altered or swapped weights file is refused (this catches mistakes and damage; it is not a
signature against someone who can rewrite meta.json too).
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

import inspection
from inspection.models.registry import create_model, list_models, model_task

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "meta.json"
REQUIRED_META: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "task": str,
    "architecture": str,
    "model_kwargs": dict,
    "input_size": (int, type(None)),
    "normalisation": dict,
    "class_names": list,
    "threshold": (float, int, type(None)),
    "training_data": dict,
    "metrics": dict,
    "versions": dict,
    "weights_sha256": str,
}


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be trusted or read."""


@dataclass
class Checkpoint:
    """A loaded model with the facts that travel with its weights."""

    model: nn.Module
    meta: dict[str, Any]
    path: Path

    @property
    def version(self) -> str:
        return str(self.meta.get("version", self.path.name))

    @property
    def input_size(self) -> int | None:
        return self.meta["input_size"]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    import timm

    return {
        "inspection": inspection.__version__,
        "torch": torch.__version__.split("+")[0],
        "timm": timm.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(
    model: nn.Module,
    path: str | Path,
    *,
    architecture: str,
    model_kwargs: dict[str, Any] | None = None,
    input_size: int | None,
    class_names: list[str],
    normalisation: dict[str, Any] | None = None,
    threshold: float | None = None,
    training_data: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to a new version folder ``path`` (created; must not hold a checkpoint already)."""
    path = Path(path)
    if (path / META_FILE).exists():
        raise CheckpointError(f"{path} already holds a checkpoint; write each model version to a new folder")
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path / WEIGHTS_FILE))
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "version": path.name,
        "task": model_task(architecture),
        "architecture": architecture,
        "model_kwargs": model_kwargs or {},
        "input_size": input_size,
        "normalisation": normalisation or {"mean": 0.0, "std": 1.0},
        "class_names": list(class_names),
        "threshold": threshold,
        "training_data": training_data or {},
        "metrics": metrics or {},
        "versions": package_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "weights_sha256": file_sha256(path / WEIGHTS_FILE),
        **(extra or {}),
    }
    (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """Read and validate ``meta.json`` without touching the weights."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"{path} is not a checkpoint folder: {META_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{meta_path} is not valid JSON: {e}") from e
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unknown checkpoint format_version {meta.get('format_version')!r}; this inspection "
            f"{inspection.__version__} reads format {FORMAT_VERSION}. Re-export the model or upgrade inspection."
        )
    for key, kind in REQUIRED_META.items():
        if key not in meta:
            raise CheckpointError(f"{meta_path} lacks required key {key!r}")
        if not isinstance(meta[key], kind):
            raise CheckpointError(f"{meta_path}: {key!r} has type {type(meta[key]).__name__}")
    if meta["architecture"] not in list_models():
        raise CheckpointError(f"{path}: architecture {meta['architecture']!r} is not a registered model")
    return meta


def load_checkpoint(path: str | Path, *, map_location: str = "cpu") -> Checkpoint:
    """Rebuild the model from ``meta.json`` and load its weights strictly; refuses tampered files."""
    path = Path(path)
    meta = read_meta(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{path}: {WEIGHTS_FILE} is missing")
    if file_sha256(weights) != meta["weights_sha256"]:
        raise CheckpointError(
            f"{weights} does not match the SHA-256 in {META_FILE}: the weights were altered"
        )
    model = create_model(meta["architecture"], **meta["model_kwargs"])
    try:
        state = load_file(str(weights), device=map_location)
        model.load_state_dict(state, strict=True)
    except Exception as e:  # safetensors header errors and strict key/shape mismatches
        raise CheckpointError(f"{weights} does not fit {meta['architecture']}: {e}") from e
    model.eval()
    return Checkpoint(model=model, meta=meta, path=path)
