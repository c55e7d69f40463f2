import numpy as np
import pytest

from inspection import NOISE_TYPES
from inspection.noise import (
    LEVEL_RANGES,
    REALISTIC_KINDS,
    add_noise,
    add_realistic_noise,
    jpeg_compress,
    level_bin,
    sample_spec,
)

FLAT = np.full((128, 96), 128, np.uint8)


@pytest.mark.parametrize("kind", NOISE_TYPES)
@pytest.mark.parametrize("shape", [(64, 64), (97, 131), (300, 300)])
def test_every_type_keeps_shape_and_dtype(kind, shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = add_noise(img, kind, rng=1)
    assert out.shape == shape and out.dtype == np.uint8


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_deterministic_for_seed_and_generator(kind):
    assert np.array_equal(add_noise(FLAT, kind, rng=5), add_noise(FLAT, kind, rng=5))
    a = add_noise(FLAT, kind, rng=np.random.default_rng(9))
    b = add_noise(FLAT, kind, rng=np.random.default_rng(9))
    assert np.array_equal(a, b)
    if kind != "clean":
        assert not np.array_equal(add_noise(FLAT, kind, rng=5), add_noise(FLAT, kind, rng=6))


def test_clean_is_unchanged_copy():
    out = add_noise(FLAT, "clean", rng=0)
    assert np.array_equal(out, FLAT) and out is not FLAT


@pytest.mark.parametrize("sigma", [10.0, 30.0, 50.0])
def test_gaussian_level_is_sigma(sigma):
    out = add_noise(FLAT, "gaussian", sigma, rng=0).astype(float)
    assert abs(out.std() - sigma) < 0.08 * sigma
    assert abs(out.mean() - 128) < 1.5


@pytest.mark.parametrize("density", [0.02, 0.1, 0.2])
def test_salt_pepper_level_is_density(density):
    out = add_noise(FLAT, "salt_pepper", density, rng=0)
    hit = (out == 0) | (out == 255)
    assert abs(hit.mean() - density) < 0.15 * density + 0.003
    assert abs((out == 255).sum() - (out == 0).sum()) < 0.2 * hit.sum() + 10
    assert np.all(out[~hit] == 128)


@pytest.mark.parametrize("amplitude", [20.0, 40.0, 60.0])
def test_periodic_level_is_amplitude_and_frequency_in_cycles_per_image(amplitude):
    img = np.full((256, 256), 128, np.uint8)
    spec = sample_spec("periodic", np.random.default_rng(3), amplitude)
    from inspection.noise import apply_spec

    out = apply_spec(img, spec, 0).astype(float) - 128
    if len(spec.waves) == 1:
        assert abs(out.max() - amplitude) <= 1.0
        w = spec.waves[0]
        mag = np.abs(np.fft.fftshift(np.fft.fft2(out)))
        y, x = np.unravel_index(np.argmax(mag), mag.shape)
        assert abs(np.hypot(y - 128, x - 128) - w.radius) < 1.5
    assert min(w.radius for w in spec.waves) >= 6 and max(w.radius for w in spec.waves) <= 60


def test_periodic_two_waves_share_is_about_thirty_percent():
    rng = np.random.default_rng(0)
    share = np.mean([len(sample_spec("periodic", rng).waves) == 2 for _ in range(2000)])
    assert 0.26 < share < 0.34


@pytest.mark.parametrize("kind", ["gaussian", "salt_pepper", "periodic"])
def test_sampled_levels_in_protocol_ranges_and_bins(kind):
    rng = np.random.default_rng(0)
    lo, hi = LEVEL_RANGES[kind]
    specs = [sample_spec(kind, rng) for _ in range(300)]
    assert all(lo <= s.level <= hi for s in specs)
    assert {s.level_bin for s in specs} == {"low", "mid", "high"}
    assert level_bin(kind, lo) == "low" and level_bin(kind, hi) == "high"


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown noise type"):
        add_noise(FLAT, "speckle")
    with pytest.raises(ValueError, match="2-D uint8"):
        add_noise(FLAT.astype(np.float32), "gaussian")


@pytest.mark.parametrize("kind", REALISTIC_KINDS)
def test_realistic_noise_changes_photo_deterministically(kind):
    img = np.random.default_rng(0).integers(40, 200, (80, 80), dtype=np.uint8)
    a, b = add_realistic_noise(img, kind, 1), add_realistic_noise(img, kind, 1)
    assert np.array_equal(a, b) and a.shape == img.shape
    assert np.abs(a.astype(int) - img).mean() > 2


def test_jpeg_compress_roundtrip_loses_detail():
    img = add_noise(FLAT, "gaussian", 20, rng=0)
    assert np.abs(jpeg_compress(img, 30).astype(int) - img).mean() > 3


def test_camera_noise_is_signal_dependent_and_repeatable():
    from inspection.denoise import noise_profile
    from inspection.noise import add_training_noise, camera_noise, routed_as

    ramp = np.tile(np.linspace(20, 235, 256).astype(np.uint8), (256, 1))
    assert np.array_equal(camera_noise(ramp, rng=3), add_training_noise(ramp, "camera", rng=3))
    assert not np.array_equal(camera_noise(ramp, rng=3), camera_noise(ramp, rng=4))
    # Shot noise grows with brightness: on most draws the bright half is noisier than the dark half.
    growing = [noise_profile(camera_noise(ramp, rng=s)).signal_dependence > 1.2 for s in range(20)]
    assert sum(growing) >= 12
    assert np.array_equal(add_training_noise(FLAT, "clean", rng=0), FLAT)
    assert routed_as("camera") == "gaussian" and routed_as("periodic") == "periodic"
