"""The defect model's one preprocessing: any photo size to the square input, stored with the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.training import tiny_train_config

from inspection.models import load_checkpoint
from inspection.pipeline import InspectionPipeline
from inspection.train import TRAINERS
from inspection.transforms import DefectTransform, pixel_statistics


def _ramp(h: int, w: int) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) % 251).astype(np.uint8)


@pytest.mark.parametrize("resize", ["pad", "crop", "stretch"])
@pytest.mark.parametrize("shape", [(32, 32), (40, 90), (90, 40), (17, 200)])
def test_every_mode_gives_the_square_input(resize, shape):
    t = DefectTransform(32, 0.4, 0.2, resize)
    fitted = t.fit(_ramp(*shape))
    assert fitted.shape == (32, 32) and fitted.dtype == np.uint8
    batch = t([_ramp(*shape), _ramp(50, 50)])
    assert batch.shape == (2, 1, 32, 32) and batch.dtype == torch.float32


def test_pad_keeps_the_whole_photo_and_crop_the_centre():
    wide = np.zeros((20, 80), np.uint8)
    wide[:, :10] = 255  # a bright strip at the left end
    assert DefectTransform(40, resize="pad").fit(wide)[:, :3].mean() > 200  # still there, scaled
    assert DefectTransform(40, resize="crop").fit(wide).max() == 0  # cut off with the ends
    padded = DefectTransform(40, resize="pad").fit(np.full((20, 80), 7, np.uint8))
    assert (padded == 7).all()  # padding repeats the border: no artificial edge


def test_meta_round_trip_and_old_checkpoints():
    t = DefectTransform(48, 0.31, 0.12, "crop")
    assert DefectTransform.from_meta({"preprocessing": t.to_meta()}) == t
    old = DefectTransform.from_meta({"input_size": 64, "normalisation": {"mean": 0.5, "std": 0.25}})
    assert old == DefectTransform(64, 0.5, 0.25, "stretch")
    with pytest.raises(ValueError, match="unknown resize mode"):
        DefectTransform(32, resize="squash")


def test_pixel_statistics_over_photos_of_any_size():
    mean, std = pixel_statistics([np.zeros((10, 30), np.uint8), np.full((20, 5), 255, np.uint8)])
    assert mean == pytest.approx(100 / 400) and std == pytest.approx((0.25 * 0.75) ** 0.5)


def test_training_and_the_pipeline_use_the_same_preprocessing(synthetic_root, tiny_models, tmp_path):
    cfg = tiny_train_config(synthetic_root, tmp_path, epochs=1, batch_size=8, resize="stretch")
    ck = load_checkpoint(TRAINERS["defect"](cfg).path)
    stored = DefectTransform.from_meta(ck.meta)
    assert stored.resize == "stretch" and stored.size == 32 and 0 < stored.mean < 1
    pipe = InspectionPipeline.from_dir(tiny_models)
    pipe = InspectionPipeline(pipe.noise, ck, pipe.denoiser)
    assert pipe.transform == stored and pipe.temperature == ck.meta["calibration"]["temperature"]
