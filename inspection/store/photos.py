"""Where part photos are kept, so that an audit can trace any verdict back to the exact bytes judged.

Photos are content-addressed: the key is ``<sha[:2]>/<sha>.<ext>``, the extension taken from the bytes' magic
number (never from an uploaded file name). Records keep this key, relative to the store, never a path, so any
replica of the service and the dashboard find the same photo wherever the store is mounted.

Three stores share one interface (:class:`PhotoStore`), chosen by :func:`open_photo_store`:

* a local folder (the default, ``<data dir>/photos``): written to a temp file, fsynced and renamed into place,
  so a crash leaves either the whole photo or none of it;
* ``db``: the records database itself (a ``photos`` table), for several replicas sharing one PostgreSQL;
* any other fsspec URL (``s3://bucket/photos`` through the optional ``s3fs``, ``memory://``, a network share),
  also for several replicas.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from inspection.fileio import write_bytes_atomic

if TYPE_CHECKING:
    from sqlalchemy import Engine

MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
    (b"BM", "bmp"),
    (b"GIF8", "gif"),
)
KEY_RE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.[a-z]{3,4}$")
DATABASE_STORE = "db"


class PhotoNotFound(KeyError):
    """No photo is stored under this key."""


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of the photo bytes, as the store records it."""
    return hashlib.sha256(data).hexdigest()


def sniff_extension(data: bytes) -> str:
    """A file extension from the content's magic number; ``bin`` when it is not a known image format."""
    for magic, ext in MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "bin"


def photo_key(data: bytes, sha256: str | None = None) -> str:
    """The key a photo is kept under: ``<sha[:2]>/<sha>.<ext>``."""
    sha256 = sha256 or sha256_hex(data)
    return f"{sha256[:2]}/{sha256}.{sniff_extension(data)}"


def check_key(key: str) -> str:
    """``key`` if it is a well-formed photo key; a key is never a path that could leave the store."""
    if not KEY_RE.fullmatch(key):
        raise PhotoNotFound(f"{key[:100]!r} is not a photo key (expected '<sha[:2]>/<sha256>.<ext>')")
    return key


class PhotoStore(Protocol):
    """Keeps photo bytes under content-derived keys."""

    url: str

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Keep ``data`` and return its key; an identical photo is written once. Raises ``OSError`` when full."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes kept under ``key``; raises :class:`PhotoNotFound` or ``OSError``."""
        ...

    def size(self, key: str) -> int:
        """The size in bytes of the photo under ``key`` (read before the photo, to refuse huge ones)."""
        ...

    def check_writable(self) -> None:
        """Raise ``OSError`` saying why when a photo cannot be written now (disk full, read-only, gone).

        It writes, so it is for start-up checks, not for a probe anyone may call.
        """
        ...

    def free_bytes(self) -> int | None:
        """Room left for photos, without writing anything; None when the store cannot tell."""
        ...


