"""Writing a file so that a reader sees the old content or the new, never half of it; an exclusive lock file."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """:func:`write_bytes_atomic` for text (UTF-8)."""
    write_bytes_atomic(path, text.encode())


@contextmanager
def exclusive_lock(path: str | Path, waiting: str = "") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if need be) for the ``with`` block, across processes.

    Another holder makes this wait; ``waiting`` is then logged once, so a blocked command says why it waits.
    The operating system drops the lock if the holder dies, so a crash leaves nothing to clean up.
    """
    path = Path(path)
    with open(path, "a+b") as fh:
        if os.name == "nt":  # pragma: no cover - Windows station PCs
            import msvcrt

            msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if waiting:
                    log.warning("%s (%s is held)", waiting, path)
                fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if os.name == "nt":  # pragma: no cover
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                fcntl.flock(fh, fcntl.LOCK_UN)
