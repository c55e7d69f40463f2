"""Watch-folder fixtures: tiny real models and a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspection.pipeline import InspectionPipeline
from inspection.store import RecordStore
from inspection.testing import write_tiny_checkpoints


@pytest.fixture(scope="session")
def watch_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoints(tmp_path_factory.mktemp("watch-models"))


@pytest.fixture(scope="session")
def watch_pipeline(watch_models: Path) -> InspectionPipeline:
    return InspectionPipeline.from_dir(watch_models)


@pytest.fixture
def store(tmp_path: Path):
    with RecordStore(f"sqlite:///{tmp_path / 'records.db'}") as s:
        yield s
