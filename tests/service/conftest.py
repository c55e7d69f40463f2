"""Service test fixtures (``tiny_models`` comes from tests/conftest.py): tiny real models, a real SQLite store, and photos good, odd and bad."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers.photos import encode, png_bomb

from inspection.auth import ApiKeys
from inspection.data import synth_casting
from inspection.pipeline import InspectionPipeline
from inspection.service import ServiceLimits, create_app
from inspection.store import RecordStore
from inspection.store.photos import LocalPhotoStore

KEYS = {"station-1": "key-one-1234", "station-2": "key-two-5678"}
ENGINEERS = {"alice": "key-engineer-alice"}


@pytest.fixture(scope="session")
def pipeline(tiny_models: Path) -> InspectionPipeline:
    return InspectionPipeline.from_dir(tiny_models)


@pytest.fixture(scope="session")
def photos() -> SimpleNamespace:
    rng = np.random.default_rng(0)
    gray = synth_casting(rng, 96)  # parts: a frame of pure noise would be refused as not_a_part
    rgb = np.dstack([gray, np.roll(gray, 3, axis=1), gray // 2])
    jpeg = encode(gray, "JPEG")
    return SimpleNamespace(
        png=encode(gray),
        png2=encode(synth_casting(rng, 96, "crack")),
        jpeg=jpeg,
        truncated_jpeg=jpeg[: len(jpeg) // 2],
        tiny=encode(np.zeros((1, 1), np.uint8)),
        bomb=png_bomb(),
        text=b"this is not a photo, just text with a .jpg name\n" * 4,
        png16=encode(gray.astype(np.uint16) * 257),
        rgb=encode(rgb),
        rgba=encode(np.dstack([rgb, np.full_like(gray, 255)])),
        cmyk=encode(rgb, "JPEG", mode="CMYK"),
    )


@pytest.fixture
def store(tmp_path: Path):
    with RecordStore(f"sqlite:///{tmp_path / 'records.db'}") as s:
        yield s


@pytest.fixture
def photo_store(tmp_path: Path) -> LocalPhotoStore:
    return LocalPhotoStore(tmp_path / "photos")


@pytest.fixture
def limits() -> ServiceLimits:
    return ServiceLimits(max_upload_bytes=2 * 1024 * 1024)


@pytest.fixture
def client(
    pipeline: InspectionPipeline, store: RecordStore, photo_store: LocalPhotoStore, limits: ServiceLimits
):
    app = create_app(
        pipeline, store, ApiKeys.from_mapping(KEYS, ENGINEERS), photos=photo_store, limits=limits
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
