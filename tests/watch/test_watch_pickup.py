"""Pick-up: the watcher scores with a newly promoted bundle from the next batch on; every photo is scored once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.photos import drop

from inspection.bundle import BUNDLES_DIR, PIPELINE_FILE, write_live
from inspection.loadtest import make_photos
from inspection.pipeline import InspectionPipeline
from inspection.store import RecordStore
from inspection.testing import write_tiny_bundle
from inspection.watch import Watcher


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    return make_photos(4, size=64)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_tiny_bundle(tmp_path / "models")


@pytest.fixture
def watcher(tmp_path: Path, root: Path, store: RecordStore) -> Watcher:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    return Watcher(inbox, "station-w", InspectionPipeline.from_dir(root), store, settle_s=0.0, batch_size=2)


def bundles_on_record(store: RecordStore) -> list[str]:
    return [r["model_versions"]["bundle"] for r in reversed(store.list_inspections(limit=1000))]


def test_a_newly_live_bundle_is_picked_up_while_photos_keep_arriving(
    watcher: Watcher, root: Path, store: RecordStore, pngs
) -> None:
    follower = watcher.follow_live(root, interval_s=0.05)
    stop = threading.Event()
    running = threading.Thread(target=watcher.run, kwargs={"poll_s": 0.02, "stop": stop})
    running.start()
    dropped: list[str] = []
    try:

        def drop_some(n: int) -> None:
            for _ in range(n):
                name = f"part-{len(dropped):03d}.png"
                drop(watcher.root, name, pngs[len(dropped) % 4])
                dropped.append(name)
                time.sleep(0.01)

        drop_some(6)
        wait_for(lambda: store.count_inspections() >= 4)
        write_tiny_bundle(root, seed=1, version="tiny-v2")  # a second bundle, made live
        drop_some(6)  # photos keep landing while the new bundle loads
        wait_for(lambda: follower.current == "tiny-v2")
        drop_some(4)
        wait_for(lambda: store.count_inspections() == len(dropped))
    finally:
        stop.set()
        running.join(10)
        follower.stop()
    records = store.list_inspections(limit=1000)
    assert sorted(r["part_id"] + ".png" for r in records) == dropped  # each photo recorded once
    assert sorted(p.name for p in (watcher.root / "processed").iterdir()) == dropped
    versions = bundles_on_record(store)
    assert versions[0] == "tiny-v1" and versions[-1] == "tiny-v2"
    assert versions == sorted(versions)  # once switched, never back
    in_use = {m["task"]: m["meta"]["path"] for m in store.list_model_versions() if m["in_use"]}
    assert "tiny-v2" in in_use["defect"]


def test_the_batch_being_scored_finishes_on_the_old_bundle(
    watcher: Watcher, root: Path, store: RecordStore, pngs
) -> None:
    old = watcher.pipeline
    write_tiny_bundle(root, seed=1, version="tiny-v2")
    new = InspectionPipeline.from_dir(root)
    closed: list[str] = []

    class SwapsMidBatch:
        """The old pipeline, with a promotion landing while it scores its first batch."""

        bundle_version = "tiny-v1"

        def inspect_batch(self, images):
            watcher.replace_pipeline(new)
            return old.inspect_batch(images)

        def close(self) -> None:
            closed.append("old")

    watcher.pipeline = SwapsMidBatch()
    for i in range(4):
        drop(watcher.root, f"part-{i}.png", pngs[i])
    outcomes = watcher.run_once()  # two batches of two
    assert [o.action for o in outcomes] == ["scored"] * 4
    assert bundles_on_record(store) == ["tiny-v1", "tiny-v1", "tiny-v2", "tiny-v2"]
    assert closed == ["old"] and watcher.pipeline is new


def test_a_bundle_that_fails_to_load_is_logged_and_the_old_one_keeps_scoring(
    watcher: Watcher, root: Path, store: RecordStore, pngs, caplog
) -> None:
    broken = root / BUNDLES_DIR / "broken-v2"
    broken.mkdir()
    (broken / PIPELINE_FILE).write_text('{"format_version": 1, "version": "broken-v2"}')  # no models in it
    write_live(root, "broken-v2")
    follower = watcher.follow_live(root, interval_s=0.05)
    try:
        wait_for(lambda: follower.failed is not None)
    finally:
        follower.stop()
    drop(watcher.root, "part-0.png", pngs[0])
    assert [o.action for o in watcher.run_once()] == ["scored"]
    assert bundles_on_record(store) == ["tiny-v1"]
    assert "broken-v2 could not be loaded" in caplog.text
