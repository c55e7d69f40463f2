"""Where the dashboard reads from: reports folder, records database, model checkpoints.

``inspection dashboard`` passes its flags to the Streamlit process through these environment
variables, so the page scripts (and AppTest) resolve the same sources the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from inspection import paths

ENV_REPORTS = "INSPECTION_REPORTS"
ENV_DB = "INSPECTION_DB"
ENV_MODELS = "INSPECTION_MODELS"


@dataclass(frozen=True)
class Sources:
    """The three sources a dashboard session reads."""

    reports_dir: Path
    db_url: str
    models_dir: Path


def sources() -> Sources:
    """Resolve the sources from the environment, falling back to :mod:`inspection.paths` defaults."""
    reports = os.environ.get(ENV_REPORTS)
    return Sources(
        reports_dir=Path(reports).expanduser() if reports else paths.reports_dir(),
        db_url=paths.default_db_url(),
        models_dir=paths.default_models_dir(),
    )


def redact_url(url: str) -> str:
    """Hide the password in a database URL before it is shown on screen."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
