"""The ``inspection`` command: one console script, one module per subcommand in ``inspection.commands``.

Each command module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``, and ``EXTRA`` when it
needs an optional part of the package (``inspection[serve]``, ``inspection[dashboard]``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence

import inspection
from inspection.commands._extras import missing_extra_message

COMMANDS = (
    "demo",
    "score",
    "train",
    "retrain",
    "evaluate",
    "bench",
    "router-check",
    "explain",
    "synth",
    "serve",
    "watch",
    "load",
    "db",
    "dataset",
    "models",
    "export",
    "dashboard",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``only`` alone.

    Each command module is imported to add its flags, and some import heavy packages at module level (the
    service's, the dashboard's, the database's); a command line that names its command loads that one alone, so
    ``inspection bench`` runs where only torch, NumPy, OpenCV and timm are installed (docs/proofs/gpu_bench.sh).
    """
    parser = argparse.ArgumentParser(
        prog="inspection", description="Noise-aware visual inspection of cast parts."
    )
    parser.add_argument("--version", action="version", version=f"inspection {inspection.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else (only,):
        module_name = f"inspection.commands.{name.replace('-', '_')}"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run, _extra=getattr(module, "EXTRA", None))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns the process exit code."""
    # OpenMP threads that spin between torch ops steal the core from OpenCV and NumPy work in between;
    # on 2 cores, sleeping instead cut batch-1 time in half (docs/results.md). Must be set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = list(sys.argv[1:] if argv is None else argv)
    named = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(named if named in COMMANDS else None).parse_args(argv)
    args._argv = argv  # the exact command, for records such as a bundle's card
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin on every start
    missing = args._extra and missing_extra_message(args.command, args._extra)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if not isinstance(e, setup_errors()):
            raise
        print(f"inspection {args.command}: {e}", file=sys.stderr)
        return 2


# Errors of the set-up, not of the code: a missing or mismatched bundle or checkpoint, a runtime without its export
# or package, a device torch cannot see, a store that cannot be opened. Where a command does not catch them itself
# they are one line and exit 2, never a traceback.
SETUP_ERRORS = (
    ("inspection.models.checkpoint", "CheckpointError"),  # BundleError and ResumeError too
    ("inspection.runtimes", "BackendError"),
    ("inspection.hardware", "DeviceError"),
    ("inspection.commands._stores", "StoreOpenError"),
    ("inspection.store.database", "StoreConfigError"),
)


def setup_errors() -> tuple[type[Exception], ...]:
    """The classes of :data:`SETUP_ERRORS` whose modules are loaded (an error of a module not loaded cannot have
    been raised), so a failing command imports nothing more on its way out."""
    classes = (getattr(sys.modules.get(module), name, None) for module, name in SETUP_ERRORS)
    return tuple(c for c in classes if isinstance(c, type))


if __name__ == "__main__":
    sys.exit(main())
