"""Where uploaded photos are kept, so that an audit can trace any verdict back to the exact bytes judged.

Photos are content-addressed: ``<root>/<sha[:2]>/<sha>.<ext>``, the extension taken from the bytes' magic
number (never from the uploaded file name). Writes go to a temp file, are fsynced and renamed into place, so a
crash leaves either the whole photo or none of it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
    (b"BM", "bmp"),
    (b"GIF8", "gif"),
)


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


def keep_photo(data: bytes, root: str | Path, sha256: str | None = None) -> Path:
    """Store ``data`` under ``root`` by its hash and return the path; an identical photo is written once."""
    sha256 = sha256 or sha256_hex(data)
    target = Path(root) / sha256[:2] / f"{sha256}.{sniff_extension(data)}"
    if target.exists() and target.stat().st_size == len(data):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
