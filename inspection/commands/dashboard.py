"""``inspection dashboard``: start the engineers' Streamlit dashboard on the given reports and database.

The dashboard shows every station, part and photo, so it refuses to listen off loopback without a login
(``--auth-config`` or ``--auth-header``; ``--insecure-no-auth`` overrides). Streamlit runs as a child in its
own process group; a SIGTERM, SIGINT or SIGHUP to this command is passed on to that group, and the group is
stopped when this command ends, so a killed dashboard never leaves a server behind.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from inspection import paths
from inspection.dashboard.config import (
    ENV_AUTH_CONFIG,
    ENV_AUTH_HEADER,
    ENV_DB,
    ENV_MODELS,
    ENV_PHOTOS,
    ENV_REPORTS,
    AuthSettings,
    redact_url,
)

EXTRA = "dashboard"  # pip install 'inspection[dashboard]'
HELP = "start the engineers' dashboard (Streamlit) on the evaluation reports and the records database"
APP_ENV = "INSPECTION_DASHBOARD_APP"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE_S = 10.0


def find_app() -> Path:
    """``$INSPECTION_DASHBOARD_APP``, the installed package's copy of the app, a checkout's, or ``./dashboards``."""
    env = os.environ.get(APP_ENV)
    candidates = [Path(env)] if env else []
    candidates += paths.dashboard_app_candidates(Path(__file__).resolve().parents[1])
    candidates.append(Path.cwd() / "dashboards" / "app.py")
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"cannot find the dashboard app (looked at {', '.join(str(p) for p in candidates)}); install the "
        f"package (`pip install 'inspection[dashboard]'`, or `pip install -e .` in a checkout of the "
        f"repository) or set {APP_ENV} to dashboards/app.py"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reports",
        type=Path,
        default=None,
        help="evaluation reports folder (default: $INSPECTION_REPORTS, else $INSPECTION_HOME/reports)",
    )
    parser.add_argument(
        "--db",
        default=None,
        help="records database URL (default: $INSPECTION_DB or SQLite in $INSPECTION_HOME)",
    )
    parser.add_argument(
        "--models",
        type=Path,
        default=None,
        help="the models root for the denoised views (default: the shipped models)",
    )
    parser.add_argument(
        "--photos",
        default=None,
        help="photo store: a folder, 'db' (the records database) or an fsspec URL "
        "(default: $INSPECTION_PHOTOS or $INSPECTION_HOME/photos)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for the LAN, which needs a login)",
    )
    parser.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    parser.add_argument(
        "--auth-config",
        type=Path,
        default=None,
        help="login config file: users with bcrypt password hashes and the cookie key "
        f"(format in docs/dashboard.md; default: ${ENV_AUTH_CONFIG})",
    )
    parser.add_argument(
        "--auth-header",
        default=None,
        help="trust this header (e.g. X-Forwarded-User) set by a login proxy on this machine as the signed-in "
        f"user; needs a loopback --host (default: ${ENV_AUTH_HEADER})",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve a non-loopback --host without any login (everyone on the network sees every record)",
    )
    parser.add_argument(
        "--hash-password",
        action="store_true",
        help="read a password from the terminal (or one line of stdin), print its bcrypt hash for the "
        "login config file, and exit",
    )


def auth_settings(args: argparse.Namespace) -> AuthSettings:
    """The login settings from the flags, falling back to the environment the dashboard would inherit."""
    config_path = args.auth_config or os.environ.get(ENV_AUTH_CONFIG) or None
    header = args.auth_header or os.environ.get(ENV_AUTH_HEADER) or None
    return AuthSettings(
        config_path=Path(config_path).expanduser().resolve() if config_path else None,
        header=header.strip() if header else None,
    )


def photos_location(args: argparse.Namespace) -> str:
    """The photo store location, a local folder made absolute (the child may start elsewhere)."""
    location = args.photos or paths.default_photos()
    if location == "db" or "://" in location:
        return location
    return str(Path(location).expanduser().resolve())


def build_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The ``streamlit run`` command line and the environment that carries the sources to the pages."""
    env = dict(os.environ)
    env[ENV_REPORTS] = str((args.reports or paths.reports_dir()).expanduser().resolve())
    env[ENV_DB] = args.db or paths.default_db_url()
    env[ENV_PHOTOS] = photos_location(args)
    if args.models is not None:
        env[ENV_MODELS] = str(args.models.expanduser().resolve())
    settings = auth_settings(args)
    env.pop(ENV_AUTH_CONFIG, None)
    env.pop(ENV_AUTH_HEADER, None)
    if settings.config_path is not None:
        env[ENV_AUTH_CONFIG] = str(settings.config_path)
    if settings.header is not None:
        env[ENV_AUTH_HEADER] = settings.header
    app = find_app()
    checkout = app.parents[1]
    if (
        checkout / "inspection"
    ).is_dir():  # without an installed package the pages import it from the checkout
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(checkout), env.get("PYTHONPATH", "")) if p)
    cmd = [
        sys.executable, "-m", "inspection.dashboard.launch", "run", str(app),
        "--server.headless", "true",
        "--server.address", args.host,
        "--server.port", str(args.port),
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none",
        "--client.toolbarMode", "viewer",
        "--server.fileWatcherType", "none",
        # No full garbage collection after every script run: with torch and the pipeline loaded it took ~0.1 s
        # of each page's render, holding the GIL. Python's own collector still runs.
        "--runner.postScriptGC", "false",
    ]  # fmt: skip
    return cmd, env


