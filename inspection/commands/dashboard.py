"""``inspection dashboard``: start the engineers' Streamlit dashboard on the given reports and database."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from inspection import paths
from inspection.dashboard.config import ENV_DB, ENV_MODELS, ENV_REPORTS, redact_url

HELP = "start the engineers' dashboard (Streamlit) on the evaluation reports and the records database"
APP_ENV = "INSPECTION_DASHBOARD_APP"


def find_app() -> Path:
    """``dashboards/app.py`` beside the package (a checkout or an editable install), or ``$INSPECTION_DASHBOARD_APP``."""
    env = os.environ.get(APP_ENV)
    candidates = [Path(env)] if env else []
    candidates += [
        Path(__file__).resolve().parents[2] / "dashboards" / "app.py",
        Path.cwd() / "dashboards" / "app.py",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"cannot find the dashboard app (looked at {', '.join(str(p) for p in candidates)}); run from a checkout "
        f"of the repository, install it with `pip install -e .`, or set {APP_ENV} to dashboards/app.py"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reports",
        type=Path,
        default=None,
        help="evaluation reports folder (default: $INSPECTION_HOME/reports)",
    )
    parser.add_argument(
        "--db",
        default=None,
        help="records database URL (default: $INSPECTION_DB or SQLite in $INSPECTION_HOME)",
    )
    parser.add_argument(
        "--models", type=Path, default=None, help="models folder (default: the shipped models)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for the LAN)"
    )
    parser.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")


def build_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The ``streamlit run`` command line and the environment that carries the sources to the pages."""
    env = dict(os.environ)
    env[ENV_REPORTS] = str((args.reports or paths.reports_dir()).expanduser().resolve())
    env[ENV_DB] = args.db or paths.default_db_url()
    if args.models is not None:
        env[ENV_MODELS] = str(args.models.expanduser().resolve())
    app = find_app()
    # Without an installed package the pages import `inspection` from the checkout.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(app.parents[1]), env.get("PYTHONPATH", "")) if p)
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.address", args.host,
        "--server.port", str(args.port),
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none",
        "--client.toolbarMode", "viewer",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    return cmd, env


def run(args: argparse.Namespace) -> int:
    try:
        cmd, env = build_command(args)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"dashboard on http://{args.host}:{args.port}  (reports {env[ENV_REPORTS]}, database {redact_url(env[ENV_DB])})"
    )
    return subprocess.call(cmd, env=env)
