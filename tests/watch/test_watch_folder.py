"""The watch folder, in process: arrival, filing, rejection reasons, and resuming after a crash."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from helpers.photos import drop

from inspection.loadtest import make_photos
from inspection.results import InspectionResult, Rejection
from inspection.store import RecordStore
from inspection.store.photos import sha256_hex
from inspection.watch import Watcher


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    return make_photos(6, size=64)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """The watched folder (apart from the store's database file, which lives in tmp_path)."""
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def test_scores_files_and_files_them_under_processed_or_rejected(
    tmp_path: Path, watch_pipeline, store: RecordStore, pngs
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(3):
        drop(inbox, f"part-{i}.png", pngs[i])
    drop(inbox, "fake.jpg", b"plain text, not a photo")
    drop(inbox, "cut.png", pngs[3][:200])
    drop(inbox, ".incoming.png", pngs[4])  # being written: hidden temp name
    drop(inbox, "upload.png.part", pngs[4])
    watcher = Watcher(inbox, "station-w", watch_pipeline, store, settle_s=0.5, batch_size=2)

    outcomes = watcher.run_once()

    assert sorted((o.name, o.action) for o in outcomes) == [
        ("fake.jpg", "rejected"),
        ("part-0.png", "scored"),
        ("part-1.png", "scored"),
        ("part-2.png", "scored"),
    ]
    # cut.png has no PNG end chunk yet: it waits for its writer, and only after the incomplete timeout it is
    # rejected as 'incomplete'
    assert (inbox / "cut.png").exists()
    late = watcher.run_once(now=time.time() + watcher.incomplete_timeout_s + 1)
    assert [(o.name, o.action) for o in late] == [("cut.png", "rejected")]
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == [
        "part-0.png",
        "part-1.png",
        "part-2.png",
    ]
    rejected = sorted(p.name for p in (inbox / "rejected").iterdir())
    assert rejected == ["cut.png", "cut.png.reason.txt", "fake.jpg", "fake.jpg.reason.txt"]
    assert (inbox / "rejected" / "fake.jpg.reason.txt").read_text().startswith("not_an_image\n")
    assert (inbox / "rejected" / "cut.png.reason.txt").read_text().startswith("incomplete\n")
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == [".incoming.png", "upload.png.part"]

    recs = {r["part_id"]: r for r in store.list_inspections(station_id="station-w")}
    assert set(recs) == {"part-0", "part-1", "part-2", "fake", "cut"}
    assert all(r["source"] == "watch" for r in recs.values())
    assert recs["part-1"]["status"] == "ok" and recs["part-1"]["verdict"] in ("ok", "defective")
    assert Path(recs["part-1"]["image_path"]) == inbox / "processed" / "part-1.png"
    assert recs["fake"]["reason"] == "not_an_image" and Path(recs["fake"]["image_path"]).exists()
    assert watcher.run_once() == []  # nothing left to do


def test_files_still_being_written_wait_until_they_settle(
    inbox: Path, watch_pipeline, store: RecordStore, pngs
) -> None:
    drop(inbox, "fresh.png", pngs[0], age_s=0)
    watcher = Watcher(inbox, "station-w", watch_pipeline, store, settle_s=30)
    assert watcher.run_once() == []
    drop(inbox, "fresh.png", pngs[0], age_s=60)
    assert [o.action for o in watcher.run_once()] == ["scored"]


def test_resumes_a_crash_between_commit_and_move_without_scoring_again(
    inbox: Path, watch_pipeline, store: RecordStore, pngs
) -> None:
    class CountingPipeline:
        calls = 0

        def inspect_batch(self, images):
            CountingPipeline.calls += len(images)
            return watch_pipeline.inspect_batch(images)

    watcher = Watcher(inbox, "station-w", CountingPipeline(), store)
    drop(inbox, "a.png", pngs[0])
    drop(inbox, "bad.png", b"GIF89a-not-really")
    # the state a crash leaves: both records committed, neither file moved yet
    scored = watch_pipeline.inspect_batch([pngs[0]])[0]
    assert isinstance(scored, InspectionResult)
    rid = store.add_inspection(
        station_id="station-w",
        part_id="a",
        image_sha256=sha256_hex(pngs[0]),
        image_path=str(inbox / "processed" / "a.png"),
        result=scored,
        source="watch",
    )
    bad = watch_pipeline.inspect_batch([b"GIF89a-not-really"])[0]
    assert isinstance(bad, Rejection)
    bad_id = store.add_inspection(
        station_id="station-w",
        part_id="bad",
        image_sha256=sha256_hex(b"GIF89a-not-really"),
        image_path=str(inbox / "rejected" / "bad.png"),
        result=None,
        status="rejected",
        reason=bad.reason,
        message=bad.message,
        source="watch",
    )

    outcomes = {o.name: o for o in watcher.run_once()}

    assert outcomes["a.png"].action == "resumed" and outcomes["a.png"].record_id == rid
    assert outcomes["bad.png"].record_id == bad_id
    assert CountingPipeline.calls == 0  # neither is scored again: both records are found by their photo
    assert (inbox / "processed" / "a.png").exists() and (inbox / "rejected" / "bad.png").exists()
    assert (inbox / "rejected" / "bad.png.reason.txt").exists()
    assert store.count_inspections() == 2


def test_same_name_again_keeps_both_and_same_photo_again_adds_nothing(
    inbox: Path, watch_pipeline, store: RecordStore, pngs
) -> None:
    watcher = Watcher(inbox, "station-w", watch_pipeline, store)
    drop(inbox, "p.png", pngs[0])
    watcher.run_once()
    drop(inbox, "p.png", pngs[1])  # same part id, new photo: a new record, filed next to the first
    second = watcher.run_once()[0]
    assert second.action == "scored" and second.destination.name.startswith("p-")
    drop(inbox, "p.png", pngs[0])  # the first photo re-sent: no new record
    third = watcher.run_once()[0]
    assert third.action == "resumed"
    assert store.count_inspections() == 2
    assert len(list((inbox / "processed").iterdir())) == 2


def test_bad_file_names_and_poison_files_are_rejected_not_retried_forever(
    inbox: Path, watch_pipeline, store: RecordStore, pngs
) -> None:
    class PoisonPipeline:
        def inspect_batch(self, images):
            if any(data == pngs[2] for data in images):
                raise RuntimeError("model blew up")
            return watch_pipeline.inspect_batch(images)

    watcher = Watcher(inbox, "station-w", PoisonPipeline(), store, batch_size=4)
    drop(inbox, "bad name!.png", pngs[0])
    drop(inbox, "good.png", pngs[1])
    drop(inbox, "poison.png", pngs[2])
    outcomes = {o.name: o.action for o in watcher.run_once()}
    assert outcomes == {"bad name!.png": "rejected", "good.png": "scored", "poison.png": "rejected"}
    reasons = {r["part_id"]: r["reason"] for r in store.list_inspections(status="rejected")}
    assert reasons == {"bad name!": "bad_part_id", "poison": "internal_error"}
    assert watcher.run_once() == []


def test_a_store_inside_the_watched_folder_is_left_alone(tmp_path: Path, watch_pipeline, pngs) -> None:
    with RecordStore(f"sqlite:///{tmp_path / 'records.db'}") as store:
        store.count_inspections()
        drop(tmp_path, "x.png", pngs[0])
        past = time.time() - 60
        for p in tmp_path.glob("records.db*"):
            os.utime(p, (past, past))
        outcomes = Watcher(tmp_path, "station-w", watch_pipeline, store).run_once()
        assert [o.name for o in outcomes] == ["x.png"]
        assert (tmp_path / "records.db").exists() and store.integrity_check() == "ok"


def test_missing_folder_is_a_clear_error(tmp_path: Path, watch_pipeline, store: RecordStore) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Watcher(tmp_path / "nope", "s", watch_pipeline, store)


def test_records_name_absolute_paths_when_the_folder_is_given_relative(
    tmp_path: Path, watch_pipeline, store: RecordStore, pngs, monkeypatch
) -> None:
    (tmp_path / "inbox").mkdir()
    drop(tmp_path / "inbox", "p.png", pngs[0])
    drop(tmp_path / "inbox", "bad.png", b"not a photo")
    monkeypatch.chdir(tmp_path)
    Watcher("inbox", "station-w", watch_pipeline, store).run_once()
    paths = {r["part_id"]: r["image_path"] for r in store.list_inspections()}
    assert paths == {
        "p": str(tmp_path / "inbox" / "processed" / "p.png"),
        "bad": str(tmp_path / "inbox" / "rejected" / "bad.png"),
    }


def test_photos_are_kept_in_the_photo_store_before_the_record(
    tmp_path: Path, inbox: Path, watch_pipeline, store: RecordStore, pngs
) -> None:
    from inspection.store.photos import LocalPhotoStore

    photos = LocalPhotoStore(tmp_path / "photos")
    drop(inbox, "p.png", pngs[0])
    drop(inbox, "bad.png", b"not a photo")
    Watcher(inbox, "station-w", watch_pipeline, store, photos=photos).run_once()
    for record in store.list_inspections():
        assert (
            record["image_key"] and photos.get(record["image_key"]) == Path(record["image_path"]).read_bytes()
        )
