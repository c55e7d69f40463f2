"""The per-photo work as torch batches (inspection/ondevice.py) against the per-photo NumPy/OpenCV path it
replaces on a GPU, run here on the CPU: each to float32 rounding (a pixel one gray level off where a value sits
on a rounding edge), and the whole pipeline routing and judging alike either way; the streamed pipeline gives
inspect_batch's answers."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch

from inspection import NOISE_TYPES, ondevice
from inspection.bench import parity_report
from inspection.data import synth_casting
from inspection.denoise import MedianDenoiser, NotchDenoiser, noise_profile
from inspection.noise import add_noise, camera_noise
from inspection.pipeline import DEVICE_MIN_PHOTOS, InspectionPipeline
from inspection.results import Rejection
from inspection.transforms import DefectTransform


def photos(kind: str, n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        add_noise(synth_casting(rng, size, "blowhole" if i % 2 else None), kind, rng=rng) for i in range(n)
    ]


def off_by(expected: list[np.ndarray], got: torch.Tensor) -> np.ndarray:
    """Per photo, how many pixels differ; asserts none differs by more than one gray level."""
    diff = np.abs(np.stack(expected).astype(int) - got.numpy().astype(int))
    assert diff.max() <= 1
    return (diff > 0).sum((1, 2))


@pytest.mark.parametrize("size", [300, 173])
def test_refill_matches_the_median_denoiser(size):
    noisy = photos("salt_pepper", 6, size)
    changed = off_by(
        [MedianDenoiser()(p) for p in noisy], ondevice.refill_impulses(torch.from_numpy(np.stack(noisy)))
    )
    assert changed.max() <= 10  # of 30,000 to 90,000 pixels, most refilled


@pytest.mark.parametrize("size", [300, 173])
def test_batch_notch_matches_the_notch_denoiser(size):
    noisy = photos("periodic", 8, size) + photos("clean", 2, size)
    batch = torch.from_numpy(np.stack(noisy))
    expected = [NotchDenoiser()(p) for p in noisy]
    assert any(not np.array_equal(e, p) for e, p in zip(expected, noisy, strict=True))  # it removed something
    changed = off_by(expected, ondevice.BatchNotch(NotchDenoiser())(batch))
    assert changed.max() <= 20
    # clean photos have no peaks: returned as they came
    assert np.array_equal(ondevice.BatchNotch(NotchDenoiser())(batch[-2:]).numpy(), np.stack(noisy[-2:]))


def test_batch_notch_ignores_blank_photos_beside_it():
    noisy = torch.from_numpy(np.stack(photos("periodic", 6, 120, seed=4)))
    notch = ondevice.BatchNotch(NotchDenoiser())
    out = notch(torch.cat([noisy, torch.zeros_like(noisy)]))
    assert torch.equal(out[:6], notch(noisy)) and int(out[6:].max()) == 0
    assert torch.equal(notch(noisy, early_exit=False), notch(noisy))  # the steps after the end change nothing


def test_noise_profiles_match():
    noisy = (
        photos("gaussian", 4, 200)
        + [camera_noise(p, rng=i) for i, p in enumerate(photos("clean", 2, 200))]
        + photos("clean", 2, 200)
    )
    for expected, got in zip(
        [noise_profile(p) for p in noisy],
        ondevice.noise_profiles(torch.from_numpy(np.stack(noisy))),
        strict=True,
    ):
        assert got.sigma == pytest.approx(expected.sigma, abs=1e-4)
        assert got.signal_dependence == pytest.approx(expected.signal_dependence, abs=1e-3)


@pytest.mark.parametrize("m", [1001, 4096, 40000])  # 4096 and 40000: the thirds fall on whole positions
def test_percentiles_are_numpys_to_the_bit(m):
    x = np.random.default_rng(0).integers(0, 6, size=(3, m)).astype(np.float32)  # ties everywhere
    percents = (1, 100 / 3, 50, 200 / 3, 99)
    expected = np.stack([np.percentile(row, percents) for row in x])
    got = ondevice.percentiles(torch.from_numpy(x), percents).numpy()
    assert np.array_equal(got, expected)
    # a threshold at a third cuts where NumPy's does, ties included
    low = np.percentile(x[0], 100 / 3)
    assert int((torch.from_numpy(x[0]).double() <= float(got[0, 1])).sum()) == int((x[0] <= low).sum())


@pytest.mark.parametrize("side", [128, 160, 256, 300, 384, 512, 768])
def test_area_resize_is_opencvs_inter_area(side):
    gray = np.stack(photos("gaussian", 3, side))
    expected = np.stack([cv2.resize(g, (128, 128), interpolation=cv2.INTER_AREA) for g in gray])
    diff = np.abs(ondevice.area_resize(torch.from_numpy(gray), 128).numpy().astype(int) - expected)
    # exact, but at 6x (768 px), where OpenCV multiplies by an inexact 1/36: some pixels one level off
    assert diff.max() == 0 if side != 768 else diff.max() <= 1 and (diff > 0).mean() < 0.02


def test_defect_input_is_the_transforms():
    transform = DefectTransform(size=64, mean=0.4, std=0.2, resize="pad")
    grays = photos("clean", 2, 150) + [p[:, :100] for p in photos("clean", 2, 150)] + photos("clean", 1, 40)
    expected = transform(grays)
    assert torch.allclose(ondevice.defect_input(transform, grays, "cpu"), expected, atol=1e-6)


def test_group_indices_keep_first_appearance_order():
    assert ondevice.group_indices([(2, 2), (3, 3), (2, 2), (1, 1)]) == [[0, 2], [1], [3]]


def test_pipeline_on_device_batches_routes_and_judges_as_per_photo(shipped_models):
    rng = np.random.default_rng(3)
    noisy = [
        add_noise(synth_casting(rng, 300, "blowhole" if i % 2 else None), NOISE_TYPES[i % 4], rng=rng)
        for i in range(40)
    ] + photos("periodic", 2, 180, seed=9)  # a second size, too few to batch
    per_photo = InspectionPipeline.from_dir(shipped_models, workers=1)
    batched = InspectionPipeline.from_dir(shipped_models, workers=1)
    batched.batch_on_device = True
    report = parity_report(per_photo.inspect_batch(noisy), batched.inspect_batch(noisy))
    assert report["routes_agree"] == report["verdicts_agree"] == report["judged"] == len(noisy)
    assert report["max_delta_noise_p"] < 1e-4 and report["max_delta_defect_p"] < 1e-3
    assert {r.denoiser for r in per_photo.inspect_batch(noisy)} >= {"median", "notch", "identity"}


class KillsItsWorker:
    """A "photo" whose unpickling ends the worker process that receives it; in this process it is no image."""

    def __reduce__(self):
        return os._exit, (3,)


def test_stream_loses_no_batch_when_a_worker_dies_or_the_batches_fail(shipped_models, caplog):
    rng = np.random.default_rng(2)
    good = [cv2.imencode(".png", synth_casting(rng, 96, None))[1].tobytes() for _ in range(8)]

    def batches():
        yield good[:3]
        yield [good[3], KillsItsWorker(), good[4]]
        yield good[5:]
        raise OSError("the camera folder went away")

    pipe = InspectionPipeline.from_dir(shipped_models, workers=2, worker_processes=True)
    streamed = []
    try:
        with pytest.raises(OSError, match="went away"):
            for results in pipe.inspect_stream(batches()):
                streamed.append(results)
    finally:
        pipe.close()
    assert "a worker died decoding a batch of 3" in caplog.text  # it was the worker's death, handled
    assert [len(r) for r in streamed] == [3, 3, 3]  # the batch before the error came out first
    assert isinstance(streamed[1][1], Rejection) and streamed[1][1].reason == "not_an_image"
    judged = [r for batch in streamed for r in batch if not isinstance(r, Rejection)]
    assert len(judged) == 8 and all(r.verdict in ("ok", "defective", "review") for r in judged)


def test_stream_gives_inspect_batchs_answers_in_order(shipped_models, tmp_path):
    rng = np.random.default_rng(1)
    good = [cv2.imencode(".png", synth_casting(rng, 96, None))[1].tobytes() for _ in range(5)]
    batches = [good[:2], [b"not a photo", good[2]], good[3:]]
    pipe = InspectionPipeline.from_dir(shipped_models, workers=2)
    try:
        streamed = list(pipe.inspect_stream(iter(batches)))
        one_by_one = [pipe.inspect_batch(b) for b in batches]
    finally:
        pipe.close()
    assert [len(r) for r in streamed] == [2, 2, 2]
    assert streamed[1][0].reason == "not_an_image"  # a bad photo keeps its place in its batch
    for got, expected in zip(streamed, one_by_one, strict=True):
        assert [type(r).__name__ for r in got] == [type(r).__name__ for r in expected]
        assert [getattr(r, "verdict", None) for r in got] == [getattr(r, "verdict", None) for r in expected]


def test_only_groups_of_enough_photos_are_denoised_on_the_device(shipped_models):
    pipe = InspectionPipeline.from_dir(shipped_models, workers=1)
    notch, median = pipe.router.denoisers["notch"], pipe.router.denoisers["median"]
    big, small = np.zeros((120, 120), np.uint8), np.zeros((90, 120), np.uint8)
    grays = [big] * DEVICE_MIN_PHOTOS + [small] * (DEVICE_MIN_PHOTOS - 1) + [big] * DEVICE_MIN_PHOTOS
    denoisers = [notch] * (2 * DEVICE_MIN_PHOTOS - 1) + [median] * DEVICE_MIN_PHOTOS
    assert pipe._device_batches(grays, denoisers) == []  # on the CPU, nothing
    pipe.batch_on_device = True
    n = DEVICE_MIN_PHOTOS
    assert pipe._device_batches(grays, denoisers) == [list(range(n)), list(range(2 * n - 1, 3 * n - 1))]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_batches_on_cuda_match_the_per_photo_path():
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = (
        False  # as the pipeline sets them
    )
    periodic, impulses = photos("periodic", 10, 300), photos("salt_pepper", 10, 300)
    assert (
        off_by(
            [NotchDenoiser()(p) for p in periodic],
            ondevice.BatchNotch(NotchDenoiser())(ondevice.upload(periodic, "cuda")).cpu(),
        ).max()
        <= 20
    )
    assert (
        off_by(
            [MedianDenoiser()(p) for p in impulses],
            ondevice.refill_impulses(ondevice.upload(impulses, "cuda")).cpu(),
        ).max()
        <= 10
    )
    gaussian = photos("gaussian", 6, 300)
    for expected, got in zip(
        [noise_profile(p) for p in gaussian],
        ondevice.noise_profiles(ondevice.upload(gaussian, "cuda")),
        strict=True,
    ):
        assert got.sigma == pytest.approx(expected.sigma, abs=1e-3)
        assert got.signal_dependence == pytest.approx(expected.signal_dependence, abs=1e-3)
    transform = DefectTransform(size=128)
    assert torch.allclose(
        ondevice.defect_input(transform, gaussian, "cuda").cpu(), transform(gaussian), atol=1e-6
    )
