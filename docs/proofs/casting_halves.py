"""Proof: retraining on new data matches training on all of it at once (casting photos, defect model only).

1. Split the casting train split in two seeded, stratified halves A and B (hard links under WORK, never in the
   repository: the photos' licence forbids copying them in).
2. Train v1 on A alone; make it a bundle (the shipped router, v1's defect model).
3. ``inspection retrain --from v1 --data B --replay A``: fine-tune on the new half, replaying the old.
4. Train on A and B at once with v1's recipe.
5. Judge each defect model on the clean test split (651 photos, never used for any choice) at its own
   validated threshold, and report accuracy, balanced accuracy and the training time.

Usage: python docs/proofs/casting_halves.py [--data ../shared/data/casting] [--work /tmp/casting-halves]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from inspection.bundle import load_bundle, write_bundle
from inspection.data import list_split
from inspection.imageio import read_image
from inspection.models import load_checkpoint
from inspection.transforms import DefectTransform

RECIPE = [
    "--arch",
    "defect_cnn_small",
    "--input-size",
    "128",
    "--epochs",
    "8",
    "--lr",
    "0.003",
    "--seed",
    "0",
]


def split_halves(data: Path, work: Path, seed: int = 0) -> tuple[Path, Path]:
    """Hard-link each class's photos into two halves, seeded; returns the two dataset roots."""
    rng = np.random.default_rng(seed)
    roots = (work / "half_a", work / "half_b")
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)
    by_class: dict[str, list[Path]] = {}
    for s in list_split(data, "train"):
        by_class.setdefault(s.class_name, []).append(s.path)
    for name, paths in by_class.items():
        order = rng.permutation(len(paths))
        for k, idx in enumerate(order):
            dest = roots[k % 2] / "train" / name / paths[idx].name
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(paths[idx], dest)
    return roots


def timed(argv: list[str]) -> float:
    print("$", " ".join(argv), flush=True)
    t0 = time.monotonic()
    subprocess.run(argv, check=True)
    return time.monotonic() - t0


@torch.inference_mode()
def test_scores(checkpoint: Path, data: Path) -> dict[str, float]:
    """Accuracy and balanced accuracy of one defect checkpoint on the clean test split, at its threshold."""
    ck = load_checkpoint(checkpoint)
    transform = DefectTransform.from_meta(ck.meta)
    temperature = float(ck.meta.get("calibration", {}).get("temperature", 1.0))
    samples = list_split(data, "test")
    labels = np.array([s.label for s in samples])
    probs = []
    for i in range(0, len(samples), 64):
        grays = [read_image(s.path).gray for s in samples[i : i + 64]]
        probs.append(torch.sigmoid(ck.model(transform(grays))[:, 0] / temperature).numpy())
    pred = np.concatenate(probs) >= float(ck.meta["threshold"])
    recall, specificity = pred[labels == 1].mean(), (~pred[labels == 0]).mean()
    return {
        "accuracy": float((pred == labels).mean()),
        "balanced_accuracy": float((recall + specificity) / 2),
        "recall": float(recall),
        "specificity": float(specificity),
        "n_test": len(samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data/casting"), help="the casting photos"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/casting-halves"), help="scratch folder")
    parser.add_argument("--threads", default="2", help="torch threads for training")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    half_a, half_b = split_halves(args.data, work)
    cli = [sys.executable, "-m", "inspection.cli"]
    common = ["--quiet", "--threads", args.threads, "--noise-aug", "0"]
    runs = work / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    shutil.rmtree(work / "bundles", ignore_errors=True)
    seconds = {"v1_half_a": timed([*cli, "train", "defect", "--data", str(half_a), "--out", str(runs),
                                   "--version", "half-a", *RECIPE, *common])}  # fmt: skip
    shipped = load_bundle()
    parts = {"noise": shipped.path / "noise", "denoiser": shipped.path / "denoiser"}
    write_bundle(work / "bundles" / "half-a", {**parts, "defect": runs / "defect" / "half-a"})
    seconds["v2_retrained_on_b"] = timed([*cli, "retrain", "--from", str(work / "bundles" / "half-a"),
                                          "--data", str(half_b), "--replay", str(half_a),
                                          "--out", str(work / "bundles" / "retrained"), *common])  # fmt: skip
    seconds["all_at_once"] = timed([*cli, "train", "defect", "--data", str(args.data), "--out", str(runs),
                                    "--version", "all", *RECIPE, *common])  # fmt: skip
    checkpoints = {
        "v1_half_a": runs / "defect" / "half-a",
        "v2_retrained_on_b": work / "bundles" / "retrained" / "defect",
        "all_at_once": runs / "defect" / "all",
    }
    report = {name: {**test_scores(path, args.data), "train_seconds": round(seconds[name], 1)}
              for name, path in checkpoints.items()}  # fmt: skip
    report["gap_points"] = round(
        100 * (report["all_at_once"]["accuracy"] - report["v2_retrained_on_b"]["accuracy"]), 2
    )
    (work / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
