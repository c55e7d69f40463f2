"""Reading photo files for the ingestion path: never blocking on a FIFO, never following a symlink unasked,
never loading more than the size limit, and telling a photo still being written from a whole one."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from inspection.imageio import MAX_FILE_BYTES
from inspection.results import Rejection
from inspection.store.photos import MAGIC

# JPEG writers may pad the file after the end-of-image marker; this much trailing data is searched.
TAIL_BYTES = 64 * 1024
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk type and its fixed CRC
BMP_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)
TIFF_STRIPS = ((273, 279), (324, 325))  # (StripOffsets, StripByteCounts), (TileOffsets, TileByteCounts)


def signature(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def read_regular_file(path: str | Path, *, follow_symlinks: bool = False) -> tuple[bytes, os.stat_result]:
    """The bytes and ``fstat`` of a regular file, read without blocking on a FIFO and without loading a file
    over :data:`inspection.imageio.MAX_FILE_BYTES`.

    Raises:
        OSError: the file cannot be opened or read, is a symlink (unless ``follow_symlinks``), or is not a
            regular file (a FIFO, socket or device: opened non-blocking, checked, never read).
        Rejection: ``too_large``, before the bytes are read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_symlinks:
            raise OSError(errno.ELOOP, "it is a symlink, and symlinks are never followed", str(path)) from e
        raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(
                errno.EINVAL, "not a regular file (a FIFO, socket or device); it is never read", str(path)
            )
        if st.st_size > MAX_FILE_BYTES:
            raise Rejection(
                "too_large", f"{Path(path).name} is {st.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,}"
            )
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise Rejection("too_large", f"{Path(path).name} grew past the limit of {MAX_FILE_BYTES:,} bytes")
    return data, st


def read_photo(path: str | Path, *, follow_symlinks: bool = False) -> bytes:
    """The bytes of a photo file (see :func:`read_regular_file` for what it refuses)."""
    return read_regular_file(path, follow_symlinks=follow_symlinks)[0]


def why_incomplete(data: bytes) -> str | None:
    """Why these bytes look like a photo still being written, or None when they look whole (or are no known
    image format at all: then the decoder says what is wrong with them).

    Checks the JPEG end-of-image marker (``FF D9``, trailing zero padding allowed), the PNG ``IEND`` chunk and
    the sizes a BMP, WebP or TIFF header declares. Other formats are taken once they have settled.
    """
    if not data:
        return "the file is empty so far"
    for magic, ext in MAGIC:
        if len(data) < len(magic) and magic.startswith(data):
            return f"only {len(data)} bytes of a {ext.upper()} header have arrived"
    if (data.startswith(b"BM") and len(data) < 18) or (data.startswith(b"RIFF") and len(data) < 12):
        return "the BMP or WebP header has not fully arrived"
    tail = data[-TAIL_BYTES:]
    if data.startswith(b"\xff\xd8\xff"):
        if (
            _jpeg_scan_start(data) is None
        ):  # an EXIF thumbnail ends in FF D9 too: the main scan must have begun
            return "the JPEG's image data (after its start-of-scan marker FF DA) has not begun"
        return (
            None if tail.rstrip(b"\x00").endswith(b"\xff\xd9") else "no JPEG end-of-image marker (FF D9) yet"
        )
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None if PNG_END in tail else "no PNG end chunk (IEND) yet"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return _tiff_incomplete(data)
    declared = _declared_size(data)
    if declared and declared > len(data):
        return f"the header declares {declared:,} bytes and {len(data):,} have arrived"
    return None


def _jpeg_scan_start(data: bytes) -> int | None:
    """Where the main image's entropy-coded data begins: the segments after the start-of-image marker are walked
    by their lengths (so the JPEG thumbnail inside an EXIF block is stepped over) up to the start of scan."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None  # not a marker where one belongs: let the decoder judge the bytes
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xDA:
            return at
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            at += 2
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def _declared_size(data: bytes) -> int | None:
    """The file size a BMP or WebP header declares (None when the header does not look like one)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return int.from_bytes(data[4:8], "little") + 8
    if (
        data.startswith(b"BM")
        and data[6:10] == b"\x00" * 4
        and int.from_bytes(data[14:18], "little") in BMP_HEADER_SIZES  # a real BMP, not text starting "BM"
    ):
        return int.from_bytes(data[2:6], "little")
    return None


def _tiff_incomplete(data: bytes) -> str | None:
    """Whether the first TIFF directory and the strips (or tiles) it points to have all arrived."""
    order = "little" if data[:2] == b"II" else "big"

    def number(at: int, width: int) -> int:
        return int.from_bytes(data[at : at + width], order)  # type: ignore[arg-type]

    if len(data) < 8 or number(4, 4) + 2 > len(data):
        return "the TIFF directory has not arrived"
    ifd = number(4, 4)
    count = number(ifd, 2)
    if ifd + 2 + 12 * count + 4 > len(data):
        return "the TIFF directory has not fully arrived"
    values: dict[int, list[int]] = {}
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        tag, kind, n = number(entry, 2), number(entry + 2, 2), number(entry + 4, 4)
        if tag in (273, 279, 324, 325) and kind in (3, 4):
            width = 2 if kind == 3 else 4
            at = entry + 8 if n * width <= 4 else number(entry + 8, 4)
            if at + n * width > len(data):
                return "the TIFF strip table has not arrived"
            values[tag] = [number(at + k * width, width) for k in range(n)]
    ends = [o + s for a, b in TIFF_STRIPS for o, s in zip(values.get(a, []), values.get(b, []), strict=False)]
    if ends and max(ends) > len(data):
        return f"the TIFF holds {max(ends):,} bytes of image data and {len(data):,} have arrived"
    return None
