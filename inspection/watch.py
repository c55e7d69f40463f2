"""The watch folder: score photos as they land in a directory, then file each under ``processed/`` or ``rejected/``.

Exactly once, across crashes: a photo's record is committed *before* the file is moved, and before scoring a
file the watcher looks for a stored record of the same station, part and photo bytes. So a crash between the
commit and the move is finished on restart by moving the file to where its record says it is, without scoring it
again; a crash before the commit scores it once on restart. The part id is the file name without its extension.

Writers should drop a photo under a temp name (``.name``, ``*.part``, ``*.tmp``) and rename it when complete;
files are also only picked up once they have not changed for ``settle_s`` seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from inspection.imageio import MAX_FILE_BYTES
from inspection.results import InspectionResult, Rejection
from inspection.service import PART_ID_RE
from inspection.store import STATUS_REJECTED, RecordStore
from inspection.store.database import sqlite_path
from inspection.store.photos import sha256_hex

log = logging.getLogger(__name__)

PROCESSED = "processed"
REJECTED = "rejected"
IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".reason.txt")


class BatchPipeline(Protocol):
    def inspect_batch(self, images: Sequence[Any]) -> list[InspectionResult | Rejection]: ...


@dataclass(frozen=True)
class Outcome:
    """What happened to one file: ``scored``, ``rejected`` or ``resumed`` (already recorded, just moved)."""

    name: str
    action: str
    record_id: int
    destination: Path


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks (for files too big to load)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Watcher:
    """Scores the photos in ``root`` for one station.

    Args:
        root: the watched folder; ``processed/`` and ``rejected/`` are created inside it.
        station_id: the station every photo in this folder belongs to.
        pipeline: anything with ``inspect_batch`` (an :class:`inspection.pipeline.InspectionPipeline`).
        store: where records go.
        settle_s: a file is taken once it has not been modified for this long.
        batch_size: photos scored together in one ``inspect_batch`` call.
    """

    def __init__(
        self,
        root: str | Path,
        station_id: str,
        pipeline: BatchPipeline,
        store: RecordStore,
        *,
        settle_s: float = 0.5,
        batch_size: int = 8,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"watch folder {self.root} does not exist; create it or pass another DIR")
        self.station_id = station_id
        self.pipeline = pipeline
        self.store = store
        self.settle_s = settle_s
        self.batch_size = max(1, batch_size)
        self.processed = self.root / PROCESSED
        self.rejected = self.root / REJECTED
        self.processed.mkdir(exist_ok=True)
        self.rejected.mkdir(exist_ok=True)
        # a SQLite store kept inside the watched folder must never be taken for a photo and moved away
        db = sqlite_path(store.engine.url)
        self._own_files: set[str] = set()
        if db is not None and db.resolve().parent == self.root.resolve():
            self._own_files = {
                db.name + suffix for suffix in ("", "-wal", "-shm", "-journal", ".migrate.lock")
            }

    def pending(self, now: float | None = None) -> list[Path]:
        """Files ready to score, oldest first."""
        now = time.time() if now is None else now
        ready = []
        with os.scandir(self.root) as it:
            for entry in it:
                name = entry.name
                if (
                    name.startswith(".")
                    or name.endswith(IGNORED_SUFFIXES)
                    or name in self._own_files
                    or not entry.is_file(follow_symlinks=False)
                ):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if now - st.st_mtime >= self.settle_s:
                    ready.append((st.st_mtime, name))
        return [self.root / name for _, name in sorted(ready)]

    def _destination(self, folder: Path, src: Path, sha: str) -> Path:
        dest = folder / src.name
        if dest.exists():  # the same name arrived before with other bytes: keep both
            dest = folder / f"{src.stem}-{sha[:12]}{src.suffix}"
        return dest

    def _move(self, src: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)

    def _reject_file(
        self, src: Path, data: bytes | None, sha: str | None, reason: str, message: str
    ) -> Outcome:
        part_id = src.stem
        dest = self._destination(self.rejected, src, sha or "nohash")
        rid = self.store.add_inspection(
            station_id=self.station_id,
            part_id=part_id,
            image_sha256=sha,
            image_path=str(dest),
            result=None,
            status=STATUS_REJECTED,
            reason=reason,
            message=message,
            source="watch",
            image_bytes=len(data) if data is not None else None,
        )
        stored = self.store.get_inspection(rid)
        if stored and stored["image_path"]:
            dest = Path(stored["image_path"])  # a resumed rejection keeps the path first recorded
        _write_atomic(dest.with_name(dest.name + ".reason.txt"), f"{reason}\n{message}\nrecord id: {rid}\n")
        self._move(src, dest)
        log.info("rejected %s: %s (%s)", src.name, reason, message)
        return Outcome(src.name, "rejected", rid, dest)

    def process(self, paths: Sequence[Path]) -> list[Outcome]:
        """Score, record and move these files (a batch); each file is finished even if another one fails."""
        outcomes: list[Outcome] = []
        todo: list[tuple[Path, bytes, str]] = []
        for src in paths:
            try:
                size = src.stat().st_size
                if size > MAX_FILE_BYTES:
                    message = f"{src.name} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}"
                    outcomes.append(self._reject_file(src, None, sha256_file(src), "too_large", message))
                    continue
                data = src.read_bytes()
            except FileNotFoundError:
                continue  # taken away by someone else
            sha = sha256_hex(data)
            if not PART_ID_RE.fullmatch(src.stem) or ".." in src.stem:
                message = f"file name {src.name!r} does not make a valid part id; use letters, digits, '.', '_', ':' or '-'"
                outcomes.append(self._reject_file(src, data, sha, "bad_part_id", message))
                continue
            existing = self.store.find_inspection(
                station_id=self.station_id, part_id=src.stem, image_sha256=sha
            )
            if (
                existing is not None
            ):  # recorded before a crash or restart: finish the move, do not score again
                dest = (
                    Path(existing["image_path"])
                    if existing["image_path"]
                    else self._destination(self.processed, src, sha)
                )
                self._move(src, dest)
                outcomes.append(Outcome(src.name, "resumed", existing["id"], dest))
                log.info("%s was already scored (record %d); moved to %s", src.name, existing["id"], dest)
                continue
            todo.append((src, data, sha))
        if not todo:
            return outcomes
        results = self._score([data for _, data, _ in todo])
        for (src, data, sha), result in zip(todo, results, strict=True):
            if isinstance(result, Rejection):
                outcomes.append(self._reject_file(src, data, sha, result.reason, result.message))
                continue
            dest = self._destination(self.processed, src, sha)
            rid = self.store.add_inspection(
                station_id=self.station_id,
                part_id=src.stem,
                image_sha256=sha,
                image_path=str(dest),
                result=result,
                image_bytes=len(data),
                source="watch",
            )
            self._move(src, dest)
            outcomes.append(Outcome(src.name, "scored", rid, dest))
            log.info(
                "%s: %s (p=%.3f, %s via %s), record %d",
                src.name,
                result.verdict,
                result.defect_probability,
                result.noise_type,
                result.denoiser,
                rid,
            )
        return outcomes

    def _score(self, images: list[bytes]) -> list[InspectionResult | Rejection]:
        """Score a batch; if the batch fails, score one by one so that one poison file cannot stall the folder."""
        try:
            return self.pipeline.inspect_batch(images)
        except Exception:
            log.exception("scoring a batch of %d failed; scoring them one at a time", len(images))
        out: list[InspectionResult | Rejection] = []
        for data in images:
            try:
                out.extend(self.pipeline.inspect_batch([data]))
            except Exception as e:
                log.exception("scoring a photo failed")
                out.append(Rejection("internal_error", f"scoring failed ({e.__class__.__name__}: {e})"))
        return out

    def run_once(self) -> list[Outcome]:
        """Process every file that is ready now, in batches."""
        outcomes: list[Outcome] = []
        ready = self.pending()
        for i in range(0, len(ready), self.batch_size):
            outcomes.extend(self.process(ready[i : i + self.batch_size]))
        return outcomes

    def run(self, *, poll_s: float = 0.5, stop: threading.Event | None = None) -> None:
        """Watch until ``stop`` is set; a failure on one pass is logged and the next pass tries again."""
        stop = stop or threading.Event()
        log.info("watching %s for station %s", self.root, self.station_id)
        while not stop.is_set():
            try:
                done = self.run_once()
            except Exception:
                log.exception("a pass over %s failed; retrying in %.1f s", self.root, poll_s)
                done = []
            if not done:
                stop.wait(poll_s)
