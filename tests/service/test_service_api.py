"""The scoring service's HTTP behaviour, in process (the real app, store and tiny models; no mocks)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from inspection.auth import ApiKeys, AuthConfigError, hash_key, load_api_keys, read_config
from inspection.store import RecordStore

H1 = {"X-API-Key": "key-one-1234"}


def post(
    client: TestClient,
    image: bytes | None,
    *,
    station: str | None = "station-1",
    part: str | None = "part-1",
    headers: dict[str, str] | None = None,
    filename: str = "photo.png",
):
    data = {k: v for k, v in (("station_id", station), ("part_id", part)) if v is not None}
    files = {"image": (filename, image, "application/octet-stream")} if image is not None else None
    return client.post("/v1/inspections", data=data, files=files, headers=H1 if headers is None else headers)


def test_scores_a_photo_stores_the_record_and_keeps_the_photo(
    client: TestClient, store: RecordStore, photo_store, photos
) -> None:
    r = post(client, photos.png, part="P-0001")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["verdict"] in ("defective", "ok") and 0.0 <= body["defect_probability"] <= 1.0
    assert body["noise_type"] in ("clean", "gaussian", "salt_pepper", "periodic")
    assert body["denoiser"] and body["status"] == "ok" and body["duplicate"] is False
    assert r.headers["location"] == f"/v1/inspections/{body['id']}"
    rec = store.get_inspection(body["id"])
    assert rec["station_id"] == "station-1" and rec["part_id"] == "P-0001" and rec["source"] == "api"
    assert rec["image_sha256"] == hashlib.sha256(photos.png).hexdigest()
    # the audit trail leads to the exact bytes, by a key relative to the photo store (no server path)
    assert photo_store.get(rec["image_key"]) == photos.png and rec["image_key"].endswith(".png")
    assert rec["image_path"] is None and "image_path" not in body and body["image_key"] == rec["image_key"]
    assert set(rec["timings_ms"]) >= {"noise", "denoise", "defect", "total"}
    assert set(rec["model_versions"]) >= {"noise", "defect"} and rec["threshold"] is not None

    got = client.get(f"/v1/inspections/{body['id']}", headers=H1)
    assert got.status_code == 200 and got.json()["verdict"] == body["verdict"]
    assert client.get("/v1/inspections/999999", headers=H1).status_code == 404


def test_resending_the_same_part_and_photo_returns_the_stored_record(
    client: TestClient, store: RecordStore, photos
) -> None:
    first = post(client, photos.png, part="P-7")
    again = post(client, photos.png, part="P-7")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    other_photo = post(client, photos.png2, part="P-7")
    assert other_photo.status_code == 201 and other_photo.json()["id"] != first.json()["id"]
    assert store.count_inspections() == 2


BAD_INPUTS = {
    # name: (how to post it, expected status, reason code, words the message must contain)
    "empty body": (lambda c, p: c.post("/v1/inspections", headers=H1), 400, "empty_body", "empty"),
    "empty photo": (lambda c, p: post(c, b""), 400, "empty", "0 bytes"),
    "truncated jpeg": (lambda c, p: post(c, p.truncated_jpeg, filename="a.jpg"), 422, "corrupt", "truncated"),
    "1x1 image": (lambda c, p: post(c, p.tiny), 422, "too_small", "1x1"),
    "decompression bomb": (lambda c, p: post(c, p.bomb), 422, "too_large", "pixels"),
    "text posing as jpg": (
        lambda c, p: post(c, p.text, filename="part.jpg"),
        415,
        "not_an_image",
        "not a readable image",
    ),
    "missing part_id": (lambda c, p: post(c, p.png, part=None), 400, "missing_field", "part_id"),
    "missing station_id": (lambda c, p: post(c, p.png, station=None), 400, "missing_field", "station_id"),
    "missing image": (lambda c, p: post(c, None), 400, "missing_field", "image"),
    "oversized field": (lambda c, p: post(c, p.png, part="x" * 10_000), 400, "field_too_large", "4096 bytes"),
    "long part id": (lambda c, p: post(c, p.png, part="x" * 200), 422, "bad_part_id", "1-128"),
    "oversized upload": (
        lambda c, p: post(c, p.png + b"\0" * (3 * 1024 * 1024)),
        413,
        "upload_too_large",
        "limit",
    ),
    "path-like part id": (
        lambda c, p: post(c, p.png, part="../../etc/passwd"),
        422,
        "bad_part_id",
        "no slashes",
    ),
    "slash part id": (lambda c, p: post(c, p.png, part="lot/7"), 422, "bad_part_id", "not valid"),
    "wrong api key": (
        lambda c, p: post(c, p.png, headers={"X-API-Key": "guess"}),
        401,
        "unauthorized",
        "X-API-Key",
    ),
    "missing api key": (lambda c, p: post(c, p.png, headers={}), 401, "missing_api_key", "X-API-Key"),
    "writing as another station": (
        lambda c, p: post(c, p.png, station="station-2"),
        403,
        "station_mismatch",
        "station-2",
    ),
    "not multipart": (
        lambda c, p: c.post(
            "/v1/inspections", content=b"{}", headers={**H1, "Content-Type": "application/json"}
        ),
        400,
        "bad_multipart",
        "multipart/form-data",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_gets_a_4xx_naming_the_problem_and_a_rejected_record(
    case: str, client: TestClient, store: RecordStore, photos: SimpleNamespace
) -> None:
    send, status, reason, words = BAD_INPUTS[case]
    r = send(client, photos)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "rejected" and body["reason"] == reason
    assert words in body["detail"]
    rec = store.get_inspection(body["id"])  # the refusal is on record
    assert rec is not None and rec["status"] == "rejected" and rec["reason"] == reason
    assert rec["message"] == body["detail"] and rec["verdict"] is None
    # and the server is still up and scoring
    assert client.get("/healthz").status_code == 200
    assert post(client, photos.png, part="after-" + reason).status_code == 201


def test_rejected_photo_bytes_are_kept_for_audit(
    client: TestClient, store: RecordStore, photo_store, photos
) -> None:
    r = post(client, photos.truncated_jpeg, part="T-1", filename="T-1.png")
    rec = store.get_inspection(r.json()["id"])
    assert rec["image_sha256"] == hashlib.sha256(photos.truncated_jpeg).hexdigest()
    assert photo_store.get(rec["image_key"]) == photos.truncated_jpeg
    assert rec["image_key"].endswith(".jpg")  # named by content, not by upload
    r = post(client, photos.text, part="T-2", filename="T-2.jpg")
    assert store.get_inspection(r.json()["id"])["image_key"].endswith(".bin")
    # a retried bad frame is kept once; an unauthenticated attempt reads and keeps nothing of the body
    assert post(client, photos.truncated_jpeg, part="T-1").json()["id"] == rec["id"]
    r = post(client, photos.png, part="T-3", headers={"X-API-Key": "nope"})
    rec = store.get_inspection(r.json()["id"])
    assert rec["image_key"] is None and rec["image_sha256"] is None and rec["part_id"] is None
    assert rec["station_id"] == "(unauthenticated)" and rec["client_address"]


@pytest.mark.parametrize(
    ("name", "conversion"), [("png16", "gray16"), ("rgb", "rgb"), ("rgba", "rgba"), ("cmyk", "cmyk")]
)
def test_valid_but_unusual_photos_are_scored_and_the_conversion_noted(
    name: str, conversion: str, client: TestClient, store: RecordStore, photos
) -> None:
    r = post(client, getattr(photos, name), part=f"odd-{name}")
    assert r.status_code == 201, r.text
    assert r.json()["conversion"] == conversion
    assert store.get_inspection(r.json()["id"])["conversion"] == conversion


def test_listing_filters_and_needs_a_key(client: TestClient, photos) -> None:
    assert post(client, photos.png, part="L-1").status_code == 201
    assert post(client, photos.png2, part="L-2").status_code == 201
    assert (
        post(
            client, photos.png, part="L-3", headers={"X-API-Key": "key-two-5678"}, station="station-2"
        ).status_code
        == 201
    )
    post(client, photos.text, part="L-4")
    assert client.get("/v1/inspections").status_code == 401
    listing = client.get(
        "/v1/inspections", params={"station_id": "station-1", "status": "ok"}, headers=H1
    ).json()
    assert listing["total"] == 2 and {r["part_id"] for r in listing["items"]} == {"L-1", "L-2"}
    # a station reads its own records only; an engineer reads every station's
    assert client.get("/v1/inspections", params={"part_id": "L-3"}, headers=H1).json()["total"] == 0
    engineer = {"X-API-Key": "key-engineer-alice"}
    assert (
        client.get("/v1/inspections", params={"part_id": "L-3"}, headers=engineer).json()["items"][0][
            "station_id"
        ]
        == "station-2"
    )
    rejected = client.get("/v1/inspections", params={"status": "rejected"}, headers=H1).json()
    assert [r["reason"] for r in rejected["items"]] == ["not_an_image"]
    page = client.get("/v1/inspections", params={"limit": 1, "offset": 1}, headers=H1).json()
    assert len(page["items"]) == 1 and page["total"] == 3  # station-1's three records
    assert (
        client.get("/v1/inspections", params={"since": "2000-01-01T00:00:00Z"}, headers=engineer).json()[
            "total"
        ]
        == 4
    )
    assert (
        client.get("/v1/inspections", params={"until": "2000-01-01T00:00:00Z"}, headers=H1).json()["total"]
        == 0
    )
    assert client.get("/v1/inspections", params={"verdict": "maybe"}, headers=H1).status_code == 422


def test_health_metrics_and_openapi(client: TestClient, photos) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and "noise" in health["model_versions"]
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok" and ready.json()["photos"] == "ok"
    post(client, photos.png, part="M-1")
    post(client, photos.text, part="M-2")
    assert client.get("/metrics").status_code == 401 and client.get("/metrics", headers=H1).status_code == 403
    metrics = client.get("/metrics", headers={"X-API-Key": "key-engineer-alice"})
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'inspection_inspections_total{station="station-1",status="ok"' in text
    assert 'inspection_rejections_total{reason="not_an_image"} 1.0' in text
    assert (
        "inspection_request_seconds_bucket" in text
        and 'inspection_stage_seconds_count{stage="defect"}' in text
    )
    spec = client.get("/openapi.json").json()
    post_spec = spec["paths"]["/v1/inspections"]["post"]
    schema = post_spec["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(schema["required"]) == {"image", "station_id", "part_id"}
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert {"/v1/inspections/{record_id}", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


def test_api_keys_are_kept_only_as_hashes(tmp_path: Path) -> None:
    keys = load_api_keys(environ={"INSPECTION_API_KEYS": "station-1:key1234, station-2:key5678"})
    assert keys.station_for("key1234") == "station-1" and keys.station_for("key5678") == "station-2"
    assert keys.station_for("key") is None and keys.station_for(None) is None
    assert "key1234" not in repr(keys) and all(h.startswith("sha256:") for h in keys.hashes.values())

    config = tmp_path / "service.toml"
    config.write_text(f'[api_keys]\nstation-1 = "{hash_key("from-file-1")}"\nstation-3 = "plain-key-3"\n')
    keys = load_api_keys(read_config(config), environ={"INSPECTION_API_KEYS": "station-1:from-env-1"})
    assert keys.station_for("from-env-1") == "station-1"  # the environment wins for a station named twice
    assert keys.station_for("from-file-1") is None and keys.station_for("plain-key-3") == "station-3"

    with pytest.raises(AuthConfigError, match="station:key"):
        ApiKeys.from_env_string("station-1=key1")
    with pytest.raises(AuthConfigError, match="not valid"):
        ApiKeys.from_mapping({"../station": "key12345"})
    with pytest.raises(AuthConfigError, match=r"sha256:<64 hex digits>"):
        ApiKeys.from_mapping({"station-1": "sha256:abc"})


def test_serve_reads_its_config_file(tmp_path: Path, tiny_models: Path, photos, monkeypatch) -> None:
    from inspection.cli import build_parser
    from inspection.commands._config import config_from_args
    from inspection.commands.serve import ServeConfig, build_app

    monkeypatch.delenv("INSPECTION_API_KEYS", raising=False)
    config = tmp_path / "service.toml"
    config.write_text(
        f'port = 8123\ndb = "sqlite:///{tmp_path / "cfg.db"}"\nmodels = "{tiny_models}"\nphotos = "{tmp_path / "ph"}"\n'
        f'[api_keys]\nline-4 = "{hash_key("secret-line-4")}"\n'
    )
    args = build_parser().parse_args(["serve", "--config", str(config), "--port", "9000"])
    cfg = config_from_args(ServeConfig, args)
    assert cfg.port == 9000 and cfg.db.endswith("cfg.db")  # flags override the file
    with TestClient(build_app(cfg)) as c:
        r = c.post(
            "/v1/inspections",
            data={"station_id": "line-4", "part_id": "C-1"},
            files={"image": ("c.png", photos.png, "image/png")},
            headers={"X-API-Key": "secret-line-4"},
        )
        assert r.status_code == 201, r.text
        assert (tmp_path / "ph" / r.json()["image_key"]).read_bytes() == photos.png
    with RecordStore(cfg.db) as store:
        assert store.count_inspections(station_id="line-4") == 1
        in_use = {m["task"]: m for m in store.list_model_versions() if m["in_use"]}
        assert set(in_use) >= {"noise", "defect"}  # the server recorded the versions it scores with
        assert in_use["defect"]["meta"]["path"].startswith(str(tiny_models))


def test_batch_scorer_batches_waiting_uploads_and_isolates_a_failing_photo(pipeline, photos) -> None:
    import asyncio
    import time as _time

    from inspection.results import Rejection
    from inspection.service import BatchScorer

    class Recording:
        model_versions = pipeline.model_versions
        sizes: list[int] = []

        def inspect_batch(self, images):
            Recording.sizes.append(len(images))
            if len(Recording.sizes) == 1:
                _time.sleep(0.3)  # keep the worker busy so the other uploads queue up
            if b"poison" in b"".join(images):
                raise RuntimeError("model blew up")
            return pipeline.inspect_batch(images)

    scorer = BatchScorer([Recording()], max_batch=8)

    async def main():
        first = asyncio.ensure_future(scorer.score(photos.png))
        await asyncio.sleep(0.05)
        rest = [photos.png2] * 5 + [b"poison" + photos.png, photos.text]
        others = asyncio.gather(*(scorer.score(d) for d in rest), return_exceptions=True)
        return [await first, *await others]

    try:
        results = asyncio.run(main())
    finally:
        scorer.close()
    assert all(r.verdict in ("ok", "defective") for r in results[:6])
    assert (
        "queue" in results[1].timings_ms and results[1].timings_ms["queue"] > 100
    )  # waited behind the first
    assert (
        isinstance(results[6], Rejection) and results[6].reason == "internal_error"
    )  # poison fails alone ...
    assert (
        isinstance(results[7], Rejection) and results[7].reason == "not_an_image"
    )  # ... its neighbours do not
    assert Recording.sizes[:2] == [1, 7]  # the 7 uploads that queued up were scored as one batch
