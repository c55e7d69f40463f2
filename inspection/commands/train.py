"""``inspection train noise|denoiser|defect --data DIR`` (or ``--labels CSV``).

Photos may be of any size. Defect kinds come from ``def_<kind>/`` folders, ``--kinds-only`` or the labels CSV;
``--miss-cost`` and ``--false-reject-cost`` set the threshold; ``--init-from`` and ``--replay`` fine-tune
(see ``inspection.train`` and docs/retraining.md).
"""

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
    if not cfg.data and not cfg.labels:
        raise SystemExit(
            "--data DIR is required (a folder with train/<class_name>/ images), or --labels CSV (path,label,kind)"
        )
    from inspection.train import TRAINERS

    try:
        result = TRAINERS[cfg.task](cfg)
    except (
        ValueError,
        FileNotFoundError,
    ) as e:  # bad data, options or checkpoint: the message says what to do
        raise SystemExit(f"inspection train {cfg.task}: {e}") from e
    print(
        json.dumps(
            {"checkpoint": str(result.path), "seconds": round(result.seconds, 1), **result.metrics}, indent=2
        )
    )
    return 0
