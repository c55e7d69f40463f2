"""Opening the records store and the photo store for a command, with one-line errors an operator can act on.

``serve``, ``watch`` and ``score`` use it alike: a bad URL, a server that is down, a read-only file or a full
photo store is one line on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspection.store import RecordStore
    from inspection.store.photos import PhotoStore


class StoreOpenError(Exception):
    """The records store or the photo store cannot be opened or written; the message says why, in one line."""


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else error.__class__.__name__


def _safe_url(url: str | None) -> str:
    """The URL as it may be printed: no password."""
    from sqlalchemy.engine import make_url

    if not url:
        return "(the default SQLite file in the data dir)"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is printed by nobody
        return "(the given URL)"


def open_stores(db_url: str | None, photos_location: str | None) -> tuple[RecordStore, PhotoStore | None]:
    """Open the records store (migrated) and, when ``photos_location`` is given, the photo store, and check that
    both can be written.

    Raises:
        StoreOpenError: with a one-line message an operator can act on (bad URL, server down, read-only file).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from inspection.store import RecordStore, StoreConfigError
    from inspection.store.photos import open_photo_store

    try:
        store = RecordStore(db_url or None)
    except StoreConfigError as e:
        raise StoreOpenError(str(e)) from e
    except (SQLAlchemyError, OSError) as e:
        raise StoreOpenError(
            f"cannot open the records store {_safe_url(db_url)}: {_first_line(e)}; check the URL, that the "
            "database server is up, and that the file and its folder are writable"
        ) from e
    if not photos_location:
        return store, None
    try:
        photos = open_photo_store(photos_location, engine=store.engine)
        photos.check_writable()
    except (OSError, ValueError) as e:
        store.close()
        raise StoreOpenError(
            f"cannot write to the photo store {photos_location}: {_first_line(e)}; check that it exists, is "
            "writable and has free space, or pass another --photos"
        ) from e
    return store, photos


def register_models(store: RecordStore, pipeline: Any) -> None:
    """Record the pipeline's model versions; this first write also proves the store is writable.

    Raises:
        StoreOpenError: the database refused the write (read-only file, no permission, server gone).
    """
    from sqlalchemy.exc import SQLAlchemyError

    try:
        store.register_models(pipeline)
    except SQLAlchemyError as e:
        raise StoreOpenError(
            f"the records store {store!r} cannot be written: {_first_line(e)}; check that the database file "
            "and its folder are writable (or the database user may insert)"
        ) from e
