"""``inspection db upgrade|current|downgrade REV|check [--db URL]``: manage the records store's schema."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inspection.store import RecordStore

HELP = "Manage the records store: migrate (upgrade/downgrade), show the revision, check integrity."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("upgrade", "current", "downgrade", "check"), help="what to do")
    parser.add_argument(
        "revision", nargs="?", default="", help="target revision (upgrade: default head; downgrade: required)"
    )
    parser.add_argument(
        "--db", default="", help="SQLAlchemy URL of the store (default: SQLite in the data dir)"
    )


def run(args: argparse.Namespace) -> int:
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from inspection.paths import default_db_url
    from inspection.store import RecordStore, StoreConfigError

    missing = _missing_sqlite_file(args.db or default_db_url())
    if missing and args.action in ("current", "check"):  # reading must not create an empty database
        print(f"inspection db {args.action}: no database at {missing}", file=sys.stderr)
        return 2
    try:
        store = RecordStore(args.db or None, migrate=False)
    except StoreConfigError as e:
        print(f"inspection db: {e}", file=sys.stderr)
        return 2
    url = store.engine.url.render_as_string(hide_password=True)
    with store:
        try:
            return _act(args, store, url)
        except CommandError as e:  # alembic's: an unknown revision, most often
            print(f"inspection db {args.action}: {e}", file=sys.stderr)
            return 2
        except (
            SQLAlchemyError,
            OSError,
        ) as e:  # a server that cannot be reached, a file that cannot be opened
            print(f"inspection db {args.action}: cannot use {url}: {e}", file=sys.stderr)
            return 2


def _act(args: argparse.Namespace, store: RecordStore, url: str) -> int:
    """Do ``args.action`` on the open store; returns the exit code."""
    from inspection.store import current_revision, head_revision
    from inspection.store.database import downgrade, upgrade

    if args.action == "upgrade":
        print(f"{url}: now at revision {upgrade(store.engine, args.revision or 'head')}")
    elif args.action == "downgrade":
        if not args.revision:
            print(
                "inspection db downgrade: name the target revision (e.g. 'base' to drop everything)",
                file=sys.stderr,
            )
            return 2
        print(f"{url}: now at revision {downgrade(store.engine, args.revision)}")
    elif args.action == "current":
        current, head = current_revision(store.engine), head_revision()
        state = "up to date" if current == head else f"behind; run 'inspection db upgrade' to reach {head}"
        print(f"{url}: revision {current} ({state})")
    else:
        current = current_revision(store.engine)
        report = {
            "url": url,
            "revision": current,
            "head": head_revision(),
            "integrity": store.integrity_check(),
            "inspections": store.count_inspections() if current else 0,
        }
        print(json.dumps(report, indent=2))
        return 0 if report["integrity"] == "ok" and current == report["head"] else 1
    return 0


def _missing_sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names when it does not exist (None for other databases, in-memory SQLite, or a URL
    that does not parse: the store says what is wrong with that)."""
    from inspection.store.database import StoreConfigError, parse_url, sqlite_path

    try:
        path = sqlite_path(parse_url(url))
    except StoreConfigError:
        return None
    return path if path is not None and not path.exists() else None
