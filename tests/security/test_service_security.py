"""The scoring service under attack, overload and failing stores: one test per finding of the security review.

Faults are injected (a database error, ENOSPC from the photo store), not mounted. Each test names its finding.
"""

from __future__ import annotations

import asyncio
import errno
import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers.service import ENGINEER, H1, H2, asgi_post, png, upload
from PIL import Image
from sqlalchemy.exc import OperationalError

from inspection.data import synth_casting
from inspection.imageio import DEFAULT_MAX_PIXELS, decode_image
from inspection.results import InspectionResult, Rejection
from inspection.service import BatchScorer
from inspection.store import RecordStore
from inspection.store.photos import LocalPhotoStore

REPO = Path(__file__).resolve().parents[2]


class GatedPipeline:
    """Wraps the real pipeline: counts the photos it is given and can hold the worker until released."""

    def __init__(self, inner: Any, *, hold: bool = False) -> None:
        self.inner = inner
        self.model_versions = inner.model_versions
        self.seen: list[int] = []
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold:
            self.release.set()

    def inspect_batch(self, images: list[bytes]) -> list[InspectionResult | Rejection]:
        self.seen.append(len(images))
        self.started.set()
        self.release.wait(30)
        return self.inner.inspect_batch(images)


# -- 1 (high): the body is read before the key is checked; no cap on concurrent uploads ----------------------


def test_a_request_without_a_valid_key_is_refused_before_any_of_its_body_is_read(client: TestClient) -> None:
    app = client.app
    body = [b"x" * (1 << 20)] * 3
    for headers, reason in (({}, "missing_api_key"), ({"X-API-Key": "guess"}, "unauthorized")):
        r = asgi_post(app, {**headers, "content-type": "multipart/form-data; boundary=b"}, body)
        assert r.status == 401 and json.loads(r.body)["reason"] == reason
        assert r.body_reads == 0  # not one chunk of the 3 MB was asked for


def test_uploads_beyond_the_concurrency_cap_get_503_before_their_body_is_read(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_uploads=2)
    client.app.state.service.uploads = 2  # two uploads in progress
    r = asgi_post(client.app, {**H1, "content-type": "multipart/form-data; boundary=b"}, [b"x" * 1000])
    assert r.status == 503 and r.headers["retry-after"] and r.body_reads == 0
    body = json.loads(r.body)
    assert body["reason"] == "overloaded" and body["recorded"] is False and body["id"] is None


def test_uploads_beyond_the_memory_budget_get_503_before_their_body_is_read(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_inflight_mb=1)
    r = asgi_post(client.app, {**H1, "content-type": "multipart/form-data; boundary=b"}, [b"x" * 1_500_000])
    assert r.status == 503 and r.body_reads == 0 and json.loads(r.body)["reason"] == "overloaded"
    assert client.app.state.service.inflight_bytes == 0  # nothing stays reserved