def read_new_password() -> str:
    """A password typed twice at the terminal, or the first line of stdin when it is not a terminal."""
    from inspection.dashboard import auth  # bcrypt comes with the dashboard extra: not needed for --help

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise auth.AuthConfigError("the two passwords differ")
    return first


def print_password_hash() -> int:
    """``--hash-password``: print the bcrypt hash of a password read without it ever being on the command line."""
    from inspection.dashboard import auth

    try:
        hashed = auth.hash_password(read_new_password())
    except auth.AuthConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(hashed)
    print("paste it as the user's 'password' in the login config file (docs/dashboard.md)", file=sys.stderr)
    return 0


def check_access(args: argparse.Namespace) -> str | None:
    """Why the dashboard must not start as asked, or None; a login config file is read and checked here."""
    from inspection.dashboard import auth

    settings = auth_settings(args)
    problem = auth.access_problem(args.host, settings, insecure_no_auth=args.insecure_no_auth)
    if problem is None and settings.config_path is not None:
        try:
            config = auth.load_login_config(settings.config_path)
        except auth.AuthConfigError as e:
            return str(e)
        print(f"login required: {len(config.usernames)} user(s) in {settings.config_path}")
        if settings.config_path.stat().st_mode & 0o077:
            print(
                f"WARNING: {settings.config_path} is readable by other users; its cookie key lets anyone who "
                f"reads it forge a sign-in (chmod 600 {settings.config_path})",
                file=sys.stderr,
            )
    if problem is None and not settings.enabled and not auth.is_loopback(args.host):
        print(
            f"WARNING: --insecure-no-auth: the dashboard on {args.host} has no login; anyone who can reach it "
            "sees every station, part and photo",
            file=sys.stderr,
        )
    return problem


def _set_pdeathsig() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        # Without prctl the signal forwarding and stop_group still apply.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group; False when no process is left in it."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the child's process group: SIGTERM, then SIGKILL after a grace period."""
    if proc.poll() is None and _signal_group(proc.pid, signal.SIGTERM):
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    _signal_group(proc.pid, signal.SIGTERM)  # anything the server started and left behind


def launch(cmd: list[str], env: dict[str, str]) -> int:
    """Run the Streamlit server in its own process group until it exits; signals to us are passed on to it."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_set_pdeathsig)
    previous: dict[int, object] = {}

    def forward(signum: int, frame: FrameType | None) -> None:
        _signal_group(proc.pid, signum)

    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        stop_group(proc)
    return 128 - code if code < 0 else code


def run(args: argparse.Namespace) -> int:
    if args.hash_password:
        return print_password_hash()
    problem = check_access(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        cmd, env = build_command(args)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"dashboard on http://{args.host}:{args.port}  (reports {env[ENV_REPORTS]}, "
        f"database {redact_url(env[ENV_DB])}, photos {redact_url(env[ENV_PHOTOS])})"
    )
    return launch(cmd, env)
