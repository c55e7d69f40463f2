"""Noise synthesis: the four routed noise types, realistic noise for evaluation, camera noise for training.

Every function takes and returns ``uint8`` grayscale arrays of any size and draws its randomness
from a ``numpy.random.Generator`` so results are reproducible for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from inspection import NOISE_TYPES

# The standard protocol's level ranges (docs/protocol.md).
GAUSSIAN_SIGMA = (10.0, 50.0)
SALT_PEPPER_DENSITY = (0.02, 0.20)
PERIODIC_AMPLITUDE = (20.0, 60.0)
PERIODIC_RADIUS = (6.0, 60.0)
PERIODIC_TWO_WAVE_SHARE = 0.3
LEVEL_RANGES = {
    "gaussian": GAUSSIAN_SIGMA,
    "salt_pepper": SALT_PEPPER_DENSITY,
    "periodic": PERIODIC_AMPLITUDE,
}
LEVEL_BINS = ("low", "mid", "high")


@dataclass(frozen=True)
class Sinusoid:
    """One periodic component: ``amplitude * sin(2*pi*(u*x + v*y)/size + phase)``."""

    amplitude: float
    radius: float  # cycles per image
    angle: float  # radians
    phase: float


@dataclass(frozen=True)
class NoiseSpec:
    """A fully specified noise draw, so the same corruption can be replayed and reported."""

    kind: str
    level: float = 0.0
    waves: tuple[Sinusoid, ...] = field(default_factory=tuple)

    @property
    def level_bin(self) -> str:
        return level_bin(self.kind, self.level)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_image(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"expected a 2-D uint8 grayscale image, got dtype {image.dtype} shape {image.shape}")


def level_bin(kind: str, level: float) -> str:
    """Name the third of the standard range that ``level`` falls in: low, mid or high."""
    if kind not in LEVEL_RANGES:
        return "none"
    lo, hi = LEVEL_RANGES[kind]
    frac = (level - lo) / (hi - lo)
    return LEVEL_BINS[int(np.clip(frac * 3, 0, 2))]


def sample_spec(
    kind: str, rng: np.random.Generator | int | None = None, level: float | None = None
) -> NoiseSpec:
    """Draw a noise spec under the standard protocol; ``level`` fixes the sigma/density/amplitude."""
    rng = _as_rng(rng)
    if kind not in NOISE_TYPES:
        raise ValueError(f"unknown noise type {kind!r}; expected one of {NOISE_TYPES}")
    if kind == "clean":
        return NoiseSpec("clean")
    lo, hi = LEVEL_RANGES[kind]
    lvl = float(rng.uniform(lo, hi)) if level is None else float(level)
    if kind != "periodic":
        return NoiseSpec(kind, lvl)
    n_waves = 2 if rng.random() < PERIODIC_TWO_WAVE_SHARE else 1
    waves = tuple(
        Sinusoid(
            amplitude=lvl if i == 0 else float(rng.uniform(lo, hi)),
            radius=float(rng.uniform(*PERIODIC_RADIUS)),
            angle=float(rng.uniform(0, np.pi)),
            phase=float(rng.uniform(0, 2 * np.pi)),
        )
        for i in range(n_waves)
    )
    return NoiseSpec("periodic", lvl, waves)


def protocol_rng(seed: int, photo: int, stream: int) -> np.random.Generator:
    """The generator for one photo's draw in an evaluation: the same photo, seed and stream give the same noise."""
    return np.random.default_rng([seed, photo, stream])


