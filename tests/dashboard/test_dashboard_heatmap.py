"""Part lookup's heat map: where the defect model looked, on the photo it judged, and only on request."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.dashboard import APP
from streamlit.testing.v1 import AppTest

from inspection.dashboard import heatmap
from inspection.data import synth_casting


@pytest.fixture(scope="module")
def tiny_pipeline(tiny_models):
    from inspection.pipeline import InspectionPipeline

    pipe = InspectionPipeline.from_dir(tiny_models)
    yield pipe
    pipe.close()


def test_heat_map_on_the_judged_photo(tiny_pipeline):
    gray = synth_casting(np.random.default_rng(2), 96, "crack")
    view = heatmap.heat_map_view(gray, {"id": 1, "denoiser": "median"}, tiny_pipeline)
    assert view.image is not None and view.image.shape == (96, 96, 3) and view.image.dtype == np.uint8
    assert "median" in view.note and 0 <= view.p_defective <= 1
    stored = heatmap.heat_map_view(gray, {"id": 2, "denoiser": None}, tiny_pipeline)
    assert stored.image is not None and "stored photo" in stored.note


def test_no_models_no_heat_map():
    view = heatmap.heat_map_view(np.zeros((32, 32), np.uint8), {"id": 1}, None)
    assert view.image is None and "could not be loaded" in view.note


def test_page_shows_the_heat_map_when_asked(dashboard_env, tiny_root, monkeypatch):
    monkeypatch.setenv("INSPECTION_MODELS", str(tiny_root))
    monkeypatch.setenv("INSPECTION_DASHBOARD_NO_MODELS", "0")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/part_lookup.py")
    at.run()
    images_before = len([e for e in at.main if type(e).__name__ == "Image"])
    assert any("Show where the model looked" in c.value for c in at.caption)
    at.toggle(key="heat_map").set_value(True)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len([e for e in at.main if type(e).__name__ == "Image"]) == images_before + 1
    assert any("LayerCAM" in c.value for c in at.caption)
