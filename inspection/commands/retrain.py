"""``inspection retrain --from BUNDLE --data NEW [--replay OLD] --out DIR``: a candidate bundle from new data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from inspection.commands._config import add_dataclass_flags, given_values
from inspection.configs import TrainConfig

HELP = (
    "Fine-tune a bundle's defect model on new labelled data (replaying old data so old kinds are not "
    "forgotten) and write a candidate bundle; promote it with 'inspection models promote'."
)
FIXED = ("task", "data", "out", "version", "init_from", "denoiser")


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
