"""``inspection bench``: end-to-end speed and memory against a reference-equivalent configuration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inspection.commands._backend import add_backend_flag, add_device_flag, backend_of, device_of
from inspection.commands._config import add_dataclass_flags, config_from_args
from inspection.configs import BenchConfig

HELP = (
    "Time the pipeline (batch 1 and 32, per stage, peak memory, each stage's share of its compute bound) and a "
    "reference-equivalent configuration; with --backend onnxruntime|openvino, also its parity with torch on the "
    "same photos; with --device cuda, on the GPU."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_flags(parser, BenchConfig)
    add_backend_flag(parser)
    add_device_flag(parser)
    parser.add_argument(
        "--png",
        action="store_true",
        help="hand the pipeline PNG files instead of decoded arrays, so that decoding is timed too",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(BenchConfig, args)
    from inspection.bench import render, run_bench, save
    from inspection.models.checkpoint import CheckpointError

    try:
        result = run_bench(cfg, backend_of(args), device=device_of(args), encode=args.png)
    except (CheckpointError, ValueError) as e:  # BundleError and BackendError too
        print(f"inspection bench: {e}", file=sys.stderr)
        return 2
    print(render(result))
    if args.json:
        save(result, args.json)
    return 0
