"""Pick-up: the service scores with a newly promoted bundle without a restart; no request fails or is scored twice."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers.service import ENGINEER_KEYS, STATION_KEYS, upload

from inspection.auth import ApiKeys
from inspection.bundle import BUNDLES_DIR, PIPELINE_FILE, load_bundle, write_live
from inspection.loadtest import LoadReport, make_photos, run_load, spawn_server
from inspection.pipeline import InspectionPipeline
from inspection.service import BatchScorer, ServiceLimits, create_app
from inspection.service.pickup import Pickup
from inspection.store import RecordStore
from inspection.testing import write_tiny_bundle


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def local_pipelines(bundle) -> list[InspectionPipeline]:
    return [InspectionPipeline.from_bundle(bundle, workers=1)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_tiny_bundle(tmp_path / "models")


@pytest.fixture
def app_for(tmp_path: Path, store: RecordStore, photo_store):
    def make(root: Path):
        pipelines = local_pipelines(load_bundle(root))
        return create_app(
            pipelines,
            store,
            ApiKeys.from_mapping(STATION_KEYS, ENGINEER_KEYS),
            photos=photo_store,
            limits=ServiceLimits(max_upload_bytes=2**20),
            pickup=Pickup(root, local_pipelines, interval_s=0.05),
        )

    return make


def test_a_newly_live_bundle_is_picked_up_while_requests_keep_coming(app_for, root: Path, store) -> None:
    pngs = make_photos(4, size=64)
    statuses: list[int] = []
    stop = threading.Event()
    with TestClient(app_for(root)) as client:
        assert client.get("/healthz").json()["bundle"] == "tiny-v1"
        first = upload(client, pngs[0], part="before-0")
        assert first.status_code == 201 and first.json()["model_versions"]["bundle"] == "tiny-v1"

        def station(n: int) -> None:
            i = 0
            while not stop.is_set():
                r = upload(client, pngs[i % 4], part=f"during-{n}-{i}")
                statuses.append(r.status_code)
                i += 1

        threads = [threading.Thread(target=station, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        wait_for(lambda: len(statuses) >= 6)
        write_tiny_bundle(root, seed=1, version="tiny-v2")  # a second bundle, made live
        wait_for(lambda: client.get("/healthz").json()["bundle"] == "tiny-v2")
        seen = len(statuses)
        wait_for(lambda: len(statuses) >= seen + 6)  # requests keep flowing after the switch
        stop.set()
        for t in threads:
            t.join()
        after = upload(client, pngs[1], part="after-0")
        assert after.status_code == 201 and after.json()["model_versions"]["bundle"] == "tiny-v2"
        health = client.get("/healthz").json()
        assert health["model_versions"]["noise"] and client.get("/readyz").status_code == 200

    assert set(statuses) == {201}, statuses  # no request failed across the switch
    records = store.list_inspections(limit=1000)
    assert len(records) == len(statuses) + 2  # each request recorded once, none twice
    assert len({(r["part_id"], r["image_sha256"]) for r in records}) == len(records)
    assert {r["model_versions"]["bundle"] for r in records} == {"tiny-v1", "tiny-v2"}
    in_use = {m["task"]: m["meta"]["path"] for m in store.list_model_versions() if m["in_use"]}
    assert "tiny-v2" in in_use["defect"]  # the new bundle's models are on record


def test_a_bundle_that_fails_to_load_is_logged_and_the_old_one_keeps_serving(
    app_for, root: Path, caplog
) -> None:
    broken = root / BUNDLES_DIR / "broken-v2"
    broken.mkdir()
    (broken / PIPELINE_FILE).write_text('{"format_version": 1, "version": "broken-v2"}')  # no models in it
    pngs = make_photos(1, size=64)
    with TestClient(app_for(root)) as client:
        write_live(root, "broken-v2")
        follower = client.app.state.pickup
        wait_for(lambda: follower.failed is not None)
        r = upload(client, pngs[0], part="still-v1")
        assert r.status_code == 201 and r.json()["model_versions"]["bundle"] == "tiny-v1"
        assert client.get("/healthz").json()["bundle"] == "tiny-v1"
        assert client.get("/readyz").status_code == 200
        write_tiny_bundle(root, seed=1, version="tiny-v2")  # fixed by promoting another: picked up at once
        wait_for(lambda: client.get("/healthz").json()["bundle"] == "tiny-v2")
    assert "broken-v2 could not be loaded" in caplog.text


def test_only_a_models_root_is_followed_never_a_pinned_bundle_folder(root: Path) -> None:
    from inspection.promotion import live_root

    assert live_root(root / BUNDLES_DIR / "tiny-v1") is None and live_root(root) == root


def test_the_scorer_swaps_between_batches_and_closes_the_old_pipelines(pipeline, photos) -> None:
    """A batch being scored finishes on the old pipeline; queued photos go to the new one; none twice."""
    scored: list[tuple[str, int]] = []
    entered = threading.Event()
    release = threading.Event()

    class Tagged:
        model_versions = pipeline.model_versions

        def __init__(self, name: str, hold: bool = False) -> None:
            self.name, self.hold, self.closed = name, hold, False

        @property
        def bundle_version(self) -> str:
            return self.name

        def inspect_batch(self, images):
            entered.set()
            if self.hold:
                release.wait(10)
            scored.extend((self.name, len(i)) for i in images)
            return pipeline.inspect_batch(images)

        def close(self) -> None:
            self.closed = True

    old, new = Tagged("old", hold=True), Tagged("new")
    scorer = BatchScorer([old], max_batch=2)

    async def main():
        first = asyncio.ensure_future(scorer.score(photos.png))
        await asyncio.to_thread(entered.wait, 10)  # the old pipeline is scoring the first photo
        rest = [asyncio.ensure_future(scorer.score(d)) for d in (photos.png2, photos.jpeg, photos.rgb)]
        swap = asyncio.ensure_future(asyncio.to_thread(scorer.replace_pipelines, [new]))
        await asyncio.sleep(0.1)
        assert not swap.done() and not old.closed  # waits for the batch in flight
        release.set()
        return await first, await asyncio.gather(*rest), await swap

    try:
        first, rest, swapped = asyncio.run(main())
    finally:
        scorer.close()
    assert swapped and old.closed and new.closed  # closed by the swap, and by close()
    assert [name for name, _ in scored] == ["old", "new", "new", "new"]  # each photo once
    assert scorer.bundle_version == "new"
    assert first.verdict in ("ok", "defective") and all(r.verdict in ("ok", "defective") for r in rest)


@pytest.mark.slow
def test_serve_picks_up_a_promoted_bundle_in_new_scoring_processes(tmp_path: Path, root: Path) -> None:
    """The real server: ``inspection serve --models ROOT`` follows LIVE; load across the switch has 0 failures."""
    pngs = make_photos(4, size=64)
    reports: list[LoadReport] = []
    switched = threading.Event()
    with spawn_server(tmp_path / "server", models=root, extra_args=["--pickup-s", "0.2"]) as server:

        def stations() -> None:  # rounds of load until the switch is seen, then one more
            while True:
                done = switched.is_set()
                reports.append(
                    run_load(
                        server.url,
                        server.api_key,
                        server.station,
                        clients=3,
                        requests=5,
                        photos=pngs,
                        db_url=server.db_url,
                    )
                )
                if done:
                    return

        loader = threading.Thread(target=stations)
        loader.start()
        wait_for(lambda: len(reports) >= 1)
        write_tiny_bundle(root, seed=1, version="tiny-v2")
        wait_for(lambda: httpx.get(f"{server.url}/healthz").json()["bundle"] == "tiny-v2", timeout_s=120)
        switched.set()
        loader.join(120)
    for r in reports:  # no request failed, none was retried, one record each
        assert r.passed and r.retried == 0 and r.status_counts == {"201": r.total_requests}, r.summary()
    with RecordStore(server.db_url, migrate=False) as store:
        records = store.list_inspections(limit=1000)
    assert len(records) == sum(r.total_requests for r in reports)  # each request recorded once
    assert {r["model_versions"]["bundle"] for r in records} == {"tiny-v1", "tiny-v2"}
    last_round = reports[-1].run_id
    assert {r["model_versions"]["bundle"] for r in records if r["part_id"].startswith(last_round)} == {
        "tiny-v2"
    }
