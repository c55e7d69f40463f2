"""Retraining: fine-tune a bundle's defect model on new data, with old data replayed, into a candidate bundle.

The candidate keeps its parent's noise model, denoiser, routing and verdict policy (with the threshold chosen
anew on validation), so ``inspection models promote`` compares like with like. Training starts from the
parent's recipe (architecture, input size, noise augmentation, learning rate ...); flags given on the command
line override it.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inspection.bundle import Bundle, BundleError, load_bundle, write_bundle
from inspection.configs import FINE_TUNE_INHERITED, TrainConfig
from inspection.models.checkpoint import read_meta

log = logging.getLogger(__name__)
# Defaults for a fine-tune where the parent's recipe says nothing: fewer epochs, a gentler learning rate.
FINE_TUNE = {"epochs": 6, "lr": 1e-3}
# With replayed data, half of each epoch comes from the new photos: a few dozen photos of a new kind are not
# drowned by thousands of old ones (the old half keeps the old kinds; CLAIO makes the case for replay).
FINE_TUNE_WITH_REPLAY = {"new_share": 0.5}


@dataclass(frozen=True)
class RetrainResult:
    bundle: Bundle
    seconds: float
    metrics: dict[str, Any]


def recipe(parent: Bundle, explicit: dict[str, Any]) -> dict[str, Any]:
    """Training settings: the parent's defect recipe, then fine-tune defaults, then the explicit flags."""
    meta = read_meta(parent.required_dir("defect"))
    inherited = {k: v for k, v in meta.get("train_config", {}).items() if k in FINE_TUNE_INHERITED}
    for name in ("noise_types", "replay"):
        if isinstance(inherited.get(name), list):
            inherited[name] = tuple(inherited[name])
    replay = FINE_TUNE_WITH_REPLAY if explicit.get("replay") else {}
    # the candidate keeps the parent's routing, so its defect model learns the parent's Gaussian gate
    gate = float(parent.routing.get("min_denoise_sigma", 0.0))
    return {**inherited, **FINE_TUNE, **replay, **explicit, **({"min_denoise_sigma": gate} if gate else {})}


def retrain(
    parent_path: str | Path, data: str, out: str | Path, explicit: dict[str, Any], command: list[str]
) -> RetrainResult:
    """Fine-tune ``parent_path``'s defect model on ``data`` (and ``explicit["replay"]``) into bundle ``out``.

    ``explicit`` holds the training flags given on the command line (field name -> value). A run killed
    part-way is continued by the same command with ``resume=True``: the work folder beside ``out`` keeps
    the training state until the bundle is written.
    """
    from inspection.distributed import cluster_from_env
    from inspection.train import train_defect

    if cluster_from_env().active:
        raise BundleError(
            "retrain runs as one process; to train on several GPUs or machines, run `inspection train defect "
            "--init-from BUNDLE --replay OLD` under torchrun, then `inspection models create`"
        )
    parent = load_bundle(parent_path)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BundleError(f"{out} already exists and is not empty; name a new folder for the candidate")
    work = out.with_name(f".{out.name}.training")
    settings = recipe(parent, explicit)
    denoiser = parent.checkpoint_dir("denoiser")
    through = str(denoiser) if denoiser and settings.get("noise_aug") else ""
    cfg = TrainConfig(
        **{
            **settings,
            "task": "defect",
            "data": data,
            "out": str(work),
            "version": out.name,
            "init_from": str(parent.required_dir("defect")),
            "denoiser": through,
            "min_denoise_sigma": settings.get("min_denoise_sigma", 0.0)
            if through
            else 0.0,  # no noise, no gate
        }
    )
    log.info("retraining %s's defect model on %s (replay: %s) into %s", parent.version, data, cfg.replay, out)
    result = train_defect(cfg)
    policy = replace(parent.policy, threshold=float(read_meta(result.path)["threshold"]))
    card = {
        "parent": parent.version,
        "commands": [shlex.join(command)],
        "data": {"new": _describe(data), "replay": [_describe(r) for r in cfg.replay]},
        "synthetic_only": bool(parent.card.get("synthetic_only"))
        and all(_describe(d).get("synthetic") for d in (data, *cfg.replay)),
        "train_seconds": round(result.seconds, 1),
    }
    checkpoints = {"noise": parent.required_dir("noise"), "defect": result.path}
    if denoiser is not None:
        checkpoints["denoiser"] = denoiser
    bundle = write_bundle(out, checkpoints, routing=parent.routing, policy=policy, card=card)
    shutil.rmtree(work, ignore_errors=True)
    _track(cfg, bundle, result.metrics)
    return RetrainResult(bundle, result.seconds, result.metrics)


def _describe(root: str) -> dict[str, Any]:
    """What a dataset root says of itself (``dataset.json`` from ``synth`` or ``dataset export``), plus its path."""
    path = Path(root)
    info: dict[str, Any] = {"root": str(path.resolve())}
    manifest = path / "dataset.json"
    if manifest.is_file():
        try:
            info.update(json.loads(manifest.read_text()))
        except (OSError, json.JSONDecodeError) as e:
            log.warning("%s cannot be read (%s); the card will not describe that data", manifest, e)
    return info


def _track(cfg: TrainConfig, bundle: Bundle, metrics: dict[str, Any]) -> None:
    """Log the candidate bundle to MLflow when a tracking URI is set (``--mlflow-uri`` or the environment)."""
    try:
        from inspection.tracking import log_bundle
    except ImportError:  # tracking not built into this version
        return
    uri = cfg.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri and uri != "off":
        log_bundle(uri, bundle.path, metrics)
