"""``inspection train noise|denoiser|defect --data DIR``."""

from __future__ import annotations

import argparse
import json

from inspection.commands._config import add_dataclass_flags, config_from_args
from inspection.configs import TrainConfig

HELP = "Train a model (noise classifier, denoiser or defect classifier) on a train|test/<class>/ folder."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=("defect", "denoiser", "noise"), help="which model to train")
    add_dataclass_flags(parser, TrainConfig, skip=("task",))


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(TrainConfig, args, task=args.task)
    if not cfg.data:
        raise SystemExit("--data DIR is required (a folder with train/<class_name>/ images)")
    from inspection.train import TRAINERS

    result = TRAINERS[cfg.task](cfg)
    print(
        json.dumps(
            {"checkpoint": str(result.path), "seconds": round(result.seconds, 1), **result.metrics}, indent=2
        )
    )
    return 0
