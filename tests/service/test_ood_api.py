"""Out-of-distribution flags through the service: on the records, in ``/v1/stations/{id}/drift`` and as the
upload answer's ``warnings``."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspection.auth import ApiKeys
from inspection.ood import WARN_MIN_PHOTOS, WARN_WINDOW, station_warning
from inspection.pipeline import InspectionPipeline
from inspection.results import InspectionResult, Rejection
from inspection.service import ServiceLimits, create_app
from inspection.service.scoring import bundle_card
from inspection.store import RecordStore
from inspection.store.photos import LocalPhotoStore

KEYS = {"station-1": "key-one-1234", "station-2": "key-two-5678"}  # as tests/service/conftest.py
ENGINEERS = {"alice": "key-engineer-alice"}
H1 = {"X-API-Key": KEYS["station-1"]}
H2 = {"X-API-Key": KEYS["station-2"]}
ENGINEER = {"X-API-Key": ENGINEERS["alice"]}
CARD = {"version": "synthetic-test", "synthetic_only": True}


class OutOfRangePipeline:
    """The tiny pipeline, with every photo flagged out of distribution (as an OOD model far off would)."""

    def __init__(self, inner: InspectionPipeline, score: float = 3.0) -> None:
        self.inner = inner
        self.score = score
        self.model_versions = inner.model_versions
        self.bundle_version = "synthetic-test"
        self.card = CARD

    def inspect_batch(self, images: list[Any]) -> list[InspectionResult | Rejection]:
        return [
            dataclasses.replace(r, ood=True, ood_score=self.score, verdict="review", review_reason="ood")
            if isinstance(r, InspectionResult)
            else r
            for r in self.inner.inspect_batch(images)
        ]


def app_client(pipeline: Any, store: RecordStore, photo_store: LocalPhotoStore, limits: ServiceLimits):
    app = create_app(
        pipeline, store, ApiKeys.from_mapping(KEYS, ENGINEERS), photos=photo_store, limits=limits
    )
    return TestClient(app, raise_server_exceptions=False)


def post(client: TestClient, photo: bytes, part: str, station: str = "station-1") -> Any:
    return client.post(
        "/v1/inspections",
        data={"station_id": station, "part_id": part},
        files={"image": ("p.png", photo, "image/png")},
        headers=H1 if station == "station-1" else H2,
    )


def seed(store: RecordStore, station: str, flags: list[bool | None], batch: str = "S") -> None:
    """Records of ``station``, oldest first, with these OOD flags (None: a bundle without an OOD model), stored
    a week before the uploads of the test (so those are the station's newest)."""
    t0 = datetime.now(UTC) - timedelta(days=7)
    for i, flag in enumerate(flags):
        result = InspectionResult(
            noise_type="clean", noise_probability=0.9, noise_probabilities={"clean": 0.9},
            denoiser="identity", defect_probability=0.1, threshold=0.5,
            verdict="review" if flag else "ok", review_reason="ood" if flag else "",
            timings_ms={"total": 4.0}, model_versions={"defect": "d1"}, conversion="gray8", height=64, width=64,
            ood=bool(flag), ood_score=None if flag is None else (2.5 if flag else 0.4),
        )  # fmt: skip
        store.add_inspection(
            station_id=station, part_id=f"{batch}-{i:04d}",
            image_sha256=hashlib.sha256(f"{station}/{batch}/{i}".encode()).hexdigest(),
            image_path=None, result=result, created_at=t0 + timedelta(seconds=i),
        )  # fmt: skip


def test_a_record_carries_its_ood_fields_and_an_empty_warnings_list(client: TestClient, photos) -> None:
    r = post(client, photos.png, "OOD-1")
    assert r.status_code == 201, r.text
    body = r.json()
    # The tiny bundle has no OOD model: the flag is not known, and no station is warned
    assert "ood" in body and "ood_score" in body
    assert body["ood"] is None and body["ood_score"] is None
    assert body["warnings"] == []
    assert client.get(f"/v1/inspections/{body['id']}", headers=H1).json()["ood"] is None


def test_flagged_photos_are_recorded_and_the_station_is_warned(
    pipeline: InspectionPipeline, store: RecordStore, photo_store, limits, photos
) -> None:
    seed(store, "station-1", [False] * (WARN_MIN_PHOTOS - 2))
    with app_client(OutOfRangePipeline(pipeline), store, photo_store, limits) as client:
        first = post(client, photos.png, "OOD-2")
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["ood"] is True and body["ood_score"] == pytest.approx(3.0)
        assert body["verdict"] == "review" and body["review_reason"] == "ood"
        assert body["warnings"] == []  # 1 of 19 recent photos: under WARN_MIN_PHOTOS, no warning yet

        seed(store, "station-1", [True] * 30, batch="T")  # the camera moved: every photo is out of range
        again = post(client, photos.png2, "OOD-3")
        expected = station_warning(32, WARN_MIN_PHOTOS - 2 + 32, CARD)  # OOD-2, 30 seeded, OOD-3
        assert expected is not None and "synthetic data only" in expected
        assert again.status_code == 201 and again.json()["warnings"] == [expected]

        resend = post(client, photos.png2, "OOD-3")  # a re-send is answered from the record, warned alike
        assert resend.status_code == 200 and resend.json()["warnings"] == [expected]

        refused = post(client, photos.text, "OOD-4")  # a refusal says why, and nothing about drift
        assert refused.status_code == 415 and "warnings" not in refused.json()


def test_drift_of_a_drifted_station(
    pipeline: InspectionPipeline, store: RecordStore, photo_store, limits
) -> None:
    # 300 photos: 150 old in range, then 150 new out of range; unknown flags and another station in between
    seed(store, "station-1", [False] * 150 + [None] * 10 + [True] * 150)
    seed(store, "station-2", [False] * 40)
    with app_client(OutOfRangePipeline(pipeline), store, photo_store, limits) as client:
        r = client.get("/v1/stations/station-1/drift", headers=ENGINEER)
        assert r.status_code == 200, r.text
        drift = r.json()
        assert drift == {
            "station_id": "station-1",
            "photos": WARN_WINDOW,
            "flagged": 150,
            "share": pytest.approx(150 / WARN_WINDOW),
            "warning": station_warning(150, WARN_WINDOW, CARD),
        }
        assert "synthetic data only" in drift["warning"] and "75%" in drift["warning"]
        assert client.get("/v1/stations/station-1/drift", headers=H1).json() == r.json()  # its own key

        steady = client.get("/v1/stations/station-2/drift", headers=H2).json()
        assert steady == {
            "station_id": "station-2",
            "photos": 40,
            "flagged": 0,
            "share": 0.0,
            "warning": None,
        }
        unseen = client.get("/v1/stations/line-9/drift", headers=ENGINEER).json()
        assert unseen == {"station_id": "line-9", "photos": 0, "flagged": 0, "share": None, "warning": None}


def test_drift_needs_the_stations_key_or_an_engineers(client: TestClient) -> None:
    assert client.get("/v1/stations/station-1/drift").status_code == 401
    assert client.get("/v1/stations/station-1/drift", headers={"X-API-Key": "wrong-key"}).status_code == 401
    other = client.get("/v1/stations/station-1/drift", headers=H2)
    assert other.status_code == 403 and "station-2" in other.json()["detail"]
    assert client.get("/v1/stations/station-2/drift", headers=H2).status_code == 200
    assert client.get("/v1/stations/..%2Fx/drift", headers=ENGINEER).status_code in (404, 422)
    assert client.get(f"/v1/stations/{'x' * 65}/drift", headers=ENGINEER).status_code == 422


def test_the_card_comes_from_the_bundle_the_pipeline_scores_with(
    pipeline: InspectionPipeline, tiny_models: Path
) -> None:
    from inspection.bundle import load_bundle

    assert bundle_card(pipeline) == load_bundle(tiny_models).card != {}
    assert bundle_card(OutOfRangePipeline(pipeline)) == CARD

    class Bare:  # no bundle to trace: no card, and the warning then names no training data
        model_versions: dict[str, str] = {}

        def inspect_batch(self, images):
            return []

    assert bundle_card(Bare()) == {}
