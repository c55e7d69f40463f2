"""Watch-folder fixtures (``tiny_models`` comes from tests/conftest.py): tiny real models and a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspection.pipeline import InspectionPipeline
from inspection.store import RecordStore


@pytest.fixture(scope="session")
def watch_pipeline(tiny_models: Path) -> InspectionPipeline:
    return InspectionPipeline.from_dir(tiny_models)


@pytest.fixture
def store(tmp_path: Path):
    with RecordStore(f"sqlite:///{tmp_path / 'records.db'}") as s:
        yield s
