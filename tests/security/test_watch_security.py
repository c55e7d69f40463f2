"""Security review of the watch folder: no file can stall the folder, half-written photos wait, the watcher's
folders are never reached through a symlink, odd inbox entries are logged and never opened, stores that are down
lose nothing, and a store that cannot be opened is one line and exit 2."""

from __future__ import annotations

import errno
import io
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.photos import drop
from PIL import Image
from sqlalchemy.exc import OperationalError

from inspection.cli import main
from inspection.loadtest import make_photos
from inspection.pipeline import InspectionPipeline
from inspection.store import RecordStore
from inspection.store.photos import LocalPhotoStore
from inspection.watch import Watcher

NAME_MAX = 255
WATCH_LOG = "inspection.watch"


@pytest.fixture(scope="module")
def pipeline(tiny_models: Path) -> InspectionPipeline:
    return InspectionPipeline.from_dir(tiny_models)


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    return make_photos(4, size=64)


@pytest.fixture
def store(tmp_path: Path):
    with RecordStore(f"sqlite:///{tmp_path / 'records.db'}") as s:
        yield s


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def encode(fmt: str, seed: int = 0) -> bytes:
    gray = np.random.default_rng(seed).integers(0, 256, (64, 64), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, fmt)
    return buf.getvalue()


def watch_lines(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == WATCH_LOG and r.levelno >= level]


# -- 1. one file never stalls the folder ---------------------------------------------------------------------


def test_a_name_too_long_for_its_reason_file_is_rejected_and_the_folder_keeps_flowing(
    inbox: Path, pipeline, store: RecordStore, pngs
) -> None:
    long_name = "x" * 246 + ".png"  # 250 characters: NAME.reason.txt would be 261, past NAME_MAX
    drop(inbox, long_name, pngs[0], age_s=20)  # the oldest file: it comes first in every pass
    drop(inbox, "good.png", pngs[1])
    watcher = Watcher(inbox, "station-w", pipeline, store)

    outcomes = {o.name: o.action for o in watcher.run_once()}

    assert outcomes == {long_name: "rejected", "good.png": "scored"}
    assert (inbox / "processed" / "good.png").is_file() and (inbox / "rejected" / long_name).is_file()
    reason_files = [p for p in (inbox / "rejected").iterdir() if p.name.endswith(".reason.txt")]
    assert len(reason_files) == 1 and len(os.fsencode(reason_files[0].name)) <= NAME_MAX
    assert (
        reason_files[0].read_text().startswith("bad_part_id\n") and long_name in reason_files[0].read_text()
    )
    rejected = store.list_inspections(status="rejected")
    assert [r["reason"] for r in rejected] == ["bad_part_id"]
    assert rejected[0]["image_path"] == str(inbox / "rejected" / long_name)
    assert watcher.run_once() == []


def test_a_file_that_cannot_be_moved_backs_off_while_other_files_flow(
    inbox: Path, pipeline, store: RecordStore, pngs, monkeypatch, caplog
) -> None:
    real_replace = os.replace
    tries: list[str] = []
    broken = {"on": True}

    def replace(src, dst, **kw):
        if os.fspath(src).endswith("stuck.png"):
            tries.append(os.fspath(src))
            if broken["on"]:
                raise OSError(errno.EIO, "Input/output error")
        return real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)
    drop(inbox, "stuck.png", pngs[0], age_s=20)
    drop(inbox, "good.png", pngs[1])
    watcher = Watcher(inbox, "station-w", pipeline, store)
    t0 = time.time()

    assert [(o.name, o.action) for o in watcher.run_once(now=t0)] == [("good.png", "scored")]
    assert (inbox / "stuck.png").exists() and len(tries) == 1
    assert any("stuck.png" in r.getMessage() and "tried again" in r.getMessage() for r in watch_lines(caplog))

    drop(inbox, "later.png", pngs[2])
    assert [o.name for o in watcher.run_once(now=t0 + 1)] == ["later.png"]  # stuck.png is backing off
    assert len(tries) == 1

    broken["on"] = False
    outcomes = watcher.run_once(now=t0 + 60)
    assert [(o.name, o.action) for o in outcomes] == [("stuck.png", "resumed")]  # recorded once, moved now
    assert (inbox / "processed" / "stuck.png").is_file()
    assert store.count_inspections(part_id="stuck") == 1 and store.count_inspections() == 3