@pytest.mark.slow
def test_thirty_keyless_19mb_uploads_leave_the_server_memory_flat(tmp_path: Path, tiny_models: Path) -> None:
    import httpx

    from inspection.loadtest import spawn_server

    def rss_mb(pid: int) -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    big = b"\0" * (19 * 1024 * 1024)
    statuses: list[int] = []

    def attack(url: str) -> None:
        try:
            r = httpx.post(
                url + "/v1/inspections",
                data={"station_id": "load-station", "part_id": "p"},
                files={"image": ("p.png", big, "image/png")},
                timeout=60,
            )
            statuses.append(r.status_code)
        except httpx.HTTPError:
            statuses.append(
                0
            )  # the server closed the connection after answering 401: the body was never read

    with spawn_server(tmp_path, models=tiny_models) as server:
        before = rss_mb(server.process.pid)
        threads = [threading.Thread(target=attack, args=(server.url,)) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = rss_mb(server.process.pid)
    assert all(s in (401, 429, 0) for s in statuses) and statuses.count(401) >= 1, statuses
    print(f"server RSS {before:.0f} MB before, {after:.0f} MB after 30 keyless 19 MB uploads")
    assert after - before < 100, f"RSS grew from {before:.0f} to {after:.0f} MB"


# -- 3: any station key read every station's records, server paths included -------------------------------


def test_a_station_key_reads_only_its_own_records_and_never_a_server_path(
    client: TestClient, photo: bytes
) -> None:
    theirs = upload(client, photo, part="P-2", station="station-2", headers=H2).json()
    mine = upload(client, photo, part="P-1").json()
    assert client.get("/v1/inspections", headers=H1).json()["total"] == 1
    assert client.get(f"/v1/inspections/{theirs['id']}", headers=H1).status_code == 404
    assert client.get("/v1/inspections", params={"station_id": "station-2"}, headers=H1).status_code == 403
    everyone = client.get("/v1/inspections", headers=ENGINEER).json()
    assert (
        everyone["total"] == 2
        and client.get(f"/v1/inspections/{theirs['id']}", headers=ENGINEER).status_code == 200
    )
    for record in [theirs, mine, *everyone["items"]]:
        assert not {"image_path", "client_address", "dedup_key"} & set(record)


# -- 4: unauthenticated attempts were stored under the claimed station, with no rate limit ------------------


def test_unauthenticated_attempts_are_stored_apart_and_limited_per_address(
    client: TestClient, store: RecordStore, photo: bytes
) -> None:
    codes = [
        upload(client, photo, part=f"X-{i}", headers={"X-API-Key": "guess"}).status_code for i in range(25)
    ]
    assert codes == [401] * 20 + [429] * 5
    assert store.count_inspections(station_id="station-1") == 0  # the claim is never read, never counted
    attempts = store.list_inspections(station_id="(unauthenticated)", limit=100)
    assert len(attempts) == 20 and {a["client_address"] for a in attempts} == {"testclient"}
    assert all(a["part_id"] is None and a["image_sha256"] is None for a in attempts)
    # over its limit, a client gets 429 whatever key it sends, so a right guess cannot be told from a wrong one
    assert upload(client, photo, part="X-ok").status_code == 429
    assert client.get("/v1/inspections", headers=H1).status_code == 429


def test_reading_with_wrong_keys_is_limited_too(client: TestClient) -> None:
    codes = [
        client.get("/v1/inspections", headers={"X-API-Key": f"guess-{i}"}).status_code for i in range(22)
    ]
    assert codes == [401] * 20 + [429] * 2


def test_the_attempt_limit_groups_ipv6_by_64_and_caps_everyone_together() -> None:
    from inspection.service.deps import AttemptLimiter

    limiter = AttemptLimiter(2, total_per_minute=5)
    assert [limiter.allow(f"2001:db8::{i}", now=0) for i in range(3)] == [True, True, False]  # one /64
    assert [limiter.allow(f"10.0.0.{i}", now=0) for i in range(4)] == [True, True, True, False]  # 5 in all
    assert limiter.allow("10.0.0.9", now=61)  # a minute later


# -- 5: /metrics used the HTTP method as a label unchecked --------------------------------------------------


def test_made_up_methods_do_not_mint_metric_series(client: TestClient) -> None:
    for i in range(50):
        client.request(f"FOO{i}", "/v1/inspections")
    text = client.get("/metrics", headers=ENGINEER).text
    series = [line for line in text.splitlines() if line.startswith("inspection_http_requests_total{")]
    assert not any("FOO" in line for line in series)
    assert any('method="other"' in line and " 50.0" in line for line in series)


# -- 6 and 7: huge photos held the only scoring thread; overload got no 503; gone clients were still scored --


def big_png(width: int = 8000, height: int = 2000) -> bytes:
    photo = np.zeros((height, width), np.uint8)
    photo[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 200  # a part, not a blank frame
    return png(photo)  # 16 MP, about 16 KB


def test_a_queue_full_of_huge_photos_answers_503_with_retry_after_and_records_nothing(
    make_client: Callable[..., TestClient], pipeline: Any, store: RecordStore, photo: bytes
) -> None:
    gated = GatedPipeline(pipeline, hold=True)
    client = make_client(gated, max_queued_pixels=20_000_000)
    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(upload(client, photo, part="A").status_code))
    first.start()
    assert gated.started.wait(10)  # the worker is busy with A
    second = threading.Thread(target=lambda: answers.append(upload(client, big_png(), part="B").status_code))
    second.start()
    deadline = time.monotonic() + 10
    while client.app.state.service.scorer.queued < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    r = upload(client, big_png(), part="C")  # 16 MP more would pass the 20 MP budget
    assert r.status_code == 503 and r.headers["retry-after"] and r.json()["reason"] == "overloaded"
    assert r.json()["recorded"] is False and store.count_inspections(part_id="C") == 0
    gated.release.set()
    first.join()
    second.join()
    assert sorted(answers) == [201, 201]


def test_a_photo_whose_client_went_away_while_queued_is_never_scored(pipeline: Any, photo: bytes) -> None:
    gated = GatedPipeline(pipeline, hold=True)
    scorer = BatchScorer([gated], max_batch=8)

    async def main() -> None:
        busy = asyncio.ensure_future(scorer.score(photo))
        while not gated.started.is_set():
            await asyncio.sleep(0.01)
        abandoned = asyncio.ensure_future(scorer.score(photo))
        await asyncio.sleep(0.05)
        abandoned.cancel()  # what the route does when the client disconnects
        await asyncio.sleep(0.05)
        assert scorer.queued == 0  # it left the queue at once: a client that went away holds no room
        gated.release.set()
        await busy
        assert (await scorer.score(photo)).verdict in ("ok", "defective")

    try:
        asyncio.run(main())
    finally:
        scorer.close()
    assert gated.seen == [1, 1]  # the abandoned photo was dropped from the queue, not scored


def test_a_client_that_goes_away_is_counted_not_a_500_and_nothing_is_stored(
    client: TestClient, store: RecordStore, photo: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    app = client.app

    async def run() -> int:
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}  # gone before the body arrived

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/v1/inspections", "raw_path": b"/v1/inspections", "query_string": b"", "root_path": "",
            "headers": [(b"x-api-key", H1["X-API-Key"].encode()), (b"content-type", b"multipart/form-data; boundary=b")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        await app(scope, receive, send)
        return status

    assert asyncio.run(run()) == 499
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    metrics = client.get("/metrics", headers={"Authorization": "Bearer key-engineer-alice"}).text
    assert 'code="499"' in metrics and "inspection_abandoned_total 1.0" in metrics
    assert store.count_inspections() == 0


# -- 8: disk full and database down --------------------------------------------------------------------------


def test_database_down_answers_503_with_a_reason_and_never_reports_a_record(
    client: TestClient, store: RecordStore, photo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(**_: Any) -> Any:
        raise OperationalError("INSERT ...", {}, Exception("database or disk is full"))

    monkeypatch.setattr(store, "save_inspection", full)
    good = upload(client, photo, part="G-1")
    bad = upload(client, b"not a photo at all", part="B-1")
    for r in (good, bad):
        assert r.status_code == 503 and r.headers["retry-after"], r.text
        assert r.json()["reason"] == "store_unavailable" and r.json()["recorded"] is False
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["database"] == "unavailable"
    assert "disk is full" not in ready.text  # no error text to callers without a key
    assert client.get("/healthz").status_code == 200  # alive, not ready
    monkeypatch.undo()
    again = upload(client, photo, part="G-1")  # the station's retry goes through once the disk has room
    assert again.status_code == 201 and store.count_inspections() == 1
    assert client.get("/readyz").status_code == 200


def test_a_full_photo_store_refuses_the_photo_before_it_is_scored(
    make_client: Callable[..., TestClient], pipeline: Any, store: RecordStore, photo: bytes, tmp_path: Path
) -> None:
    class FullDisk(LocalPhotoStore):
        def put(self, data: bytes, sha256: str | None = None) -> str:
            raise OSError(errno.ENOSPC, "No space left on device")

        def check_writable(self) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    gated = GatedPipeline(pipeline)
    client = make_client(gated, photos=FullDisk(tmp_path / "full"))
    r = upload(client, photo, part="F-1")
    assert (
        r.status_code == 503
        and r.json()["reason"] == "photo_store_unavailable"
        and r.json()["recorded"] is False
    )
    assert gated.seen == [] and store.count_inspections() == 0  # not scored, so no verdict went unrecorded
    ready = client.get("/readyz").json()
    assert ready["photos"] == "unavailable" and ready["database"] == "ok"


# -- lows ------------------------------------------------------------------------------------------------------


def test_out_of_range_ids_offsets_and_dates_are_422(client: TestClient) -> None:
    assert client.get("/v1/inspections/99999999999999999999", headers=H1).status_code == 422
    assert client.get("/v1/inspections", params={"offset": 10**12}, headers=H1).status_code == 422
    r = client.get("/v1/inspections", params={"since": "0001-01-01T00:00:00+14:00"}, headers=H1)
    assert r.status_code == 422 and "out of range" in r.text
    assert (
        client.get("/v1/inspections", params={"until": "9999-12-31T23:59:59-14:00"}, headers=H1).status_code
        == 422
    )


def test_a_stalled_upload_times_out_with_408(make_client: Callable[..., TestClient]) -> None:
    client = make_client(idle_timeout_s=0.2)
    t0 = time.monotonic()
    r = asgi_post(
        client.app, {**H1, "content-type": "multipart/form-data; boundary=b"}, [b"--b\r\n"], stall=True
    )
    assert r.status == 408 and json.loads(r.body)["reason"] == "request_timeout"
    assert time.monotonic() - t0 < 5


def test_the_documented_pixel_limit_is_the_enforced_one() -> None:
    docs = (REPO / "docs" / "service.md").read_text()
    assert f"{DEFAULT_MAX_PIXELS:,}" in docs and "40 M" not in docs and "40M" not in docs


def multi_frame(fmt: str) -> bytes:
    frames = [Image.fromarray(np.full((64, 64), v, np.uint8)) for v in (0, 128, 255)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:])
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_a_multi_frame_photo_is_refused_not_judged_by_its_first_frame(client: TestClient, fmt: str) -> None:
    r = upload(client, multi_frame(fmt), part=f"M-{fmt}")
    assert (
        r.status_code == 422
        and r.json()["reason"] == "multi_frame"
        and "several frames" in r.json()["detail"]
    )
    assert r.json()["recorded"] is True


def test_a_duplicate_form_field_is_refused(client: TestClient, photo: bytes) -> None:
    r = client.post(
        "/v1/inspections",
        data={"station_id": "station-1", "part_id": ["D-1", "D-2"]},
        files={"image": ("p.png", photo, "image/png")},
        headers=H1,
    )
    assert (
        r.status_code == 400 and r.json()["reason"] == "duplicate_field" and "part_id" in r.json()["detail"]
    )


def test_nan_pixels_are_bad_pixels_not_corrupt(client: TestClient) -> None:
    values = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    values[5, 5] = np.nan
    buf = io.BytesIO()
    Image.fromarray(values, mode="F").save(buf, "TIFF")
    r = upload(client, buf.getvalue(), part="NaN-1")
    assert r.status_code == 422 and r.json()["reason"] == "bad_pixels"


def test_a_read_only_database_at_start_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inspection.cli import main

    RecordStore(f"sqlite:///{tmp_path / 'ro.db'}").close()
    url = f"sqlite:///file:{tmp_path / 'ro.db'}?mode=ro&uri=true"
    code = main(["serve", "--db", url, "--photos", str(tmp_path / "ph"), "--port", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot be written" in err and "readonly" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_opposite_verdicts_on_one_part_are_marked_as_a_conflict(store: RecordStore) -> None:
    def save(station: str, sha: str, verdict: str) -> int:
        p = 0.8 if verdict == "defective" else 0.1
        result = InspectionResult("clean", 0.9, {"clean": 0.9}, "identity", p, 0.5, verdict)
        return store.save_inspection(
            station_id=station, part_id="P-9", image_sha256=sha * 64, image_path=None, result=result
        ).id

    first, same = save("s1", "a", "ok"), save("s1", "b", "ok")
    assert not store.get_inspection(first)["conflict"] and not store.get_inspection(same)["conflict"]
    elsewhere = save("s2", "c", "defective")  # another station's verdict is not compared (nor revealed)
    assert not any(store.get_inspection(i)["conflict"] for i in (first, same, elsewhere))
    other = save("s1", "d", "defective")
    assert all(store.get_inspection(i)["conflict"] for i in (first, same, other))
    assert store.count_inspections(conflict=True) == 3 and not store.get_inspection(elsewhere)["conflict"]


def test_a_huge_jpeg_is_decoded_at_reduced_size_where_the_format_allows() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (2000, 2000), dtype=np.uint8)).save(buf, "JPEG")
    decoded = decode_image(buf.getvalue(), max_pixels=1_000_000)
    assert decoded.gray.shape == (1000, 1000) and decoded.conversion.endswith("_draft2")
    with pytest.raises(Rejection, match="pixels in all"):  # a PNG that large cannot be reduced while decoding
        decode_image(png(np.zeros((2000, 2000), np.uint8)), max_pixels=1_000_000)


def test_a_refused_photo_sent_again_gets_its_refusal_back_unscored(
    make_client: Callable[..., TestClient], pipeline: Any, store: RecordStore
) -> None:
    gated = GatedPipeline(pipeline)
    client = make_client(gated)
    tiny = png(np.zeros((8, 8), np.uint8))
    first, again = upload(client, tiny, part="T-1"), upload(client, tiny, part="T-1")
    assert first.status_code == again.status_code == 422 and again.json()["reason"] == "too_small"
    assert again.json()["id"] == first.json()["id"] and again.json()["recorded"] is True
    assert gated.seen == [1] and store.count_inspections() == 1  # scored once, stored once


def test_an_upload_whose_client_hangs_up_while_it_waits_is_not_scored_or_stored(
    make_client: Callable[..., TestClient], pipeline: Any, store: RecordStore, photo: bytes
) -> None:
    import httpx

    gated = GatedPipeline(pipeline, hold=True)
    client = make_client(gated)
    busy = threading.Thread(target=lambda: upload(client, photo, part="BUSY"))
    busy.start()
    assert gated.started.wait(10)  # the scorer is held on BUSY; the next photo waits in the queue
    other = png(synth_casting(np.random.default_rng(7), 96, "burr"))
    form = httpx.Request("POST", "http://x/", data={"station_id": "station-1", "part_id": "GONE"},
                         files={"image": ("p.png", other, "image/png")})  # fmt: skip
    body = form.read()
    r = asgi_post(client.app, {**H1, "content-type": form.headers["content-type"]}, [body], gone_after_s=0.3)
    gated.release.set()
    busy.join()
    assert r.status == 499 and store.count_inspections(part_id="GONE") == 0
    assert gated.seen == [1]  # only BUSY was scored: the photo of the client that left was dropped unscored
