"""Read access to the records database for the dashboard.

The dashboard only reads. It never creates the database or migrates it: a missing SQLite file or a
database without the store's tables is reported as an empty state with the command that fills it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, Integer, cast, create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from inspection.store.models import Inspection

FILL_HINT = (
    "Score parts into it with `inspection score --db URL PHOTOS...` or run the station service "
    "`inspection serve --db URL`; for a demo, `python -m inspection.dashboard.bench --records 2000 --db URL --keep` "
    "fills it with synthetic records."
)


class DatabaseUnavailable(RuntimeError):
    """The records database cannot be read; the message says why and how to fix it."""


@dataclass(frozen=True)
class DbStatus:
    """What the dashboard found at a database URL."""

    ok: bool
    n_records: int
    message: str


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other backends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def open_engine(url: str) -> Engine:
    """An engine for reading ``url``; refuses a SQLite file that does not exist rather than creating it.

    Raises:
        DatabaseUnavailable: malformed URL, missing SQLite file, or missing driver.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise DatabaseUnavailable(
            f"cannot parse database URL {url!r}; expected e.g. 'sqlite:////path/records.db' or "
            "'postgresql+psycopg://user:pass@host/db'"
        ) from e
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path is not None and not path.is_file():
            raise DatabaseUnavailable(f"no records database at {path} yet. {FILL_HINT}")
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        return create_engine(parsed, **kwargs)
    except ModuleNotFoundError as e:
        raise DatabaseUnavailable(
            f"the database driver {e.name!r} is not installed; for PostgreSQL install 'inspection[postgres]'"
        ) from e


def db_status(engine: Engine) -> DbStatus:
    """Whether the store's ``inspections`` table is there and how many records it holds."""
    try:
        if not inspect(engine).has_table(Inspection.__tablename__):
            return DbStatus(
                False, 0, f"the database has no `{Inspection.__tablename__}` table yet. {FILL_HINT}"
            )
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(Inspection.__table__)).scalar_one()
    except SQLAlchemyError as e:
        return DbStatus(
            False, 0, f"cannot read the records database: {type(e).__name__}: {str(e).splitlines()[0]}"
        )
    if n == 0:
        return DbStatus(False, 0, f"the records database is empty. {FILL_HINT}")
    return DbStatus(True, int(n), f"{n:,} records")


def epoch_seconds(engine: Engine, column: Any) -> ColumnElement[Any]:
    """SQL for a timestamp column as Unix seconds, on SQLite and PostgreSQL."""
    if engine.dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(func.extract("epoch", column)), Integer)


def time_bucket(engine: Engine, column: Any, seconds: int) -> ColumnElement[Any]:
    """SQL that floors a timestamp column to ``seconds``-wide buckets, as Unix seconds."""
    return (epoch_seconds(engine, column) // seconds) * seconds
