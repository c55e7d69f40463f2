"""Where the dashboard reads from and who may see it: sources, photo store and login settings.

``inspection dashboard`` passes its flags to the Streamlit process through these environment
variables, so the page scripts (and AppTest) resolve the same sources the same way.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from inspection import paths
from inspection.paths import ENV_PHOTOS as ENV_PHOTOS  # the sources' variables, shared with every command
from inspection.paths import ENV_REPORTS as ENV_REPORTS

ENV_DB = "INSPECTION_DB"
ENV_MODELS = "INSPECTION_MODELS"
ENV_AUTH_CONFIG = "INSPECTION_DASHBOARD_AUTH_CONFIG"
ENV_AUTH_HEADER = "INSPECTION_DASHBOARD_AUTH_HEADER"

# Query parameters whose value is a secret: a name containing any of these words (any case) is masked.
SECRET_PARAM_WORDS = ("password", "pass", "pwd", "secret", "token", "key")
MASK = "***"


@dataclass(frozen=True)
class Sources:
    """The sources a dashboard session reads.

    ``photos`` is the photo store's location, as :func:`inspection.store.photos.open_photo_store` takes it:
    a folder, ``db`` (the records database's ``photos`` table) or an fsspec URL.
    """

    reports_dir: Path
    db_url: str
    models_dir: Path
    photos: str


@dataclass(frozen=True)
class AuthSettings:
    """How a session proves who it is: a login config file, a trusted proxy header, or nothing (loopback)."""

    config_path: Path | None = None
    header: str | None = None

    @property
    def enabled(self) -> bool:
        return self.config_path is not None or self.header is not None


def sources() -> Sources:
    """Resolve the sources from the environment, falling back to :mod:`inspection.paths` defaults."""
    return Sources(
        reports_dir=paths.reports_dir(),
        db_url=paths.default_db_url(),
        models_dir=paths.default_models_dir(),
        photos=paths.default_photos(),
    )


def auth_settings() -> AuthSettings:
    """The login settings from ``$INSPECTION_DASHBOARD_AUTH_CONFIG`` and ``$INSPECTION_DASHBOARD_AUTH_HEADER``."""
    path = os.environ.get(ENV_AUTH_CONFIG, "").strip()
    header = os.environ.get(ENV_AUTH_HEADER, "").strip()
    return AuthSettings(config_path=Path(path).expanduser() if path else None, header=header or None)


def _is_secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_PARAM_WORDS)


def redact_url(url: str) -> str:
    """A database (or photo store) URL safe to show on screen and in logs.

    The password in ``user:pass@`` and the value of every query parameter whose name contains password,
    pass, pwd, secret, token or key (any case) become ``***``. A URL that cannot be parsed is not shown at
    all: only its scheme is kept. A plain path (no ``://``) is returned as is.
    """
    if "://" not in url:
        return url
    scheme = url.partition("://")[0]
    scheme = scheme if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else "?"
    try:
        parsed = make_url(url)
        query = {k: (MASK if _is_secret_param(k) else v) for k, v in parsed.query.items()}
        shown = parsed.set(query=query).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return f"{scheme}://{MASK} (unparseable URL, hidden)"
    # render_as_string percent-encodes the mask inside the query string; show it as typed.
    return re.sub(r"%2A%2A%2A", MASK, shown)
