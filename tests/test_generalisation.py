"""The router's off-distribution checks: camera jitter, spectral peaks, router-check and merged results."""

import json

import numpy as np
import pytest

from inspection import NOISE_TYPES
from inspection.camera import camera_jitter, camera_shift
from inspection.cli import main
from inspection.data import synth_casting
from inspection.generalisation import camera_shift_scores, protocol_scores, texture_false_periodic
from inspection.noise import Sinusoid, periodic_pattern
from inspection.spectrum import log_spectrum_full, noise_features, spectrum_centre
from inspection.summary import merge_sections


def always(noise_type):
    k = NOISE_TYPES.index(noise_type)

    def classify(photos):
        p = np.zeros((len(photos), len(NOISE_TYPES)))
        p[:, k] = 1.0
        return p

    return classify


def test_camera_jitter_is_seeded_and_off_at_zero():
    photo = synth_casting(np.random.default_rng(0), 96)
    a = camera_jitter(photo, np.random.default_rng(1), p=1.0)
    b = camera_jitter(photo, np.random.default_rng(1), p=1.0)
    assert a.dtype == np.uint8 and a.ndim == 2 and np.array_equal(a, b)
    assert a.shape != photo.shape or not np.array_equal(a, photo)
    assert np.array_equal(camera_jitter(photo, np.random.default_rng(1), p=0.0), photo)


def test_spectrum_centre_keeps_a_slow_wave_that_pooling_merges_into_the_centre():
    photo = synth_casting(np.random.default_rng(0), 320)
    wave = Sinusoid(amplitude=30.0, radius=6.0, angle=0.0, phase=0.0)
    noisy = np.clip(photo + periodic_pattern(photo.shape, (wave,)), 0, 255).astype(np.uint8)
    centre, noisy_centre = (
        spectrum_centre(log_spectrum_full(photo)),
        spectrum_centre(log_spectrum_full(noisy)),
    )
    assert centre.shape == (64, 64)
    assert noisy_centre[32, 38] - centre[32, 38] > 1.0  # six bins right of the centre, one pixel per bin
    planes = noise_features(noisy, 64, 3)
    assert planes.shape == (3, 64, 64) and np.array_equal(planes[:2], noise_features(noisy, 64, 2))
    assert noise_features(photo[:40, :40], 64, 3).shape == (3, 64, 64)  # smaller than the plane: pooled


def test_protocol_scores_of_a_classifier_that_always_says_clean():
    photos = [synth_casting(np.random.default_rng(i), 64) for i in range(3)]
    scores = protocol_scores(always("clean"), photos)
    assert scores.n_photos == 3 and scores.accuracy == pytest.approx(0.25)
    assert scores.recall == {"clean": 1.0, "gaussian": 0.0, "salt_pepper": 0.0, "periodic": 0.0}
    assert scores.clean_called["clean"] == 1.0
    assert scores.ece == pytest.approx(0.75)  # sure every time, right a quarter of the time


def test_texture_check_counts_periodic_calls():
    assert texture_false_periodic(always("periodic"), per_product=2, size=64)["rate"] == 1.0
    out = texture_false_periodic(always("clean"), per_product=2, size=64)
    assert out["rate"] == 0.0 and set(out["per_product"]) == {"turned", "knurled", "brushed", "tile"}


def test_merge_sections_keeps_the_others(tmp_path):
    path = tmp_path / "results.json"
    merge_sections(path, {"bench": {"ms": 11}, "noise_classifier": {"accuracy": 0.99}})
    merge_sections(path, {"generalisation": {"noise_ece": 0.02}})
    merge_sections(path, {"bench": {"ms": 10}})
    assert json.loads(path.read_text()) == {
        "bench": {"ms": 10},
        "noise_classifier": {"accuracy": 0.99},
        "generalisation": {"noise_ece": 0.02},
    }
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        merge_sections(path, {"bench": {}})


def test_router_check_from_the_cli(tiny_root, synthetic_root, tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"bench": {"ms_per_part_b32": 11.0}}))
    argv = ["router-check", "--models", str(tiny_root), "--data", str(synthetic_root), "--texture-n", "2"]
    argv += ["--camera-shift", "--texture-sizes", "96", "64"]
    assert main([*argv, "--results", str(results), "--json", str(tmp_path / "rc.json")]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "clean textured parts called periodic" in printed
    saved = json.loads(results.read_text())
    assert saved["bench"] == {"ms_per_part_b32": 11.0}
    section = saved["generalisation"]
    assert section["unseen_product"]["n_photos"] == 8  # the test split
    for key in (
        "unseen_product_noise_accuracy",
        "unseen_product_clean_recall",
        "noise_ece",
        "texture_false_periodic",
    ):
        assert 0 <= section[key] <= 1
    assert section["texture"]["size"] == 96 and set(section["texture_by_size"]) == {"96", "64"}
    assert section["texture_false_periodic"] == section["texture_by_size"]["96"]
    assert "called periodic at 96 px" in printed and "called periodic at 64 px" in printed
    assert section["camera_shift"]["shifted"]["accuracy"] >= 0
    assert "camera shift: defect accuracy" in printed
    assert json.loads((tmp_path / "rc.json").read_text()) == section


def test_camera_shift_keeps_the_size_and_shrinks_the_part():
    photo = synth_casting(np.random.default_rng(0), 128)
    shifted = camera_shift(photo, np.random.default_rng(1))
    assert shifted.shape == photo.shape and shifted.dtype == np.uint8
    assert np.array_equal(shifted, camera_shift(photo, np.random.default_rng(1)))
    dark = photo < 70  # the synthetic casting's dark background
    assert (shifted < 70).mean() < dark.mean()  # a brighter exposure, less of the frame is background-dark


def test_camera_shift_scores_report_both_sets(tiny_models):
    from inspection.pipeline import InspectionPipeline

    rng = np.random.default_rng(0)
    photos = [synth_casting(rng, 64, "crack" if i % 2 else None) for i in range(6)]
    out = camera_shift_scores(InspectionPipeline.from_dir(tiny_models), photos, np.arange(6) % 2)
    assert out["n_photos"] == 6
    for name in ("unshifted", "shifted"):
        assert (
            0 <= out[name]["accuracy"] <= 1 and out[name]["ood_rate"] == 0.0
        )  # the tiny bundle has no OOD model
