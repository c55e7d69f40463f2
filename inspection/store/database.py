"""Engines and schema migrations for the records store.

SQLite files run in WAL mode with ``synchronous=FULL`` so that a committed record survives a killed process
(and a power cut), and with a busy timeout so that a service, a watcher and a batch job can share one file.
Migrations are Alembic revisions shipped inside the package; concurrent first starts are serialised with a
file lock (SQLite) or an advisory lock (PostgreSQL).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Alembic logs every plugin it sets up, at INFO, when it is imported; opening a store is not news.
logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from sqlalchemy import Engine, create_engine, event, text  # noqa: E402
from sqlalchemy.engine import URL, make_url  # noqa: E402
from sqlalchemy.exc import ArgumentError  # noqa: E402
from sqlalchemy.pool import StaticPool  # noqa: E402

from inspection.fileio import exclusive_lock  # noqa: E402

log = logging.getLogger(__name__)

STORE_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = STORE_DIR / "alembic.ini"
MIGRATIONS_DIR = STORE_DIR / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_MIGRATION_LOCK_ID = 0x1A5EC7  # any constant shared by all processes of this package


class StoreConfigError(ValueError):
    """The database URL cannot be used."""


def parse_url(url: str) -> URL:
    """Parse a SQLAlchemy URL, with a message that shows the expected form when it is malformed."""
    try:
        return make_url(url)
    except ArgumentError as e:
        raise StoreConfigError(
            f"cannot parse database URL {url!r}; expected a SQLAlchemy URL such as "
            "'sqlite:////var/lib/inspection/records.db' or 'postgresql+psycopg://user:pass@host/db'"
        ) from e


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL (also a ``file:`` URI with ``uri=true``), or None for other backends and
    in-memory databases."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = url.database
    if url.query.get("uri") == "true" and database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
        if database in ("", ":memory:"):
            return None
    return Path(database).expanduser()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine; SQLite files get their directory created and WAL mode switched on."""
    parsed = parse_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        if path is None:
            kwargs["poolclass"] = StaticPool  # one shared in-memory database
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs["pool_pre_ping"] = True
    try:
        return create_engine(parsed, **kwargs)
    except ModuleNotFoundError as e:
        raise StoreConfigError(
            f"the driver for {parsed.drivername!r} is not installed ({e.name}); for PostgreSQL install "
            "'inspection[postgres]' and use a URL starting with 'postgresql+psycopg://'"
        ) from e


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def alembic_config() -> Config:
    """The Alembic configuration of the package's migrations."""
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str | None:
    """The newest migration shipped with the package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    path = sqlite_path(engine.url)
    if path is None:
        yield
        return
    with exclusive_lock(path.with_name(path.name + ".migrate.lock")):
        yield


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate the database to ``revision`` (default: the newest) and return where it ended up.

    Safe to call from several processes at once: the first one migrates, the others wait and find nothing to do.
    """
    if revision == "head" and current_revision(engine) == head_revision():
        return head_revision()
    with _migration_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK_ID})
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    current = current_revision(engine)
    log.info("database %s is at revision %s", engine.url.render_as_string(hide_password=True), current)
    return current


def downgrade(engine: Engine, revision: str) -> str | None:
    """Migrate the database back to ``revision`` (``base`` empties it)."""
    with _migration_lock(engine), engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    return current_revision(engine)