class LocalPhotoStore:
    """Photos in a folder on this machine."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.url = str(self.root)

    def __repr__(self) -> str:
        return f"LocalPhotoStore({self.url!r})"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, data: bytes, sha256: str | None = None) -> str:
        key = photo_key(data, sha256)
        target = self.root / key
        if target.exists() and target.stat().st_size == len(data):
            return key
        _write_atomic(target, data)
        return key

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError as e:
            raise PhotoNotFound(f"no photo {key} in {self.root}") from e

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError as e:
            raise PhotoNotFound(f"no photo {key} in {self.root}") from e

    def check_writable(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.root / ".ready", b"1")

    def free_bytes(self) -> int | None:
        folder = self.root  # not made yet: the first photo makes it, so ask of the nearest folder that exists
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            return shutil.disk_usage(folder).free if os.access(folder, os.W_OK) else 0
        except OSError:
            return 0


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(target, data)


class DatabasePhotoStore:
    """Photos in the records database's ``photos`` table: one store for every replica, with no shared disk."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = DATABASE_STORE

    def __repr__(self) -> str:
        return "DatabasePhotoStore()"

    def put(self, data: bytes, sha256: str | None = None) -> str:
        from sqlalchemy import insert, select
        from sqlalchemy.exc import IntegrityError, SQLAlchemyError

        from inspection.store.models import Photo

        key = photo_key(data, sha256)
        try:
            with self.engine.begin() as conn:
                if conn.scalar(select(Photo.key).where(Photo.key == key)) is None:
                    conn.execute(insert(Photo).values(key=key, data=data, size=len(data)))
        except IntegrityError:
            pass  # another replica kept the same photo first
        except SQLAlchemyError as e:
            raise OSError(f"the photo table cannot be written: {getattr(e, 'orig', None) or e}") from e
        return key

    def _select(self, column: Any, key: str) -> Any:
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError

        from inspection.store.models import Photo

        try:
            with self.engine.connect() as conn:
                value = conn.scalar(select(column).where(Photo.key == check_key(key)))
        except SQLAlchemyError as e:
            raise OSError(f"the photo table cannot be read: {getattr(e, 'orig', None) or e}") from e
        if value is None:
            raise PhotoNotFound(f"no photo {key} in the database")
        return value

    def get(self, key: str) -> bytes:
        from inspection.store.models import Photo

        return bytes(self._select(Photo.data, key))

    def size(self, key: str) -> int:
        from inspection.store.models import Photo

        return int(self._select(Photo.size, key))

    def check_writable(self) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1 FROM photos WHERE 0 = 1"))
        except SQLAlchemyError as e:
            raise OSError(f"the photo table cannot be reached: {e.__class__.__name__}") from e

    def free_bytes(self) -> int | None:
        return None  # the database's own health is checked as the records store's


class FsspecPhotoStore:
    """Photos under any fsspec URL (an S3-compatible bucket with ``s3fs``, a network share, ``memory://``)."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        try:
            import fsspec
        except ImportError as e:
            raise ValueError(
                f"photo store {url!r} needs fsspec; install 'inspection[photos-s3]' (or fsspec and its backend)"
            ) from e
        self.fs, self.base = fsspec.core.url_to_fs(url, **storage_options)
        self.base = self.base.rstrip("/")
        self.url = _without_credentials(url)  # shown in logs and errors

    def __repr__(self) -> str:
        return f"FsspecPhotoStore({self.url!r})"

    def put(self, data: bytes, sha256: str | None = None) -> str:
        key = photo_key(data, sha256)
        path = f"{self.base}/{key}"
        if not self.fs.exists(path):
            self.fs.pipe_file(path, data)
        return key

    def get(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(f"{self.base}/{check_key(key)}"))
        except FileNotFoundError as e:
            raise PhotoNotFound(f"no photo {key} in {self.url}") from e

    def size(self, key: str) -> int:
        try:
            return int(self.fs.size(f"{self.base}/{check_key(key)}"))
        except FileNotFoundError as e:
            raise PhotoNotFound(f"no photo {key} in {self.url}") from e

    def check_writable(self) -> None:
        self.fs.pipe_file(f"{self.base}/.ready", b"1")

    def free_bytes(self) -> int | None:
        return None  # object stores do not say; a failed write is remembered instead


def _without_credentials(url: str) -> str:
    """``scheme://user:secret@host/path?key=...`` as ``scheme://***@host/path``: logs never carry credentials."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest = rest.split("?", 1)[0]
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest}"


def open_photo_store(location: str | Path, *, engine: Engine | None = None) -> PhotoStore:
    """The photo store at ``location``: a folder path, ``file://...``, ``db`` (needs the records ``engine``) or
    any other fsspec URL."""
    text = str(location)
    if text == DATABASE_STORE:
        if engine is None:
            raise ValueError(
                "the 'db' photo store keeps photos in the records database; open the store first"
            )
        return DatabasePhotoStore(engine)
    if text.startswith("file://"):
        return LocalPhotoStore(text[len("file://") :])
    if "://" in text:
        return FsspecPhotoStore(text)
    return LocalPhotoStore(text)
