"""The watch folder: score photos as they land in a directory, then file each under ``processed/`` or ``rejected/``.

Every photo goes through the one ingestion path (:mod:`inspection.ingest`): part id check, dedup, photo kept in
the photo store, scoring, record. The part id is the file name without its extension.

Exactly once, across crashes: a photo's record is committed *before* the file is moved, and the record names
the absolute path the file is moved to. Before scoring a file the ingestion path looks for a stored record of
the same station, part and photo bytes, so a crash between the commit and the move is finished on restart by
moving the file to where its record says, without scoring it again; a crash before the commit scores it once
on restart.

No file can stall the folder:

* a file is taken only once it is complete (JPEG end marker, PNG ``IEND`` chunk, TIFF/BMP/WebP sizes from the
  header) and has not changed for ``settle_s``; one that stays incomplete and unchanged for
  ``incomplete_timeout_s`` is rejected as ``incomplete``;
* a file that cannot be read or moved now is logged and tried again later, with a per-file backoff, while the
  other files keep flowing;
* when the records store or the photo store cannot take a record (a retryable refusal), the file stays in the
  inbox, nothing is recorded or moved, and the whole folder is tried again after a backoff.

The watcher never follows a symlink: ``processed/`` and ``rejected/`` must be real folders (checked at start
and before every move, through a directory descriptor opened with ``O_NOFOLLOW``), and symlinks, subfolders and
FIFOs in the inbox are skipped with one log line each, never opened.

Writers should still drop a photo under a temp name (``.name``, ``*.part``, ``*.tmp``) and rename it when
complete; such names are ignored.

Pick-up: :meth:`Watcher.follow_live` follows a models root's ``LIVE`` file; a newly promoted bundle is loaded on
the follower's thread and put in service between two batches (:meth:`Watcher.replace_pipeline`), so every
photo is scored once, by the old bundle or the new.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from inspection.bundle import Bundle
from inspection.imageio import decode_image
from inspection.ingest import Admission, Ingested, Ingestor, Submission, score_photos
from inspection.ingest.core import BatchPipeline
from inspection.ingest.files import read_regular_file, signature, why_incomplete
from inspection.promotion import LiveFollower
from inspection.results import InspectionResult, Rejection
from inspection.store import STATUS_OK, RecordStore
from inspection.store.database import sqlite_path
from inspection.store.photos import PhotoStore, sha256_hex

log = logging.getLogger(__name__)
T = TypeVar("T")

PROCESSED = "processed"
REJECTED = "rejected"
REASON_SUFFIX = ".reason.txt"
IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", REASON_SUFFIX)
# The longest file name, in bytes, that ext4, XFS, APFS and NTFS all accept.
NAME_MAX = 255
# A camera that stops mid-photo (power cut, network share dropped) leaves a file that never completes; five
# minutes is far longer than any camera takes to write one photo, yet short enough for an operator to notice.
INCOMPLETE_TIMEOUT_S = 300.0
# A file that cannot be read or moved is tried again after 2 s, then 4, 8 ... up to this many seconds.
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 300.0


class WatchFolderError(OSError):
    """A folder of the watcher (``processed/``, ``rejected/``) is a symlink or not a folder."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one file: ``scored``, ``rejected`` or ``resumed`` (already recorded, just moved)."""

    name: str
    action: str
    record_id: int
    destination: Path


@dataclass(frozen=True)
class _Arrival:
    """A file read from the inbox: its submission (``path`` is where a refusal is filed) and where a scored
    photo is filed."""

    src: Path
    submission: Submission
    scored_dest: Path


@dataclass(frozen=True)
class _Retry:
    """A file that failed: how often, when to try it next, and the file it was (a changed file starts over)."""

    failures: int
    next_at: float
    signature: tuple[int, int, int]


def _decodes(data: bytes) -> bool:
    try:
        decode_image(data)
    except Rejection:
        return False
    return True


# -- names and folders ---------------------------------------------------------------------------------------