def test_an_unreadable_file_is_retried_later_and_does_not_block_the_others(
    inbox: Path, pipeline, store: RecordStore, pngs, monkeypatch, caplog
) -> None:
    real_open = os.open
    locked = {"on": True}

    def open_(path, flags, *args, **kw):
        if os.fspath(path).endswith("locked.png") and locked["on"]:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", open_)
    drop(inbox, "locked.png", pngs[0], age_s=20)
    drop(inbox, "good.png", pngs[1])
    watcher = Watcher(inbox, "station-w", pipeline, store)
    t0 = time.time()

    assert [o.name for o in watcher.run_once(now=t0)] == ["good.png"]
    assert (inbox / "locked.png").exists() and store.count_inspections(part_id="locked") == 0
    assert any(
        "locked.png" in r.getMessage() and "Permission denied" in r.getMessage() for r in watch_lines(caplog)
    )
    locked["on"] = False
    assert watcher.run_once(now=t0 + 1) == []  # still backing off
    assert [(o.name, o.action) for o in watcher.run_once(now=t0 + 60)] == [("locked.png", "scored")]


# -- 2. half-written photos wait -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "BMP"])
def test_a_photo_written_in_chunks_is_taken_only_once_complete(
    fmt: str, inbox: Path, pipeline, store: RecordStore, caplog
) -> None:
    caplog.set_level(logging.INFO, logger=WATCH_LOG)
    data = encode(fmt)
    path = inbox / f"part-7.{fmt.lower()}"
    watcher = Watcher(inbox, "station-w", pipeline, store, settle_s=0.5)
    cuts = [len(data) // 3, 2 * len(data) // 3, len(data)]
    start = 0
    for i, cut in enumerate(cuts):
        with open(path, "ab") as fh:  # the camera writes a chunk, then pauses 1.2 s (longer than settle)
            fh.write(data[start:cut])
        start = cut
        past = time.time() - 1.2
        os.utime(path, (past, past))
        outcomes = watcher.run_once()
        if i < len(cuts) - 1:
            assert outcomes == [] and path.exists(), f"taken after chunk {i + 1} of {len(cuts)}"
            assert store.count_inspections() == 0
    assert [(o.name, o.action) for o in outcomes] == [(path.name, "scored")]
    assert store.list_inspections()[0]["status"] == "ok"
    waiting = [r for r in caplog.records if r.name == WATCH_LOG and "waiting for" in r.getMessage()]
    assert len(waiting) == 1  # one line while it is being written, not one per pass


def test_a_jpeg_padded_with_zeros_after_its_end_marker_is_complete(
    inbox: Path, pipeline, store: RecordStore
) -> None:
    drop(inbox, "padded.jpg", encode("JPEG") + b"\x00" * 512)
    outcomes = Watcher(inbox, "station-w", pipeline, store).run_once()
    assert [(o.name, o.action) for o in outcomes] == [("padded.jpg", "scored")]


def test_a_photo_that_stays_incomplete_is_rejected_as_incomplete_after_the_timeout(
    inbox: Path, pipeline, store: RecordStore
) -> None:
    jpeg = encode("JPEG")
    drop(inbox, "cut.jpg", jpeg[: len(jpeg) // 2], age_s=10)
    watcher = Watcher(inbox, "station-w", pipeline, store, incomplete_timeout_s=60)
    assert watcher.run_once() == [] and (inbox / "cut.jpg").exists()
    assert watcher.run_once(now=time.time() + 30) == []  # unchanged, still within the timeout: not re-read

    outcomes = watcher.run_once(now=time.time() + 61)

    assert [(o.name, o.action) for o in outcomes] == [("cut.jpg", "rejected")]
    record = store.list_inspections()[0]
    assert record["reason"] == "incomplete" and "FF D9" in record["message"]
    assert (inbox / "rejected" / "cut.jpg.reason.txt").read_text().startswith("incomplete\n")


# -- 3. the watcher's own folders are never reached through a symlink ---------------------------------------


@pytest.mark.parametrize("folder", ["processed", "rejected"])
def test_refuses_to_start_when_its_own_folder_is_a_symlink(
    folder: str, tmp_path: Path, inbox: Path, pipeline, store: RecordStore
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (inbox / folder).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(OSError, match="symlink"):
        Watcher(inbox, "station-w", pipeline, store)


def test_the_watch_command_refuses_a_symlinked_folder_in_one_line(
    tmp_path: Path, inbox: Path, tiny_models: Path, capsys
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (inbox / "rejected").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    args = ["watch", str(inbox), "--station", "s1", "--db", f"sqlite:///{tmp_path / 'r.db'}", "--once"]
    code = main([*args, "--models", str(tiny_models), "--photos", str(tmp_path / "photos")])
    err = capsys.readouterr().err
    assert code == 2 and "symlink" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("folder", "data"), [("rejected", b"not a photo at all"), ("processed", None)])
def test_a_folder_swapped_for_a_symlink_while_running_is_not_followed(
    folder: str, data: bytes | None, tmp_path: Path, inbox: Path, pipeline, store: RecordStore, pngs, caplog
) -> None:
    watcher = Watcher(inbox, "station-w", pipeline, store)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (inbox / folder).rename(tmp_path / "moved-aside")
    (inbox / folder).symlink_to(elsewhere, target_is_directory=True)
    drop(inbox, "p.png", data if data is not None else pngs[0])
    t0 = time.time()

    assert watcher.run_once(now=t0) == []

    assert list(elsewhere.iterdir()) == [] and (inbox / "p.png").exists()
    assert any("symlink" in r.getMessage() for r in watch_lines(caplog))
    # the record was committed first; once the folder is real again the move is finished, not redone
    (inbox / folder).unlink()
    (tmp_path / "moved-aside").rename(inbox / folder)
    assert [(o.name, o.action) for o in watcher.run_once(now=t0 + 60)] == [("p.png", "resumed")]
    assert (inbox / folder / "p.png").is_file() and store.count_inspections() == 1


# -- 4. odd inbox entries: logged once, never opened ---------------------------------------------------------


def test_subfolders_fifos_and_symlinks_are_logged_once_and_never_opened(
    tmp_path: Path, inbox: Path, pipeline, store: RecordStore, pngs, caplog
) -> None:
    (inbox / "sub").mkdir()
    os.mkfifo(inbox / "pipe.png")
    outside = drop(tmp_path, "outside.png", pngs[0])
    (inbox / "link.png").symlink_to(outside)
    watcher = Watcher(inbox, "station-w", pipeline, store, settle_s=0)

    assert watcher.run_once() == [] and watcher.run_once() == []

    lines = [r.getMessage() for r in watch_lines(caplog)]
    for name, why in (("sub", "subfolder"), ("pipe.png", "FIFO"), ("link.png", "symlink")):
        mine = [line for line in lines if repr(name) in line]
        assert len(mine) == 1 and why in mine[0], (name, lines)
    assert store.count_inspections() == 0 and outside.exists() and (inbox / "link.png").is_symlink()


def test_a_fifo_that_appears_after_the_scan_is_never_opened_blocking(
    inbox: Path, pipeline, store: RecordStore
) -> None:
    watcher = Watcher(inbox, "station-w", pipeline, store)
    fifo = inbox / "race.png"
    os.mkfifo(fifo)  # a regular file when the folder was scanned, a FIFO by the time it is read
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(watcher.process([fifo])), daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # release the blocked reader so the test process can finish
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the watcher opened a FIFO and blocked on it")
    assert done == [[]] and fifo.exists() and store.count_inspections() == 0


# -- 5. stores down: nothing moved, nothing lost ------------------------------------------------------------


class FullPhotoStore(LocalPhotoStore):
    """A local photo store whose disk is full until ``full`` is cleared."""

    full = True

    def put(self, data: bytes, sha256: str | None = None) -> str:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().put(data, sha256)


def test_a_full_photo_store_leaves_the_photo_in_the_inbox_until_it_has_room(
    tmp_path: Path, inbox: Path, pipeline, store: RecordStore, pngs, caplog
) -> None:
    photos = FullPhotoStore(tmp_path / "photos")
    watcher = Watcher(inbox, "station-w", pipeline, store, photos=photos)
    drop(inbox, "a.png", pngs[0])
    drop(inbox, "b.png", pngs[1])
    t0 = time.time()

    assert watcher.run_once(now=t0) == []

    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["a.png", "b.png"]
    assert store.count_inspections() == 0 and not any((inbox / "processed").iterdir())
    lines = watch_lines(caplog)
    assert len(lines) == 1 and "photo_store_unavailable" in lines[0].getMessage() and not lines[0].exc_info
    photos.full = False
    assert watcher.run_once(now=t0 + 1) == []  # backing off
    outcomes = watcher.run_once(now=t0 + 60)
    assert sorted((o.name, o.action) for o in outcomes) == [("a.png", "scored"), ("b.png", "scored")]
    keys = [r["image_key"] for r in store.list_inspections()]
    assert all(key and (tmp_path / "photos" / key).is_file() for key in keys)


def test_a_database_that_refuses_writes_leaves_the_photo_in_the_inbox(
    inbox: Path, pipeline, store: RecordStore, pngs, monkeypatch, caplog
) -> None:
    def locked(**_kw):
        raise OperationalError("INSERT INTO inspections", {}, Exception("database is locked"))

    watcher = Watcher(inbox, "station-w", pipeline, store)
    drop(inbox, "a.png", pngs[0])
    drop(inbox, "bad.png", b"not a photo")
    monkeypatch.setattr(store, "save_inspection", locked)
    t0 = time.time()

    assert watcher.run_once(now=t0) == []

    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["a.png", "bad.png"]
    assert not any((inbox / "processed").iterdir()) and not any((inbox / "rejected").iterdir())
    lines = watch_lines(caplog)
    assert len(lines) == 1 and "store_unavailable" in lines[0].getMessage() and not lines[0].exc_info
    monkeypatch.undo()
    outcomes = watcher.run_once(now=t0 + 60)
    assert sorted((o.name, o.action) for o in outcomes) == [("a.png", "scored"), ("bad.png", "rejected")]
    assert store.count_inspections() == 2


# -- 6. a store that cannot be opened: one line, exit 2 ------------------------------------------------------


def _readonly_url(tmp_path: Path) -> str:
    db = tmp_path / "ro.db"
    RecordStore(f"sqlite:///{db}").close()  # created and migrated, then opened read-only
    return f"sqlite:///file:{db}?mode=ro&uri=true"


def _unreachable_url(tmp_path: Path) -> str:
    pytest.importorskip("psycopg")
    return "postgresql+psycopg://inspection:secret@127.0.0.1:9/records?connect_timeout=3"


@pytest.mark.parametrize(
    "make_url",
    [
        pytest.param(lambda tmp: f"sqlite:///{tmp}", id="a-folder-not-a-file"),
        pytest.param(_readonly_url, id="read-only"),
        pytest.param(_unreachable_url, id="unreachable"),
        pytest.param(lambda tmp: "nonsense://", id="bad-url"),
    ],
)
def test_a_store_that_cannot_be_opened_is_one_line_and_exit_2(
    make_url, tmp_path: Path, inbox: Path, tiny_models: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)  # SQLite URI file names are relative to the working directory
    url = make_url(tmp_path)
    args = ["watch", str(inbox), "--station", "s1", "--db", url, "--models", str(tiny_models), "--once"]
    code = main([*args, "--photos", str(tmp_path / "photos")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "secret" not in err
    assert err.startswith("inspection watch: ")


def test_a_jpeg_cut_right_after_its_exif_thumbnail_is_not_taken_for_whole() -> None:
    from inspection.ingest.files import why_incomplete

    def jpeg(side: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(side).integers(0, 256, (side, side), dtype=np.uint8)).save(
            buf, "JPEG"
        )
        return buf.getvalue()

    photo, thumb = jpeg(64), jpeg(8)
    exif = b"\xff\xe1" + (len(thumb) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + thumb  # ends in FF D9 itself
    assert why_incomplete(photo[:2] + exif) is not None
    assert why_incomplete(photo[:2] + exif + photo[2:]) is None
