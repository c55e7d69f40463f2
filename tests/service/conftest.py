"""Service test fixtures (``tiny_models`` comes from tests/conftest.py): tiny real models, a real SQLite store, and photos good, odd and bad."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers.photos import encode, png_bomb

from inspection.auth import ApiKeys
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
    gray = rng.integers(0, 256, (96, 96), dtype=np.uint8)
    rgb = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    jpeg = encode(gray, "JPEG")
    return SimpleNamespace(
        png=encode(gray),
        png2=encode(rng.integers(0, 256, (96, 96), dtype=np.uint8)),
        jpeg=jpeg,
        truncated_jpeg=jpeg[: len(jpeg) // 2],
        tiny=encode(np.zeros((1, 1), np.uint8)),
        bomb=png_bomb(),
        text=b"this is not a photo, just text with a .jpg name\n" * 4,
        png16=encode((rng.integers(0, 65536, (96, 96))).astype(np.uint16)),
        rgb=encode(rgb),
        rgba=encode(rng.integers(0, 256, (96, 96, 4), dtype=np.uint8)),
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
