"""``inspection demo``: the main job on the built-in default, with no data or download needed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from inspection.configs import EvalConfig
from inspection.paths import data_dir

HELP = "Generate synthetic castings, evaluate the shipped models on them and print the accuracy table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-test", type=int, default=120, help="synthetic test photos (default: 120)")
    parser.add_argument("--size", type=int, default=160, help="synthetic photo side in pixels (default: 160)")
    parser.add_argument(
        "--seed", type=int, default=1234, help="seed of the synthetic test set (default: 1234)"
    )
    parser.add_argument(
        "--data", type=Path, help="where to write the synthetic set (default: $INSPECTION_HOME/synthetic)"
    )
    parser.add_argument("--models", default="", help="the models root to run (default: the shipped models)")
    parser.add_argument(
        "--reports",
        default="",
        help="where the report is written (default: $INSPECTION_REPORTS, else $INSPECTION_HOME/reports)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from inspection.data import write_synthetic_dataset
    from inspection.evaluate import accuracy_table, evaluate

    t0 = time.monotonic()
    root = args.data or data_dir() / "synthetic" / f"seed{args.seed}-n{args.n_test}-s{args.size}"
    if not (root / "test").is_dir():
        print(f"generating {args.n_test} synthetic castings in {root} ...")
        write_synthetic_dataset(root, n_train=0, n_test=args.n_test, size=args.size, seed=args.seed)
    cfg = EvalConfig(
        data=str(root),
        models=args.models,
        reports=args.reports,
        name="synthetic",
        methods=("median", "nlmeans", "notch", "autoencoder"),
        quiet=args.quiet,
    )
    report, folder = evaluate(cfg)
    nc = report["noise_classifier"]
    print()
    print(
        f"Defect accuracy on {report['dataset']['n_images']} synthetic castings, each under every noise type:"
    )
    print(accuracy_table(report))
    print(
        f"\nNoise classifier accuracy: {nc['accuracy']:.1%}; routed denoising PSNR (dB): "
        + ", ".join(f"{k} {v:.1f}" for k, v in report["denoise_psnr"].items())
    )
    print(f"Defect erasure: {report['defect_erasure']:.1%}")
    print(f"Report: {folder / 'report.md'} (the dashboard reads {folder.parent})")
    print(f"Done in {time.monotonic() - t0:.0f} s.")
    return 0
