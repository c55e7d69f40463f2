import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inspection.noise import add_noise
from inspection.spectrum import (
    _max_pool_to,
    highpass_residual,
    log_spectrum,
    log_spectrum_full,
    noise_features,
)


def photo(shape=(300, 300), seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 120 + 60 * np.sin(x / 23.0) * np.cos(y / 31.0) + rng.normal(0, 2, shape)
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(300, 300), (120, 200), (40, 40)])
@pytest.mark.parametrize("size", [32, 64])
def test_shapes_and_dtype(shape, size):
    f = noise_features(photo(shape), size)
    assert f.shape == (2, size, size) and f.dtype == np.float32
    assert log_spectrum(photo(shape), size).shape == (size, size)
    assert noise_features(photo(shape), size, channels=1).shape == (1, size, size)


@pytest.mark.parametrize(
    "shape", [(300, 300), (301, 299), (120, 200), (65, 129), (1000, 733), (40, 40), (33, 70)]
)
@pytest.mark.parametrize("size", [32, 64])
def test_max_pooling_is_torchs_adaptive_max_pool_exactly(shape, size):
    # The models were trained on torch's pooling (small planes repeated up to the size first); the NumPy/OpenCV
    # pooling must give the very same values, not close ones.
    array = np.random.default_rng(sum(shape) + size).normal(size=shape).astype(np.float32)
    t = torch.from_numpy(array)[None, None]
    if min(shape) < size:
        t = F.interpolate(t, size=(max(size, shape[0]), max(size, shape[1])), mode="nearest")
    assert np.array_equal(_max_pool_to(array, size), F.adaptive_max_pool2d(t, size)[0, 0].numpy())


def test_full_spectrum_is_standardised_and_centred():
    s = log_spectrum_full(photo())
    assert s.shape == (300, 300)
    assert abs(s.mean()) < 1e-4 and abs(s.std() - 1) < 1e-3
    assert np.allclose(
        s[1:, 1:], s[1:, 1:][::-1, ::-1], atol=1e-4
    )  # real input: point-symmetric about centre


def test_invariant_to_brightness_offset_and_circular_shift():
    img = photo()
    brighter = (img.astype(int) + 10).astype(np.uint8)  # photo() stays below 245
    assert np.allclose(log_spectrum(img), log_spectrum(brighter), atol=1e-2)
    shifted = np.roll(img, (17, 40), axis=(0, 1))
    assert np.allclose(log_spectrum_full(img), log_spectrum_full(shifted), atol=1e-2)


@pytest.mark.parametrize("seed", range(4))
def test_periodic_peak_survives_pooling_better_than_area_resizing(seed):
    noisy = add_noise(photo(), "periodic", 30.0, rng=seed)
    pooled = log_spectrum(noisy, 64)
    full = torch.from_numpy(log_spectrum_full(noisy))[None, None]
    area = F.interpolate(full, size=(64, 64), mode="area")[0, 0].numpy()
    off_centre = np.ones((64, 64), bool)
    off_centre[28:36, 28:36] = False

    def prominence(s):
        return s[off_centre].max() - np.percentile(s[off_centre], 99)

    assert prominence(pooled) > 3.0
    assert prominence(pooled) > prominence(area)


def test_spectrum_is_computed_before_any_resizing():
    """Gaussian noise raises the high-frequency floor; resizing first would have averaged it away."""
    img = photo()
    diff = log_spectrum(add_noise(img, "gaussian", 20, rng=0)) - log_spectrum(img)
    assert diff[:8].mean() > 0.1 > diff[28:36, 28:36].mean()


def test_residual_separates_impulses_from_gaussian():
    img = photo()
    sp = highpass_residual(add_noise(img, "salt_pepper", 0.05, rng=0))
    ga = highpass_residual(add_noise(img, "gaussian", 20, rng=0))
    assert (np.abs(sp) > 1.0).mean() > 0.02 and np.median(np.abs(sp)) < 0.05
    assert np.median(np.abs(ga)) > 0.1


def test_rejects_colour_input():
    with pytest.raises(ValueError, match="2-D"):
        log_spectrum_full(np.zeros((10, 10, 3), np.uint8))
