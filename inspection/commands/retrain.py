"""``inspection retrain --from BUNDLE --data NEW [--replay OLD] --out DIR``: a candidate bundle from new data."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from inspection.commands._config import add_dataclass_flags, given_values
from inspection.configs import FINE_TUNE_INHERITED, TrainConfig

HELP = (
    "Fine-tune a bundle's defect model on new labelled data (replaying old data so old kinds are not "
    "forgotten) and write a candidate bundle; promote it with 'inspection models promote'."
)
# Flags retrain sets itself, takes from the parent's weights (architecture, input size, resize mode), or that
# train only the noise model or the denoiser. The new data is read by its folders: an export has both.
FIXED = (
    *("task", "data", "out", "version", "init_from", "denoiser", "arch", "input_size", "resize", "labels"),
    *("noise_types", "min_denoise_sigma"),
    *("feature_channels", "camera_aug", "edge_weight", "defect_weight", "task_model", "task_weight"),
)
RECIPE_NOTE = (
    "Training flags not given take the parent's recipe (batch size, noise augmentation, costs ...), then "
    "--epochs 6 and --lr 0.001 for a fine-tune; the architecture, input size, resize mode and kinds come with "
    "the parent's weights. A killed run continues with the same command plus --resume."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="parent",
        required=True,
        help="the bundle to start from: a bundle folder, or a models root (its live bundle)",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="the new data: a train|test/<class>/ folder, e.g. from 'inspection dataset export'",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the candidate bundle folder to write; its name is the version",
    )
    add_dataclass_flags(parser, TrainConfig, skip=FIXED)
    parser.description = f"{HELP} {RECIPE_NOTE}"
    for action in parser._actions:
        if action.dest in ("epochs", "lr"):
            action.help = {
                "epochs": "epochs of the fine-tune (default: 6)",
                "lr": "peak learning rate (default: 0.001)",
            }[action.dest]
        elif action.dest == "resume":
            action.help = "continue a killed retrain of the same --out from its last completed epoch"
        elif action.dest in FINE_TUNE_INHERITED and action.help not in (None, argparse.SUPPRESS):
            action.help = re.sub(r" \(default: [^)]*\)$", "", action.help) + " (default: the parent's)"
        elif action.dest == "new_share":
            action.help = (
                "with --replay, the share of each epoch drawn from the new data, the rest from the replayed "
                "data (default: 0.5; 0 = in proportion to their numbers)"
            )
        elif action.dest == "replay":
            action.help = "dataset roots whose train split is mixed in, e.g. the data the parent learned from"


def run(args: argparse.Namespace) -> int:
    from inspection.bundle import BundleError
    from inspection.retrain import retrain

    explicit = {k: v for k, v in given_values(TrainConfig, args).items() if k not in FIXED}
    try:
        result = retrain(args.parent, args.data, args.out, explicit, ["inspection", *args._argv])
    except (BundleError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = {
        "bundle": str(result.bundle.path),
        "parent": result.bundle.parent,
        "seconds": round(result.seconds, 1),
    }
    print(json.dumps({**summary, **result.metrics}, indent=2, default=str))
    print(
        f"next: inspection models promote {result.bundle.path} --models ROOT --golden DATA", file=sys.stderr
    )
    return 0
