"""``ProcessPipeline``: the pipeline in a child process scores like a local one and survives the child's death."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from inspection.ingest import score_photos
from inspection.results import InspectionResult, Rejection
from inspection.service.remote import ProcessPipeline


@pytest.fixture(scope="module")
def remote(tiny_models: Path):
    pipe = ProcessPipeline(str(tiny_models), torch_threads=1)
    yield pipe
    pipe.close()


def test_scores_like_the_local_pipeline_and_describes_its_models(remote, pipeline, photos) -> None:
    local = pipeline.inspect_batch([photos.png, photos.text])
    there = remote.inspect_batch([photos.png, photos.text])
    assert isinstance(there[0], InspectionResult) and there[0].verdict == local[0].verdict
    assert there[0].defect_probability == pytest.approx(local[0].defect_probability, abs=1e-6)
    assert isinstance(there[1], Rejection) and there[1] == local[1]
    assert remote.model_versions == pipeline.model_versions
    assert remote.defect.meta["architecture"] == pipeline.defect.meta["architecture"]  # for register_models


def test_a_child_that_dies_is_restarted_and_only_its_batch_fails(remote, photos) -> None:
    os.kill(remote._process.pid, signal.SIGKILL)
    remote._process.join(10)
    out = score_photos(remote, [photos.png, photos.png2])  # the batch fails, then each photo alone succeeds
    assert all(isinstance(r, InspectionResult) for r in out)
    assert remote._process.is_alive()


def test_a_models_folder_that_cannot_load_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="while loading the models"):
        ProcessPipeline(str(tmp_path / "no-models"))
