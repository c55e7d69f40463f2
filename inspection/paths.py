"""Where the package keeps its files: shipped models, reports, the records database."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
ENV_REPORTS = "INSPECTION_REPORTS"
ENV_PHOTOS = "INSPECTION_PHOTOS"


def data_dir() -> Path:
    """The working data directory: ``$INSPECTION_HOME`` or ``~/.inspection``."""
    return Path(os.environ.get("INSPECTION_HOME", Path.home() / ".inspection")).expanduser()


def reports_dir() -> Path:
    """Where evaluation reports are written and where the dashboard reads them: ``$INSPECTION_REPORTS``, else
    ``reports`` in the data directory."""
    env = os.environ.get(ENV_REPORTS)
    return Path(env).expanduser() if env else data_dir() / "reports"


def default_photos() -> str:
    """Where photos are kept unless ``--photos`` says: ``$INSPECTION_PHOTOS`` (a folder, ``db`` or an fsspec URL),
    else the ``photos`` folder in the data directory. The service, the watcher, the export and the dashboard
    all use it, so one setting points them at one store."""
    return os.environ.get(ENV_PHOTOS) or str(data_dir() / "photos")


def default_db_url() -> str:
    """SQLite in the data directory unless ``$INSPECTION_DB`` names another SQLAlchemy URL."""
    return os.environ.get("INSPECTION_DB", f"sqlite:///{data_dir() / 'records.db'}")


def shipped_dir(package_root: Path | None = None) -> Path:
    """Where an installed wheel keeps the live model bundle and the dashboard app (the build copies them there).

    A source checkout has no such folder: it keeps them at the top level, in ``models/`` and ``dashboards/``.
    """
    return (package_root or PACKAGE_ROOT) / "_shipped"


def default_models_dir() -> Path:
    """The default models root: ``$INSPECTION_MODELS``, else the shipped models (its ``LIVE`` bundle).

    The shipped models are the installed package's copy, or the checkout's ``models/`` beside the package.
    """
    env = os.environ.get("INSPECTION_MODELS")
    if env:
        return Path(env).expanduser()
    for candidate in (shipped_dir() / "models", PACKAGE_ROOT.parent / "models"):
        if (candidate / "LIVE").is_file() or (candidate / "noise").is_dir():
            return candidate
    return PACKAGE_ROOT.parent / "models"


def dashboard_app_candidates(package_root: Path | None = None) -> list[Path]:
    """Where the dashboard's ``app.py`` may be: the installed package's copy, then a checkout's ``dashboards/``."""
    root = package_root or PACKAGE_ROOT
    return [shipped_dir(root) / "dashboards" / "app.py", root.parent / "dashboards" / "app.py"]


def dashboard_app() -> Path | None:
    """The dashboard's ``app.py`` that ships with the package, or None when neither copy is there."""
    return next((path for path in dashboard_app_candidates() if path.is_file()), None)
