"""Behaviour on the real casting photos; skipped with the reason where ../shared/data/casting is absent."""

import numpy as np
import pytest

from inspection.data import list_split, load_images
from inspection.denoise import MedianDenoiser, NotchDenoiser
from inspection.metrics import psnr
from inspection.noise import add_noise
from inspection.pipeline import InspectionPipeline

pytestmark = pytest.mark.casting


@pytest.fixture(scope="module")
def photos(casting_root):
    samples = list_split(casting_root, "test")
    return load_images(samples[::60])


def test_layout_and_labels(casting_root):
    test = list_split(casting_root, "test")
    assert len(test) == 651
    assert sum(s.label for s in test) == 453
    assert {s.class_name for s in test} == {"def_front", "ok_front"}
    assert len(list_split(casting_root, "train")) == 6633


def test_photos_decode_to_300px_gray(photos):
    assert photos.shape[1:] == (300, 300) and photos.dtype == np.uint8


def test_denoisers_beat_their_targets_on_real_photos(photos):
    sp = [psnr(p, MedianDenoiser()(add_noise(p, "salt_pepper", rng=i))) for i, p in enumerate(photos)]
    per = [psnr(p, NotchDenoiser()(add_noise(p, "periodic", rng=i))) for i, p in enumerate(photos)]
    assert np.mean(sp) > 36
    assert np.mean(per) > 30
    assert all(psnr(p, NotchDenoiser()(p)) > 45 for p in photos)


def test_pipeline_scores_real_photos_at_full_resolution(photos, shipped_models):
    pipe = InspectionPipeline.from_dir(shipped_models)
    results = pipe.inspect_batch([add_noise(p, "salt_pepper", 0.1, rng=0) for p in photos])
    assert all(r.height == 300 and r.width == 300 for r in results)
    assert sum(r.noise_type == "salt_pepper" for r in results) >= len(results) - 1
