import numpy as np
import pytest

from inspection.bundle import resolve_checkpoint_dir
from inspection.data import synth_casting
from inspection.denoise import (
    DEFAULT_ROUTES,
    AutoencoderDenoiser,
    IdentityDenoiser,
    MedianDenoiser,
    NLMeansDenoiser,
    NotchDenoiser,
    Router,
)
from inspection.metrics import psnr
from inspection.models import load_checkpoint
from inspection.noise import add_noise


@pytest.fixture(scope="module")
def photos():
    rng = np.random.default_rng(11)
    return [synth_casting(rng, 160, kind) for kind in (None, "crack", "pinholes", None)]


def gain(denoiser, photos, kind, level=None):
    out = []
    for i, clean in enumerate(photos):
        noisy = add_noise(clean, kind, level, rng=i)
        out.append(psnr(clean, denoiser(noisy)) - psnr(clean, noisy))
    return float(np.mean(out))


@pytest.mark.parametrize("density", [0.02, 0.1, 0.2])
def test_median_improves_salt_pepper(photos, density):
    assert gain(MedianDenoiser(), photos, "salt_pepper", density) > 15
    assert gain(MedianDenoiser(switching=False), photos, "salt_pepper", density) > 8


def test_switching_median_keeps_untouched_pixels_and_classic_uses_heavy_kernel(photos):
    noisy = add_noise(photos[0], "salt_pepper", 0.1, rng=0)
    out = MedianDenoiser()(noisy)
    keep = (noisy != 0) & (noisy != 255)
    assert np.array_equal(out[keep], noisy[keep])
    heavy = add_noise(photos[0], "salt_pepper", 0.45, rng=0)
    stronger = psnr(photos[0], MedianDenoiser(switching=False)(heavy))
    assert stronger > psnr(photos[0], MedianDenoiser(switching=False, heavy_density=1.0)(heavy)) + 1.0


@pytest.mark.parametrize("amplitude", [20.0, 40.0, 60.0])
def test_notch_improves_periodic(photos, amplitude):
    assert gain(NotchDenoiser(), photos, "periodic", amplitude) > 10


def test_notch_leaves_clean_photo_nearly_unchanged(photos):
    for clean in photos:
        assert psnr(clean, NotchDenoiser()(clean)) > 45


def test_nlmeans_improves_gaussian(photos):
    assert gain(NLMeansDenoiser(), photos, "gaussian", 25.0) > 3


def test_shipped_autoencoder_improves_gaussian_on_any_size(photos, shipped_models):
    ck = load_checkpoint(resolve_checkpoint_dir(shipped_models / "denoiser"))
    ae = AutoencoderDenoiser(ck.model)
    assert gain(ae, photos, "gaussian", 25.0) > 5
    odd = photos[1][:97, :131]
    assert ae(add_noise(odd, "gaussian", 25.0, rng=0)).shape == odd.shape


def test_autoencoder_batches_mixed_sizes_in_order(tiny_models):
    ae = AutoencoderDenoiser(load_checkpoint(tiny_models / "denoiser").model)
    imgs = [
        np.full((40, 50), 100, np.uint8),
        np.full((64, 64), 30, np.uint8),
        np.full((40, 50), 200, np.uint8),
    ]
    outs = ae.denoise_batch(imgs)
    assert [o.shape for o in outs] == [i.shape for i in imgs]
    assert [o.dtype for o in outs] == [np.uint8] * 3
    assert np.array_equal(outs[0], ae(imgs[0]))


def test_identity_is_identity(photos):
    assert IdentityDenoiser()(photos[0]) is photos[0]


def test_routing_table_default_and_configurable():
    denoisers = {"identity": IdentityDenoiser(), "median": MedianDenoiser(), "notch": NotchDenoiser()}
    router = Router(
        denoisers, {"clean": "identity", "salt_pepper": "median", "periodic": "notch", "gaussian": "median"}
    )
    assert router.denoiser_for("salt_pepper").name == "median"
    assert router.denoiser_for("gaussian").name == "median"
    assert router.denoiser_for("periodic").name == "notch"
    assert DEFAULT_ROUTES == {
        "clean": "identity",
        "gaussian": "autoencoder",
        "salt_pepper": "median",
        "periodic": "notch",
    }
    with pytest.raises(ValueError, match="no such denoiser"):
        Router(denoisers)  # the default routes name the autoencoder, which is not given
    with pytest.raises(ValueError, match="unknown noise type"):
        Router(denoisers, {"speckle": "median"})


def test_router_keeps_the_pixels_of_photos_with_too_little_noise_for_the_autoencoder(tiny_models, photos):
    ae = AutoencoderDenoiser(load_checkpoint(tiny_models / "denoiser").model)
    denoisers = {
        "identity": IdentityDenoiser(),
        "median": MedianDenoiser(),
        "notch": NotchDenoiser(),
        "autoencoder": ae,
    }
    gated = Router(denoisers, min_denoise_sigma=20.0)
    mild, strong = (
        add_noise(photos[0], "gaussian", 10.0, rng=0),
        add_noise(photos[0], "gaussian", 35.0, rng=0),
    )
    assert gated.denoiser_for_photo("gaussian", mild).name == "identity"
    assert gated.denoiser_for_photo("gaussian", strong) is ae
    assert gated.gated(ae, 19.9).name == "identity" and gated.gated(ae, 20.0) is ae
    speckled = add_noise(photos[0], "salt_pepper", 0.01, rng=0)
    assert gated.denoiser_for_photo("salt_pepper", speckled).name == "median"  # only the autoencoder is gated
    assert Router(denoisers).denoiser_for_photo("gaussian", mild) is ae  # 0: every Gaussian photo denoised


def test_ring_medians_match_a_direct_computation():
    from inspection.denoise import _ring_medians, _rings

    values = np.random.default_rng(0).normal(5, 2, (37, 24)).astype(np.float32)
    _, ring = _rings(37, 46)  # the half-plane spectrum of a 37x46 photo is 37x24
    got = _ring_medians(values, ring)
    for r in np.unique(ring):
        in_ring = np.sort(values[ring == r])
        assert got[r] == pytest.approx(in_ring[len(in_ring) // 2], abs=1e-5)


def test_noise_profile_measures_level_and_tells_shot_noise_from_additive_noise():
    from inspection.denoise import noise_profile
    from inspection.noise import poisson_gaussian

    rng = np.random.default_rng(4)
    # A mid-gray gradient, far from black, so clipping plays no part.
    ramp = np.tile(np.linspace(60, 220, 200), (200, 1)).astype(np.uint8)
    additive = add_noise(ramp, "gaussian", 25.0, rng=rng)
    shot = poisson_gaussian(ramp, rng, photons=40.0, read_sigma=3.0)
    assert noise_profile(additive).sigma == pytest.approx(25.0, rel=0.05)
    assert 0.9 < noise_profile(additive).signal_dependence < 1.1
    assert noise_profile(shot).signal_dependence > 1.3
