import io
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image

from inspection import NOISE_TYPES
from inspection.denoise import noise_profile
from inspection.imageio import ImageRejected
from inspection.noise import add_noise
from inspection.pipeline import InspectionPipeline, PipelineConfig
from inspection.results import InspectionResult, Rejection


@pytest.fixture(scope="module")
def pipe(tiny_models):
    return InspectionPipeline.from_dir(tiny_models)


def encode(img, fmt="PNG", mode=None):
    buf = io.BytesIO()
    im = Image.fromarray(img)
    (im.convert(mode) if mode else im).save(buf, format=fmt)
    return buf.getvalue()


def test_inspect_returns_typed_result(pipe, casting_photo):
    r = pipe.inspect(casting_photo)
    assert isinstance(r, InspectionResult)
    assert r.noise_type in NOISE_TYPES and r.verdict in ("defective", "ok")
    assert abs(sum(r.noise_probabilities.values()) - 1) < 1e-5
    assert r.noise_probability == max(r.noise_probabilities.values())
    assert 0 <= r.defect_probability <= 1 and r.threshold == 0.5
    assert r.verdict == ("defective" if r.defect_probability >= r.threshold else "ok")
    assert set(r.timings_ms) == {"decode", "noise", "denoise", "defect", "total"}
    assert r.model_versions == {
        "noise": "noise",
        "defect": "defect",
        "denoiser": "denoiser",
        "bundle": "tiny-v1",
        "backend": "torch",
    }
    assert (r.kind, r.review_reason) == ("", "")
    assert (r.height, r.width) == casting_photo.shape


@pytest.mark.parametrize(
    "make, conversion",
    [
        (lambda g: g, "gray8"),
        (lambda g: np.stack([g] * 3, -1), "rgb"),
        (lambda g: np.dstack([g, g, g, np.full_like(g, 7)]), "rgba"),
        (lambda g: g.astype(np.uint16) * 257, "gray16"),
        (lambda g: encode(g), "gray8"),
        (lambda g: encode(np.stack([g] * 3, -1), "JPEG"), "rgb"),
        (lambda g: encode(np.stack([g] * 3, -1), "JPEG", "CMYK"), "cmyk"),
        (lambda g: encode(g.astype(np.uint16) * 257), "gray16"),
    ],
)
def test_accepts_common_photo_forms_as_the_same_gray(pipe, casting_photo, make, conversion):
    r = pipe.inspect(make(casting_photo))
    assert r.conversion == conversion
    ref = pipe.inspect(casting_photo)
    if conversion in ("gray8", "rgb", "rgba", "gray16") and not isinstance(make(casting_photo), bytes):
        assert r.defect_probability == pytest.approx(ref.defect_probability, abs=1e-6)


def test_accepts_path(pipe, casting_photo, tmp_path):
    path = tmp_path / "part.png"
    cv2.imwrite(str(path), casting_photo)
    assert pipe.inspect(path).defect_probability == pytest.approx(
        pipe.inspect(casting_photo).defect_probability
    )


@pytest.mark.parametrize(
    "bad, reason",
    [
        (np.zeros((0, 0), np.uint8), "empty"),
        (np.zeros((10, 300), np.uint8), "too_small"),
        (np.zeros((9000, 40), np.uint8), "too_large"),
        (np.zeros((40, 40, 5), np.uint8), "bad_shape"),
        (np.zeros((40, 40), np.int64), "bad_dtype"),
        (np.full((40, 40), np.nan, np.float32), "bad_pixels"),
        (b"", "empty"),
        (b"this is a text file posing as a photo", "not_an_image"),
        ("no/such/file.png", "unreadable"),
    ],
)
def test_rejects_unusable_input_with_clear_reason(pipe, bad, reason):
    with pytest.raises(ImageRejected) as e:
        pipe.inspect(bad)
    assert e.value.reason == reason and str(e.value)