def fit_name(stem: str, suffix: str = "") -> str:
    """``stem + suffix``, or when that is longer than :data:`NAME_MAX` bytes, the stem cut short and followed by
    a short hash of the whole name (so two long names that share a start stay apart)."""
    if len(os.fsencode(stem + suffix)) <= NAME_MAX:
        return stem + suffix
    tag = "-" + sha256_hex(os.fsencode(stem + suffix))[:12]
    budget = NAME_MAX - len(os.fsencode(tag + suffix))
    if budget < 1:  # a suffix that long is no extension: cut the whole name instead
        return fit_name(stem + suffix)
    while len(os.fsencode(stem)) > budget:
        stem = stem[:-1]
    return stem + tag + suffix


def _split_name(name: str) -> tuple[str, str]:
    """``(stem, extension)``; an "extension" of more than 16 characters is taken as part of the stem."""
    suffix = Path(name).suffix
    return (name[: -len(suffix)], suffix) if 0 < len(suffix) <= 16 else (name, "")


def open_own_folder(folder: Path) -> int:
    """A descriptor of the watcher's own ``folder``, created if missing, opened without following a symlink.

    Raises:
        WatchFolderError: ``folder`` is a symlink or not a folder.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.suppress(FileExistsError):  # an existing entry is checked by the open below
        os.mkdir(folder)
    try:
        return os.open(folder, flags)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        what = "a symlink" if folder.is_symlink() else "not a folder"
        raise WatchFolderError(
            errno.ENOTDIR,
            f"{folder} is {what}; the watcher files photos only into real folders inside the watch folder, "
            f"never through a link. Remove it (the watcher creates {folder.name}/ itself) or move it aside",
            str(folder),
        ) from e


# -- the watcher ---------------------------------------------------------------------------------------------


class Watcher:
    """Scores the photos in ``root`` for one station.

    Args:
        root: the watched folder; ``processed/`` and ``rejected/`` are created inside it.
        station_id: the station every photo in this folder belongs to.
        pipeline: anything with ``inspect_batch`` (an :class:`inspection.pipeline.InspectionPipeline`).
        store: where records go.
        photos: where photos are kept (None keeps no copy; the ``watch`` command keeps them).
        settle_s: a file is taken once it has not been modified for this long.
        batch_size: photos scored together in one ``inspect_batch`` call.
        incomplete_timeout_s: a file still incomplete after this long unchanged is rejected as ``incomplete``;
            0 rejects an incomplete file as soon as it has settled.
        retry_max_s: the longest wait between two tries of a file that cannot be read or moved, or of the
            folder while the stores are down.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        WatchFolderError: ``processed/`` or ``rejected/`` is a symlink or not a folder.
    """

    def __init__(
        self,
        root: str | Path,
        station_id: str,
        pipeline: BatchPipeline,
        store: RecordStore,
        *,
        photos: PhotoStore | None = None,
        settle_s: float = 0.5,
        batch_size: int = 8,
        incomplete_timeout_s: float = INCOMPLETE_TIMEOUT_S,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self.root = Path(os.path.abspath(root))  # records name absolute paths, whatever the working directory
        if not self.root.is_dir():
            raise FileNotFoundError(f"watch folder {self.root} does not exist; create it or pass another DIR")
        self.station_id = station_id
        self.pipeline = pipeline
        self.ingestor = Ingestor(store, photos)
        self.settle_s = settle_s
        self.batch_size = max(1, batch_size)
        self.incomplete_timeout_s = incomplete_timeout_s
        self.retry_max_s = retry_max_s
        self.processed = self.root / PROCESSED
        self.rejected = self.root / REJECTED
        for folder in (self.processed, self.rejected):
            os.close(open_own_folder(folder))
        self._own_files = self._files_of_the_stores(store, photos)
        self._retries: dict[str, _Retry] = {}
        self._waiting: dict[str, tuple[int, int, int]] = {}  # incomplete files, as last seen
        self._skipped: dict[str, str] = {}  # entries that are not taken, and why (logged once)
        self._stores_failures = 0
        self._stores_retry_at = 0.0
        self.stores_down: Rejection | None = None  # the last retryable refusal, until the stores answer again
        self._next_pipeline: BatchPipeline | None = (
            None  # a newly promoted bundle's, put in before the next batch
        )
        self._swap_lock = threading.Lock()

    def _files_of_the_stores(self, store: RecordStore, photos: PhotoStore | None) -> set[str]:
        """Names in the watched folder that belong to the stores (a SQLite file, a photo folder): never taken."""
        own: set[str] = set()
        db = sqlite_path(store.engine.url)
        if db is not None and db.resolve().parent == self.root.resolve():
            own |= {db.name + suffix for suffix in ("", "-wal", "-shm", "-journal", ".migrate.lock")}
        photo_root = getattr(photos, "root", None)
        if isinstance(photo_root, Path) and photo_root.resolve().parent == self.root.resolve():
            own.add(photo_root.name)
        return own

    # -- finding files -------------------------------------------------------------------------------------

    def pending(self, now: float | None = None) -> list[Path]:
        """Files to try now, oldest first: settled, not backing off, and not an unchanged incomplete file."""
        now = time.time() if now is None else now
        ready: list[tuple[float, str]] = []
        present: set[str] = set()
        with os.scandir(self.root) as it:
            for entry in it:
                present.add(entry.name)
                why = self._skip_reason(entry)
                if why is not None:
                    self._note_skipped(entry.name, why)
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if self._due(entry.name, st, now):
                    ready.append((st.st_mtime, entry.name))
        for book in (self._retries, self._waiting, self._skipped):
            for name in set(book) - present:
                del book[name]
        return [self.root / name for _, name in sorted(ready)]

    def left(self) -> list[str]:
        """The files still in the inbox that a later pass would take (incomplete, still settling, or waiting to
        be tried again), by name."""
        with os.scandir(self.root) as it:
            return sorted(entry.name for entry in it if self._skip_reason(entry) is None)

    def _skip_reason(self, entry: os.DirEntry[str]) -> str | None:
        """Why an inbox entry is not taken ('' for names never logged: temp files, the watcher's own), or None."""
        name = entry.name
        if (
            name in (PROCESSED, REJECTED)
            or name in self._own_files
            or name.startswith(".")
            or name.endswith(IGNORED_SUFFIXES)
        ):
            return ""
        if entry.is_symlink():
            return "it is a symlink; the watcher takes only regular files and never follows links"
        if entry.is_dir(follow_symlinks=False):
            return "it is a subfolder; only files directly in the watch folder are taken"
        if not entry.is_file(follow_symlinks=False):
            return "it is not a regular file (a FIFO, socket or device); it is never opened"
        return None

    def _note_skipped(self, name: str, why: str) -> None:
        if why and self._skipped.get(name) != why:
            log.warning("skipping %r in %s: %s", name, self.root, why)
        self._skipped[name] = why

    def _due(self, name: str, st: os.stat_result, now: float) -> bool:
        if now - st.st_mtime < self.settle_s:
            return False
        retry = self._retries.get(name)
        if retry is not None and retry.signature == signature(st) and now < retry.next_at:
            return False
        if self._waiting.get(name) == signature(st):  # incomplete and unchanged since the last look
            return now - st.st_mtime >= self.incomplete_timeout_s
        return True

    # -- taking files ----------------------------------------------------------------------------------------

    def _arrive(self, src: Path, now: float) -> _Arrival | None:
        """Read a file and make its submission; None when it is still incomplete and should wait."""
        refused: Rejection | None = None
        data: bytes | None
        try:
            data, st = read_regular_file(src)
        except Rejection as e:  # too large to read: recorded without its bytes
            data, refused, st = None, e, src.lstat()
        if data is not None and (why := why_incomplete(data)):
            waited = now - st.st_mtime
            if waited < self.incomplete_timeout_s:
                if self._waiting.get(src.name) is None:
                    log.info("waiting for %s to be complete: %s", src.name, why)
                self._waiting[src.name] = signature(st)
                return None
            if not _decodes(
                data
            ):  # a whole photo with an odd ending (a vendor trailer) is judged, not refused
                refused = Rejection(
                    "incomplete",
                    f"{src.name} stayed incomplete for {waited:.0f} s ({why}); the writer stopped before the end "
                    "of the photo. Check the camera's connection and send the photo again",
                )
        sha = sha256_hex(data) if data is not None else None
        sub = Submission(
            self.station_id,
            src.stem,
            data,
            "watch",
            path=str(self._destination(self.rejected, src.name, sha)),
            refused=refused,
        )
        return _Arrival(src, sub, self._destination(self.processed, src.name, sha))

    def _destination(self, folder: Path, name: str, sha: str | None) -> Path:
        """Where a file is filed: ``folder/name``, or when that name is taken, ``folder/<stem>-<sha12><ext>``."""
        dest = folder / name
        if not os.path.lexists(dest):
            return dest
        stem, suffix = _split_name(name)
        return folder / fit_name(f"{stem}-{(sha or uuid.uuid4().hex)[:12]}", suffix)

    def _recorded_destination(self, record: dict[str, object], fallback: Path) -> Path:
        """Where the record says the file goes, if that is inside the folder it belongs in; else ``fallback``."""
        recorded = record.get("image_path")
        if isinstance(recorded, str) and recorded:
            path = Path(os.path.abspath(recorded))
            if path.parent == fallback.parent:
                return path
        return fallback

    # -- filing files ----------------------------------------------------------------------------------------

    def _file(self, arrival: _Arrival, ingested: Ingested) -> Outcome:
        """Move a recorded file to where its record says (a rejected one with its reason file beside it)."""
        record = ingested.record
        scored = record["status"] == STATUS_OK
        fallback = arrival.scored_dest if scored else Path(arrival.submission.path or "")
        dest = self._recorded_destination(record, fallback)
        folder_fd = open_own_folder(dest.parent)
        try:
            if not scored:
                self._write_reason(folder_fd, dest.name, record)
            os.replace(arrival.src, dest.name, dst_dir_fd=folder_fd)
        finally:
            os.close(folder_fd)
        action = "resumed" if not ingested.created else ("scored" if scored else "rejected")
        self._log_filed(arrival.src.name, action, record, dest)
        return Outcome(arrival.src.name, action, int(record["id"]), dest)

    @staticmethod
    def _write_reason(folder_fd: int, photo_name: str, record: dict[str, object]) -> None:
        """Write ``<photo>.reason.txt`` (a shortened name when that would be too long) atomically."""
        text = f"{record['reason']}\n{record['message']}\nrecord id: {record['id']}\nphoto: {photo_name}\n"
        tmp = f".tmp-{uuid.uuid4().hex}.part"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=folder_fd
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, fit_name(photo_name, REASON_SUFFIX), src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except BaseException:
            os.unlink(tmp, dir_fd=folder_fd)
            raise

    @staticmethod
    def _log_filed(name: str, action: str, record: dict[str, object], dest: Path) -> None:
        if action == "resumed":
            log.info("%s was already recorded (record %s); moved to %s", name, record["id"], dest)
        elif action == "rejected":
            log.info(
                "rejected %s: %s (%s), record %s", name, record["reason"], record["message"], record["id"]
            )
        else:
            log.info(
                "%s: %s (p=%.3f, %s via %s), record %s",
                name,
                record["verdict"],
                record["defect_probability"],
                record["noise_type"],
                record["denoiser"],
                record["id"],
            )

    # -- one batch -------------------------------------------------------------------------------------------

    def process(self, paths: Sequence[Path], now: float | None = None) -> list[Outcome]:
        """Score, record and move these files (a batch); a file that fails waits for a later pass alone."""
        now = time.time() if now is None else now
        self._take_new_pipeline()
        arrivals = [
            a for src in paths if (a := self._per_file(src, now, "read", partial(self._arrive, src, now)))
        ]
        outcomes: list[Outcome] = []
        admitted: list[tuple[_Arrival, Admission]] = []
        down: list[Rejection] = []
        for arrival in arrivals:
            got = self._ingest_step(partial(self.ingestor.admit, arrival.submission), down)
            if isinstance(got, Ingested):
                outcomes += self._file_or_retry(arrival, got, now)
            elif isinstance(got, Admission):
                admitted.append((arrival, got))
        results = score_photos(self.pipeline, [a.data for _, a in admitted]) if admitted else []
        for (arrival, admission), result in zip(admitted, results, strict=True):
            if isinstance(result, InspectionResult):  # filed under processed/, not where a refusal goes
                admission = replace(
                    admission, submission=replace(admission.submission, path=str(arrival.scored_dest))
                )
            got = self._ingest_step(partial(self.ingestor.record, admission, result), down)
            if isinstance(got, Ingested):
                outcomes += self._file_or_retry(arrival, got, now)
        self._note_stores(down, now, recorded=bool(outcomes))
        return outcomes

    @staticmethod
    def _ingest_step(
        step: Callable[[], Admission | Ingested], down: list[Rejection]
    ) -> Admission | Ingested | None:
        """Run one ingestion step; a retryable refusal (stores down) is collected in ``down`` and gives None."""
        try:
            return step()
        except Rejection as e:
            if not e.retryable:
                raise
            down.append(e)
            return None

    def _file_or_retry(self, arrival: _Arrival, ingested: Ingested, now: float) -> list[Outcome]:
        outcome = self._per_file(arrival.src, now, "file", partial(self._file, arrival, ingested))
        if outcome is None:
            return []
        self._retries.pop(arrival.src.name, None)
        self._waiting.pop(arrival.src.name, None)
        return [outcome]

    def _per_file(self, src: Path, now: float, what: str, step: Callable[[], T]) -> T | None:
        """Run one step for one file; an ``OSError`` puts the file on its backoff instead of failing the pass."""
        try:
            return step()
        except FileNotFoundError as e:
            if e.filename is None or Path(e.filename) != src:
                self._retry_later(src, now, f"cannot {what} it: {e.strerror or e}")
            elif what == "file":  # its record is committed, but the photo is gone
                log.warning(
                    "%s was taken out of the inbox by someone else before it could be filed", src.name
                )
        except OSError as e:
            self._retry_later(src, now, f"cannot {what} it: {e.strerror or e}")
        return None

    def _retry_later(self, src: Path, now: float, why: str) -> None:
        """Leave ``src`` in the inbox and try it again after its backoff (2 s, 4 s ... up to ``retry_max_s``)."""
        try:
            seen = signature(src.lstat())
        except FileNotFoundError:
            return
        before = self._retries.get(src.name)
        failures = before.failures + 1 if before and before.signature == seen else 1
        delay = min(self.retry_max_s, RETRY_FIRST_S * 2 ** (failures - 1))
        self._retries[src.name] = _Retry(failures, now + delay, seen)
        log.warning(
            "%s: %s; it stays in the inbox and is tried again in %.0f s (attempt %d)",
            src.name,
            why,
            delay,
            failures,
        )

    def _note_stores(self, down: list[Rejection], now: float, *, recorded: bool) -> None:
        """Log one line when the stores refuse (and back off the whole folder), one when they answer again."""
        if not down:
            if self.stores_down is not None and recorded:
                log.info("the stores take records again; the photos left in the inbox are being taken")
                self.stores_down, self._stores_failures = None, 0
            return
        self._stores_failures += 1
        delay = min(self.retry_max_s, RETRY_FIRST_S * 2 ** (self._stores_failures - 1))
        self._stores_retry_at = now + delay
        self.stores_down = down[0]
        log.warning(
            "%s (%s): %d photo(s) stay in the inbox, nothing was moved; trying again in %.0f s",
            down[0].message,
            down[0].reason,
            len(down),
            delay,
        )

    # -- pick-up ---------------------------------------------------------------------------------------------

    def replace_pipeline(self, pipeline: BatchPipeline) -> None:
        """Score with ``pipeline`` from the next batch on; the batch being scored now finishes on the old one.

        Safe to call from another thread (the :class:`inspection.promotion.LiveFollower`'s).
        """
        with self._swap_lock:
            unused, self._next_pipeline = self._next_pipeline, pipeline
        if unused is not None:  # two promotions between batches: the first was never used
            getattr(unused, "close", lambda: None)()

    def _take_new_pipeline(self) -> None:
        with self._swap_lock:
            new, self._next_pipeline = self._next_pipeline, None
        if new is None:
            return
        old, self.pipeline = self.pipeline, new
        getattr(old, "close", lambda: None)()
        log.info("scoring with bundle %s from this batch on", getattr(new, "bundle_version", "") or "(new)")

    def follow_live(self, root: str | Path, *, interval_s: float = 2.0) -> LiveFollower[BatchPipeline]:
        """Follow ``root``'s ``LIVE`` file on a thread: a newly promoted bundle is loaded in full, its model
        versions recorded, and it scores from the next batch on. Returns the started follower; stop it after."""
        from inspection.pipeline import InspectionPipeline

        store = self.ingestor.store

        def swap(pipeline: BatchPipeline, bundle: Bundle) -> None:
            self.replace_pipeline(pipeline)
            try:
                store.register_models(pipeline)
            except SQLAlchemyError as e:  # the records still name the bundle; only the models table lags
                log.warning(
                    "bundle %s is scoring, but its model versions could not be recorded: %s",
                    bundle.version,
                    e,
                )

        current = str(getattr(self.pipeline, "bundle_version", ""))
        backend = str(getattr(self.pipeline, "backend", "torch"))  # a new bundle runs where the old one did
        device = str(getattr(self.pipeline, "device", "cpu"))
        processes = bool(getattr(getattr(self.pipeline, "workers", None), "processes", False))

        def load(bundle: Bundle) -> BatchPipeline:
            return InspectionPipeline.from_bundle(
                bundle, backend=backend, device=device, worker_processes=processes
            )

        follower: LiveFollower[BatchPipeline] = LiveFollower(root, current, load, swap, interval_s=interval_s)
        return follower.start()

    # -- passes ----------------------------------------------------------------------------------------------

    def run_once(self, now: float | None = None) -> list[Outcome]:
        """Process every file that is ready now, in batches (nothing while the stores are backing off)."""
        now = time.time() if now is None else now
        if now < self._stores_retry_at:
            return []
        outcomes: list[Outcome] = []
        ready = self.pending(now)
        for i in range(0, len(ready), self.batch_size):
            batch = ready[i : i + self.batch_size]
            try:
                outcomes.extend(self.process(batch, now))
            except Exception:  # noqa: BLE001 - an unforeseen failure: that batch waits, the rest of the folder flows
                log.exception(
                    "a batch of %d file(s) failed; they stay in the inbox and are tried again later",
                    len(batch),
                )
                for src in batch:
                    self._retry_later(src, now, "its batch failed")
            if now < self._stores_retry_at:
                break
        return outcomes

    def run(self, *, poll_s: float = 0.5, stop: threading.Event | None = None) -> None:
        """Watch until ``stop`` is set; a pass that cannot read the folder is logged and tried again."""
        stop = stop or threading.Event()
        log.info("watching %s for station %s", self.root, self.station_id)
        while not stop.is_set():
            try:
                done = self.run_once()
            except OSError as e:
                log.error(
                    "cannot read the watch folder %s (%s); trying again in %.1f s", self.root, e, poll_s
                )
                done = []
            if not done:
                stop.wait(poll_s)