def apply_spec(
    image: np.ndarray, spec: NoiseSpec, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Corrupt ``image`` as ``spec`` says; returns a new uint8 array of the same shape."""
    _check_image(image)
    rng = _as_rng(rng)
    if spec.kind == "clean":
        return image.copy()
    if spec.kind == "gaussian":
        noisy = image.astype(np.float32) + rng.normal(0.0, spec.level, image.shape).astype(np.float32)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if spec.kind == "salt_pepper":
        out = image.copy()
        hit = rng.random(image.shape) < spec.level
        salt = rng.random(image.shape) < 0.5
        out[hit & salt] = 255
        out[hit & ~salt] = 0
        return out
    if spec.kind == "periodic":
        return np.clip(
            np.rint(image.astype(np.float32) + periodic_pattern(image.shape, spec.waves)), 0, 255
        ).astype(np.uint8)
    raise ValueError(f"unknown noise type {spec.kind!r}; expected one of {NOISE_TYPES}")


def periodic_pattern(shape: tuple[int, ...], waves: tuple[Sinusoid, ...]) -> np.ndarray:
    """Sum of sinusoids; frequencies are in cycles per image so they scale with the photo."""
    h, w = shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    pattern = np.zeros((h, w), np.float32)
    for s in waves:
        fx, fy = s.radius * np.cos(s.angle) / w, s.radius * np.sin(s.angle) / h
        pattern += s.amplitude * np.sin(2 * np.pi * (fx * x + fy * y) + s.phase).astype(np.float32)
    return pattern


def add_noise(
    image: np.ndarray, kind: str, level: float | None = None, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Add noise of ``kind`` at ``level`` (sigma, density or amplitude; random in range when None).

    Example:
        >>> noisy = add_noise(photo, "gaussian", 25.0, rng=0)
    """
    rng = _as_rng(rng)
    return apply_spec(image, sample_spec(kind, rng, level), rng)


# --- realistic noise, for evaluating the pipeline as trained -------------------------------------------


def poisson_gaussian(
    image: np.ndarray,
    rng: np.random.Generator | int | None = None,
    photons: float = 20.0,
    read_sigma: float = 4.0,
) -> np.ndarray:
    """Signal-dependent sensor noise: shot noise at ``photons`` per gray level unit plus read noise."""
    _check_image(image)
    rng = _as_rng(rng)
    scale = photons / 255.0
    shot = rng.poisson(image.astype(np.float64) * scale) / scale
    noisy = shot + rng.normal(0.0, read_sigma, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def correlated_gaussian(
    image: np.ndarray, rng: np.random.Generator | int | None = None, sigma: float = 20.0, blur: float = 1.2
) -> np.ndarray:
    """Spatially correlated noise (demosaicing, digital zoom): Gaussian noise low-passed, rescaled to ``sigma``."""
    _check_image(image)
    rng = _as_rng(rng)
    field_: np.ndarray = cv2.GaussianBlur(rng.normal(0.0, 1.0, image.shape).astype(np.float32), (0, 0), blur)
    field_ = field_ * np.float32(sigma / max(float(field_.std()), 1e-6))
    return np.clip(np.rint(image.astype(np.float32) + field_), 0, 255).astype(np.uint8)


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG at ``quality`` (1-100)."""
    _check_image(image)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return np.asarray(decoded)


REALISTIC_KINDS = ("poisson_gaussian", "correlated", "jpeg_noisy", "salt_pepper_gaussian")


def add_realistic_noise(
    image: np.ndarray, kind: str, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Factory-like noise the classifier never trained on, with levels drawn from realistic ranges."""
    rng = _as_rng(rng)
    if kind == "poisson_gaussian":
        return poisson_gaussian(
            image, rng, photons=float(rng.uniform(5, 40)), read_sigma=float(rng.uniform(2, 8))
        )
    if kind == "correlated":
        return correlated_gaussian(
            image, rng, sigma=float(rng.uniform(10, 30)), blur=float(rng.uniform(0.8, 2.0))
        )
    if kind == "jpeg_noisy":
        noisy = add_noise(image, "gaussian", float(rng.uniform(10, 30)), rng)
        return jpeg_compress(noisy, int(rng.integers(30, 71)))
    if kind == "salt_pepper_gaussian":
        noisy = add_noise(image, "gaussian", float(rng.uniform(5, 20)), rng)
        return add_noise(noisy, "salt_pepper", float(rng.uniform(0.01, 0.08)), rng)
    raise ValueError(f"unknown realistic noise {kind!r}; expected one of {REALISTIC_KINDS}")


# --- camera noise, a training family -----------------------------------------------------------------
# What a real camera pipeline puts on a photo, drawn wider than the evaluation's realistic ranges above so that
# a model trained on it is not fitted to them: shot noise from 3 to 100 photons per gray level unit (log-uniform)
# with read noise, then, each independently, spatial correlation (demosaicing, digital zoom) and JPEG.
CAMERA_PHOTONS = (3.0, 100.0)
CAMERA_READ_SIGMA = (0.0, 10.0)
CAMERA_CORRELATED = (0.4, 5.0, 30.0, 0.6, 2.5)  # share, sigma range, blur range
CAMERA_JPEG = (0.4, 20, 95)  # share, quality range
CAMERA = "camera"
"""A training-only noise family (not a routed noise type): the pipeline routes it as ``gaussian``."""
TRAINING_NOISES = (*NOISE_TYPES, CAMERA)


def camera_noise(image: np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """One draw of camera noise: shot and read noise, then possibly spatial correlation and JPEG.

    Example:
        >>> noisy = camera_noise(photo, rng=0)
    """
    rng = _as_rng(rng)
    photons = float(np.exp(rng.uniform(*np.log(CAMERA_PHOTONS))))
    out = poisson_gaussian(image, rng, photons=photons, read_sigma=float(rng.uniform(*CAMERA_READ_SIGMA)))
    share, s_lo, s_hi, b_lo, b_hi = CAMERA_CORRELATED
    if rng.random() < share:
        out = correlated_gaussian(
            out, rng, sigma=float(rng.uniform(s_lo, s_hi)), blur=float(rng.uniform(b_lo, b_hi))
        )
    share, q_lo, q_hi = CAMERA_JPEG
    if rng.random() < share:
        out = jpeg_compress(out, int(rng.integers(q_lo, q_hi + 1)))
    return out


def add_training_noise(
    image: np.ndarray, kind: str, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """``add_noise`` for the routed noise types, plus the ``camera`` training family."""
    if kind == CAMERA:
        return camera_noise(image, rng)
    return add_noise(image, kind, rng=rng)


def routed_as(kind: str) -> str:
    """The noise type whose route a training noise takes: ``camera`` noise goes where ``gaussian`` does."""
    return "gaussian" if kind == CAMERA else kind