def test_rejects_truncated_and_bomb(pipe, casting_photo):
    jpeg = encode(casting_photo, "JPEG")
    with pytest.raises(ImageRejected, match="truncated or corrupt"):
        pipe.inspect(jpeg[: len(jpeg) // 2])
    bomb = encode(np.zeros((20000, 20000), np.uint8)[:1, :1])  # placeholder to keep memory low
    big = Image.new("L", (20000, 20000))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    with pytest.raises(ImageRejected) as e:
        pipe.inspect(buf.getvalue())
    assert e.value.reason == "too_large"
    assert bomb


def test_batch_carries_on_past_bad_items(pipe, casting_photo):
    items = [
        casting_photo,
        b"junk",
        np.zeros((5, 5), np.uint8),
        add_noise(casting_photo, "gaussian", 30, rng=0),
    ]
    out = pipe.inspect_batch(items)
    assert len(out) == 4
    assert isinstance(out[0], InspectionResult) and isinstance(out[3], InspectionResult)
    assert isinstance(out[1], Rejection) and out[1].reason == "not_an_image"
    assert isinstance(out[2], Rejection) and out[2].reason == "too_small"
    assert out[0].defect_probability == pytest.approx(
        pipe.inspect(casting_photo).defect_probability, abs=1e-6
    )


def test_low_confidence_takes_the_safe_path(tiny_models, casting_photo):
    unsure = InspectionPipeline.from_dir(tiny_models, PipelineConfig(min_confidence=1.01))
    r = unsure.inspect(casting_photo)
    assert r.safe_path and r.denoiser == "identity"


def test_photos_with_little_noise_keep_their_pixels_under_the_gate(tiny_models, casting_photo):
    gaussian = {t: "autoencoder" for t in NOISE_TYPES}  # whatever the tiny noise model says, the autoencoder
    mild = add_noise(np.asarray(casting_photo), "gaussian", 8.0, rng=0)
    strong = add_noise(np.asarray(casting_photo), "gaussian", 40.0, rng=0)
    cfg = PipelineConfig(
        routes=gaussian, max_noise_sigma=0.0, max_signal_dependence=0.0, min_denoise_sigma=20.0
    )
    gated = InspectionPipeline.from_dir(tiny_models, cfg)
    kept, denoised = gated.inspect_batch([mild, strong])
    assert (kept.denoiser, kept.safe_path) == ("identity", False)
    assert denoised.denoiser == "autoencoder"
    ungated = InspectionPipeline.from_dir(tiny_models, replace(cfg, min_denoise_sigma=0.0))
    assert ungated.inspect(mild).denoiser == "autoencoder"
    assert kept.defect_probability == pytest.approx(ungated.defect_outputs([mild])[0][0], abs=1e-6)
    assert ungated.inspect(mild).defect_probability != pytest.approx(kept.defect_probability, abs=1e-6)


def test_noise_probabilities_use_the_models_temperature(tiny_models, casting_photo):
    pipe = InspectionPipeline.from_dir(tiny_models)
    sharp = pipe.classify_noise([np.asarray(casting_photo)])[0]
    pipe.noise_temperature = 1e6  # as a calibration that found the model knows nothing would set it
    flat = pipe.classify_noise([np.asarray(casting_photo)])[0]
    assert flat == pytest.approx(np.full(len(NOISE_TYPES), 1 / len(NOISE_TYPES)), abs=1e-4)
    assert sharp.max() > flat.max()


def test_routes_follow_the_table(tiny_models, casting_photo):
    cfg = PipelineConfig(routes={t: "median" for t in NOISE_TYPES})
    r = InspectionPipeline.from_dir(tiny_models, cfg).inspect(casting_photo)
    assert r.denoiser == "median"
    with pytest.raises(ValueError, match="no such denoiser"):
        InspectionPipeline.from_dir(tiny_models, replace(cfg, routes={"clean": "wiener"}))


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_shipped_models_route_synthetic_noise_correctly(shipped_models, kind):
    from inspection.data import synth_casting

    pipe = InspectionPipeline.from_dir(shipped_models)
    rng = np.random.default_rng(3)
    photos = [add_noise(synth_casting(rng, 160, None), kind, rng=rng) for _ in range(6)]
    results = pipe.inspect_batch(photos)
    assert sum(r.noise_type == kind for r in results) >= 5
    table = {"clean": "identity", "gaussian": "autoencoder", "salt_pepper": "median", "periodic": "notch"}
    assert pipe.router.routes == table
    # a Gaussian photo with less noise than the bundle's gate (sigma 25) keeps its pixels; every other takes the table's
    gate = pipe.router.min_denoise_sigma
    assert gate == 25.0
    weak = [kind == "gaussian" and noise_profile(p).sigma < gate for p in photos]
    expected = ["identity" if w else table[kind] for w in weak]
    assert kind != "gaussian" or 0 < sum(weak) < len(photos)  # both sub-routes taken
    assert sum(r.denoiser == e for r, e in zip(results, expected, strict=True)) >= 5


def test_a_photo_that_breaks_a_stage_is_rejected_alone(tiny_models, casting_photo):
    pipe = InspectionPipeline.from_dir(tiny_models)
    poison = casting_photo[:50, :60].copy()

    class Exploding:
        name = "exploding"

        def __call__(self, image):
            if image.shape == poison.shape:
                raise RuntimeError("kernel fault")
            return image

    pipe.router.denoisers = {**pipe.router.denoisers, "identity": Exploding()}  # type: ignore[misc]
    pipe.router.routes = {t: "identity" for t in NOISE_TYPES}
    out = pipe.inspect_batch([casting_photo, poison, casting_photo])
    assert isinstance(out[0], InspectionResult) and isinstance(out[2], InspectionResult)
    assert (
        isinstance(out[1], Rejection)
        and out[1].reason == "internal_error"
        and "kernel fault" in out[1].message
    )


def test_big_endian_16bit_and_float_images(pipe, casting_photo):
    assert pipe.inspect(casting_photo.astype(">u2") * 257).conversion == "gray16"
    buf = io.BytesIO()
    Image.fromarray(casting_photo.astype(np.float32) / 255.0, mode="F").save(buf, format="TIFF")
    r = pipe.inspect(buf.getvalue())
    assert r.defect_probability == pytest.approx(pipe.inspect(casting_photo).defect_probability, abs=1e-3)


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_parallel_batch_matches_one_photo_at_a_time(shipped_models, processes):
    """Per-photo work (decoding too) runs on worker threads or processes; results must not depend on it, and
    bad items are rejected in their place."""
    from inspection.data import synth_casting

    config = PipelineConfig(workers=2, worker_processes=processes)
    parallel = InspectionPipeline.from_dir(shipped_models, config)
    serial = InspectionPipeline.from_dir(shipped_models, PipelineConfig(workers=1))
    rng = np.random.default_rng(5)
    photos = [add_noise(synth_casting(rng, 160, None), NOISE_TYPES[i % 4], rng=rng) for i in range(8)]
    items = [*photos[:4], b"not a photo", encode(photos[4]), *photos[5:], np.full((80, 80), 128, np.uint8)]
    batch = parallel.inspect_batch(items)
    parallel.close()
    assert [r.reason for r in batch if isinstance(r, Rejection)] == ["not_an_image", "not_a_part"]
    assert isinstance(batch[4], Rejection) and isinstance(batch[-1], Rejection)
    batch = [r for r in batch if isinstance(r, InspectionResult)]
    single = [serial.inspect(p) for p in photos]
    assert [r.noise_type for r in batch] == [r.noise_type for r in single]
    assert [r.denoiser for r in batch] == [r.denoiser for r in single]
    for b, s in zip(batch, single, strict=True):
        assert b.defect_probability == pytest.approx(s.defect_probability, abs=1e-4)


def test_noise_unlike_the_autoencoders_training_skips_it(tiny_models):
    from inspection.noise import poisson_gaussian

    routes = {t: "autoencoder" for t in NOISE_TYPES}
    ramp = np.tile(np.linspace(60, 220, 200), (200, 1)).astype(np.uint8)
    shot = poisson_gaussian(ramp, 0, photons=40.0, read_sigma=3.0)
    additive = add_noise(ramp, "gaussian", 25.0, rng=0)
    guarded = InspectionPipeline.from_dir(tiny_models, PipelineConfig(routes=routes))
    r_shot, r_additive = guarded.inspect_batch([shot, additive])
    assert r_shot.safe_path and r_shot.denoiser == "identity"
    assert not r_additive.safe_path and r_additive.denoiser == "autoencoder"
    unguarded = InspectionPipeline.from_dir(
        tiny_models, PipelineConfig(routes=routes, max_signal_dependence=0)
    )
    assert unguarded.inspect(shot).denoiser == "autoencoder"


@pytest.mark.parametrize("noise", NOISE_TYPES)
def test_a_blank_frame_is_not_a_part_and_gets_no_verdict(pipe, noise, casting_photo):
    blank = add_noise(np.full((160, 160), 90, np.uint8), noise, rng=0)  # an empty tray, a lens cap
    results = pipe.inspect_batch([blank, casting_photo])
    assert isinstance(results[0], Rejection) and results[0].reason == "not_a_part"
    assert "no part" in results[0].message
    assert isinstance(results[1], InspectionResult)  # the rest of the batch carries on


def test_part_check_can_be_turned_off(tiny_models):
    pipe = InspectionPipeline.from_dir(tiny_models, PipelineConfig(min_part_contrast=0))
    assert isinstance(pipe.inspect(np.full((64, 64), 90, np.uint8)), InspectionResult)
