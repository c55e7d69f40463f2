"""``inspection bench``: end-to-end speed and memory against a reference-equivalent configuration."""

from __future__ import annotations

import argparse
from pathlib import Path

from inspection.commands._config import add_dataclass_flags, config_from_args
from inspection.configs import BenchConfig

HELP = "Time the pipeline (batch 1 and 32, per stage, peak memory) and a reference-equivalent configuration."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_flags(parser, BenchConfig)
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(BenchConfig, args)
    from inspection.bench import render, run_bench, save

    result = run_bench(cfg)
    print(render(result))
    if args.json:
        save(result, args.json)
    return 0
