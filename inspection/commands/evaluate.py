"""``inspection evaluate --data DIR``: the standard noise protocol on a test split."""

from __future__ import annotations

import argparse

from inspection.commands._backend import add_backend_flag
from inspection.commands._config import add_dataclass_flags, config_from_args
from inspection.configs import EvalConfig

HELP = "Evaluate the pipeline on a dataset's test split under the standard noise protocol; writes a report."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # --backend as score, serve, watch and bench have it (its choices and help); a config file may set it too
    add_dataclass_flags(parser, EvalConfig, skip=("backend",))
    add_backend_flag(parser)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(EvalConfig, args, **({"backend": args.backend} if args.backend else {}))
    if not cfg.data and not cfg.labels:
        raise SystemExit(
            "--data DIR is required (a folder with test/<class_name>/ images), or --labels CSV (path,label,kind)"
        )
    from inspection.data import DatasetError
    from inspection.evaluate import accuracy_table, evaluate, kinds_table
    from inspection.models.checkpoint import CheckpointError
    from inspection.runtimes import BackendError

    try:
        report, folder = evaluate(cfg)
    except (DatasetError, FileNotFoundError, CheckpointError, BackendError) as e:
        raise SystemExit(f"inspection evaluate: {e}") from e
    print(accuracy_table(report))
    if report.get("kinds"):
        print("\n" + kinds_table(report))
    print(
        f"\nnoise classifier accuracy {report['noise_classifier']['accuracy']:.1%}; "
        f"report: {folder / 'report.md'}"
    )
    return 0
