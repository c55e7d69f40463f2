"""The service as stations meet it: a real ``inspection serve`` (uvicorn) on loopback, killed and restarted."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from inspection.loadtest import free_port, make_photos, run_load, spawn_server
from inspection.store import RecordStore
from inspection.store.photos import LocalPhotoStore, sha256_hex


@pytest.mark.slow
def test_load_8_clients_x_200_requests(tmp_path: Path, tiny_models: Path) -> None:
    """The issue's load figure: N=8, M=200, zero 5xx, exactly N x M records."""
    with spawn_server(tmp_path, models=tiny_models) as server:
        report = run_load(
            server.url, server.api_key, server.station, clients=8, requests=200, db_url=server.db_url
        )
    print(report.summary())
    assert report.passed and report.records_in_store == 1600, report.summary()


def post_parts(
    url: str,
    key: str,
    station: str,
    parts: list[str],
    photos: list[bytes],
    confirmed: dict[str, int],
    failed: list[str],
    stop: threading.Event,
) -> None:
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as http:
        for part in parts:
            if stop.is_set():
                failed.append(part)
                continue
            photo = photos[int(part.rsplit("-", 1)[1]) % len(photos)]
            try:
                r = http.post(
                    "/v1/inspections",
                    data={"station_id": station, "part_id": part},
                    files={"image": ("p.png", photo, "image/png")},
                )
            except httpx.HTTPError:
                failed.append(part)
                continue
            if r.status_code in (200, 201):
                confirmed[part] = r.json()["id"]
            else:
                failed.append(part)


def test_sigkill_mid_batch_loses_nothing_duplicates_nothing_and_restarts_under_load(
    tmp_path: Path, tiny_models: Path
) -> None:
    parts = [f"crash-{i:04d}" for i in range(100)]
    photos = make_photos(8, size=96)
    port, key, station = free_port(), "crash-test-key", "station-c"
    confirmed: dict[str, int] = {}
    failed: list[str] = []
    stop = threading.Event()
    with spawn_server(tmp_path, models=tiny_models, port=port, api_key=key, station=station) as server:
        clients = [
            threading.Thread(
                target=post_parts,
                args=(server.url, key, station, parts[i::4], photos, confirmed, failed, stop),
            )
            for i in range(4)
        ]
        for t in clients:
            t.start()
        while len(confirmed) < 30 and any(t.is_alive() for t in clients):
            threading.Event().wait(0.02)
        server.process.kill()  # SIGKILL while 4 clients have requests in flight
        server.process.wait()
        stop.set()
        for t in clients:
            t.join()
    assert 30 <= len(confirmed) < len(parts), "the kill must land in the middle of the batch"
    killed_with = dict(confirmed)

    with RecordStore(server.db_url) as store:
        assert store.integrity_check() == "ok"
        for part, rid in killed_with.items():  # everything a station was told about survived the kill
            rec = store.get_inspection(rid)
            assert rec is not None and rec["part_id"] == part and rec["status"] == "ok"

    # restart on the same store; stations re-send everything they are not sure about (and some they are)
    with spawn_server(tmp_path, models=tiny_models, port=port, api_key=key, station=station) as server:
        retry_confirmed: dict[str, int] = {}
        retry_failed: list[str] = []
        post_parts(server.url, key, station, parts, photos, retry_confirmed, retry_failed, threading.Event())
        # and the restarted server takes a concurrent load run cleanly (one server start serves both checks)
        report = run_load(
            server.url, key, station, clients=4, requests=10, photos=photos, db_url=server.db_url
        )
        # an upload over the limit is refused from its Content-Length by the real server, which stays up
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=60) as http:
            big = http.post(
                "/v1/inspections",
                data={"station_id": station, "part_id": "huge"},
                files={"image": ("huge.png", photos[0] + b"\0" * (21 * 1024 * 1024), "image/png")},
            )
            assert big.status_code == 413 and big.json()["reason"] == "upload_too_large", big.text
            empty = http.post("/v1/inspections")
            assert empty.status_code == 400 and empty.json()["reason"] == "empty_body"
            assert http.get("/healthz").status_code == 200
    assert report.status_counts == {"201": 40} and report.records_in_store == 40, report.summary()
    assert report.passed and 0 < report.p50_ms <= report.p99_ms and report.throughput_rps > 0
    assert not retry_failed
    for part, rid in killed_with.items():
        assert retry_confirmed[part] == rid  # a re-send returns the stored record, not a new one

    with RecordStore(server.db_url) as store:
        assert store.integrity_check() == "ok"
        records = store.list_inspections(part_id_prefix="crash-", limit=1000)
        per_part = Counter(r["part_id"] for r in records)
        assert set(per_part) == set(parts), "a part was lost"
        assert max(per_part.values()) == 1, "a part was stored twice"
        assert store.count_inspections(part_id_prefix="crash-") == len(parts)
        assert store.count_inspections(status="rejected") == 2
        kept = LocalPhotoStore(tmp_path / "photos")
        for rec in records:  # every verdict traces back to its photo
            assert sha256_hex(kept.get(rec["image_key"])) == rec["image_sha256"]


def test_load_against_no_server_says_why_every_request_failed() -> None:
    report = run_load(
        f"http://127.0.0.1:{free_port()}", "key", "s1", clients=1, requests=2, photos=make_photos(1)
    )
    assert report.transport_errors == 2 and not report.passed
    assert report.notes and report.notes[0].startswith("transport error (2x): ConnectError")
    assert "no request was answered" in report.summary() and "nan" not in report.summary()
