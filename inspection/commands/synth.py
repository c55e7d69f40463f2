"""``inspection synth --out DIR``: write the procedural synthetic casting dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Write synthetic impeller-like castings (with defects) in the train|test/<class>/ layout."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset root to create")
    parser.add_argument(
        "--n-train",
        type=int,
        default=1600,
        help="training photos to draw, about half defective (default: 1600)",
    )
    parser.add_argument(
        "--n-test", type=int, default=400, help="test photos to draw, about half defective (default: 400)"
    )
    parser.add_argument("--size", type=int, default=160, help="photo side in pixels")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; seed 0 gives the same bytes every time (default: 0)"
    )


def run(args: argparse.Namespace) -> int:
    from inspection.data import write_synthetic_dataset

    root = write_synthetic_dataset(
        args.out, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=args.seed
    )
    print(f"wrote {args.n_train} train and {args.n_test} test photos to {root}")
    return 0
