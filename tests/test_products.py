"""Procedural textured products: photos, real periodic texture, defects, the dataset writer and ``synth``."""

from __future__ import annotations

import re

import numpy as np
import pytest

from inspection.cli import main
from inspection.data import ALL_DEFECT_KINDS, list_split, synth_casting, write_synthetic_dataset
from inspection.products import PRODUCTS, TEXTURED_PRODUCTS, synth_part, synth_product_samples


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def fine_peak(img: np.ndarray) -> float:
    """Strongest spectral component at fine scale (periods 2.2-12 px at 160 px) over the median there.

    White noise gives about 4; a lattice or streak texture gives a sharp peak or line far above its median.
    """
    n = img.shape[0]
    s = n / 160
    f = img.astype(np.float64) - img.mean()
    window = np.outer(np.hanning(n), np.hanning(n))
    mag = np.abs(np.fft.fftshift(np.fft.fft2(f * window)))
    yy, xx = np.mgrid[:n, :n] - n // 2
    r = np.hypot(xx, yy)
    band = (r >= n / (12 * s)) & (r <= n / (2.2 * s))
    return float(mag[band].max() / np.median(mag[band]))


def ring_bump(img: np.ndarray) -> tuple[float, float]:
    """Welch's method: the power spectrum averaged over half-overlapping patches, then over angle.

    Patches keep the whole part's outline (whose global spectrum rings like a Bessel function) out of the
    way: each patch sees a piece of straight edge, whose spectrum falls smoothly. Returns the highest bump of
    the radial profile over the geometric mean of the profile 3 bins either side, and its period in pixels
    at 160 px, searched over periods 2.2-9 px.
    """
    n = img.shape[0]
    s = n / 160
    m = round(64 * s)
    f = img.astype(np.float64)
    window = np.outer(np.hanning(m), np.hanning(m))
    power = np.zeros((m, m))
    for y in range(0, n - m + 1, m // 2):
        for x in range(0, n - m + 1, m // 2):
            patch = f[y : y + m, x : x + m]
            power += np.abs(np.fft.fft2((patch - patch.mean()) * window)) ** 2
    yy, xx = np.mgrid[:m, :m] - m // 2
    radius = np.round(np.hypot(xx, yy)).astype(int)
    profile = np.bincount(radius.ravel(), np.fft.fftshift(power).ravel()) / np.bincount(radius.ravel())
    bins = np.arange(int(np.ceil(m / (9 * s))), min(int(m / (2.2 * s)), m // 2 - 4) + 1)
    bumps = profile[bins] / np.sqrt(profile[bins - 3] * profile[bins + 3])
    i = int(np.argmax(bumps))
    return float(bumps[i]), m / bins[i] / s


@pytest.mark.parametrize("size", [96, 160, 301])
@pytest.mark.parametrize("product", PRODUCTS)
def test_every_product_draws_a_gray_photo(product, size):
    img = synth_part(rng(size), size, product)
    assert img.shape == (size, size) and img.dtype == np.uint8
    assert img.std() > 10  # a part on a background, not a blank frame


def test_same_seed_same_photo_and_casting_unchanged():
    for product in PRODUCTS:
        a, b = synth_part(rng(7), 96, product, "crack"), synth_part(rng(7), 96, product, "crack")
        assert np.array_equal(a, b)
        assert not np.array_equal(a, synth_part(rng(8), 96, product, "crack"))
    assert np.array_equal(synth_part(rng(3), 96, "casting", "burr"), synth_casting(rng(3), 96, "burr"))


@pytest.mark.parametrize("product", ["knurled", "brushed", "tile"])
def test_lattice_and_streak_textures_show_a_sharp_spectral_peak(product):
    # Castings reach about 20-35 here: only their outlines carry fine detail.
    for seed in range(4):
        peak = fine_peak(synth_part(rng(seed), 160, product))
        assert peak > 50 and peak > 2 * fine_peak(synth_casting(rng(seed), 160)), (seed, peak)


def test_turned_faces_show_a_ring_at_the_lathe_feed():
    # Castings stay below 1.6: no radial bump at fine periods.
    for seed in range(4):
        bump, period = ring_bump(synth_part(rng(seed), 160, "turned"))
        assert bump > 2.5 and 2.2 <= period <= 9, (seed, bump, period)
        assert ring_bump(synth_casting(rng(seed), 160))[0] < 2.0


@pytest.mark.parametrize("product", TEXTURED_PRODUCTS)
def test_every_defect_kind_changes_a_small_part_of_the_photo(product):
    # Lighting and optics are drawn before the defect, so the same seed differs only by the defect.
    for seed, kind in enumerate(ALL_DEFECT_KINDS):
        clean = synth_part(rng(seed), 96, product).astype(int)
        diff = np.abs(synth_part(rng(seed), 96, product, kind).astype(int) - clean)
        assert diff.max() > 30, kind
        assert (diff > 10).mean() < 0.2, kind


def test_unknown_product_or_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown product 'gear'.*turned"):
        synth_part(rng(0), 96, "gear")
    with pytest.raises(ValueError, match="unknown defect kind 'dent'"):
        synth_part(rng(0), 96, "tile", "dent")
    with pytest.raises(ValueError, match="gear"):
        write_synthetic_dataset(tmp_path / "x", n_train=1, n_test=0, products=["turned", "gear"])
    assert not (tmp_path / "x").exists()


def test_product_samples_draw_every_product_and_label():
    drawn = list(synth_product_samples(60, rng(0), size=48, kinds=("crack", "scratch")))
    assert {p for *_, p in drawn} == set(PRODUCTS)
    assert all((label == 1) == (kind in ("crack", "scratch")) for _, label, kind, _ in drawn)
    assert all(kind == "ok" for _, label, kind, _ in drawn if not label)
    assert 15 < sum(label for _, label, _, _ in drawn) < 45


NAME = re.compile(r"synth_(train|test)_\d{5}_(turned|tile)_([a-z_]+)\.png")


def test_dataset_names_carry_the_product(tmp_path):
    root = write_synthetic_dataset(
        tmp_path, n_train=8, n_test=3, size=48, seed=1, products=["turned", "tile"]
    )
    files = sorted(root.rglob("*.png"))
    assert len(files) == 11 and all(NAME.fullmatch(p.name) for p in files)
    for s in list_split(root, "train"):
        kind = NAME.fullmatch(s.path.name).group(3)
        assert (kind == "ok") == (s.label == 0)


def test_synth_command_draws_the_named_products(tmp_path, capsys):
    out = tmp_path / "data"
    args = ["synth", "--out", str(out), "--n-train", "6", "--n-test", "2", "--size", "48", "--seed", "4"]
    assert main([*args, "--products", "turned", "tile"]) == 0
    names = [p.name for p in out.rglob("*.png")]
    assert len(names) == 8 and all(NAME.fullmatch(n) for n in names)
    assert "wrote 6 train" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*args, "--products", "gear"])
