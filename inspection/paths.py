"""Where the package keeps its files: shipped models, reports, the records database."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


def data_dir() -> Path:
    """The working data directory: ``$INSPECTION_HOME`` or ``~/.inspection``."""
    return Path(os.environ.get("INSPECTION_HOME", Path.home() / ".inspection")).expanduser()


def reports_dir() -> Path:
    """Where evaluation reports are written and where the dashboard reads them."""
    return data_dir() / "reports"


def default_db_url() -> str:
    """SQLite in the data directory unless ``$INSPECTION_DB`` names another SQLAlchemy URL."""
    return os.environ.get("INSPECTION_DB", f"sqlite:///{data_dir() / 'records.db'}")


def default_models_dir() -> Path:
    """The default models root: ``$INSPECTION_MODELS`` or the repository's ``models/`` (its ``LIVE`` bundle)."""
    env = os.environ.get("INSPECTION_MODELS")
    if env:
        return Path(env).expanduser()
    for candidate in (PACKAGE_ROOT / "default_models", PACKAGE_ROOT.parent / "models"):
        if (candidate / "LIVE").is_file() or (candidate / "noise").is_dir():
            return candidate
    return PACKAGE_ROOT.parent / "models"
