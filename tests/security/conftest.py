"""Security-suite fixtures: the real service app on tiny models, a real SQLite store and photo store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers.service import ENGINEER_KEYS, STATION_KEYS, png

from inspection.auth import ApiKeys
from inspection.data import synth_casting
from inspection.pipeline import InspectionPipeline
from inspection.service import ServiceLimits, create_app
from inspection.store import RecordStore
from inspection.store.photos import LocalPhotoStore


@pytest.fixture(scope="session")
def pipeline(tiny_models: Path) -> InspectionPipeline:
    return InspectionPipeline.from_dir(tiny_models)


@pytest.fixture(scope="session")
def photo() -> bytes:
    return png(synth_casting(np.random.default_rng(0), 96))  # a part: pure noise is refused as not_a_part


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    with RecordStore(f"sqlite:///{tmp_path / 'records.db'}") as s:
        yield s


@pytest.fixture
def photo_store(tmp_path: Path) -> LocalPhotoStore:
    return LocalPhotoStore(tmp_path / "photos")


@pytest.fixture
def make_client(
    pipeline: InspectionPipeline, store: RecordStore, photo_store: LocalPhotoStore
) -> Iterator[Callable[..., TestClient]]:
    """``make_client(pipeline=..., **limits)``: the real app with these limits, as a TestClient."""
    clients: list[TestClient] = []

    def make(pipe: Any = None, photos: Any = None, **limits: Any) -> TestClient:
        keys = ApiKeys.from_mapping(STATION_KEYS, ENGINEER_KEYS)
        app = create_app(
            pipe or pipeline,
            store,
            keys,
            photos=photos or photo_store,
            limits=ServiceLimits(**{"max_upload_bytes": 2 * 1024 * 1024, **limits}),
        )
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
