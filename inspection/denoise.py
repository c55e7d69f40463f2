"""Denoisers behind one interface, and the routing table from noise type to denoiser.

Every denoiser maps a ``uint8`` grayscale image to a ``uint8`` image of the same shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import cv2
import numpy as np
import scipy.fft
import torch
from torch import nn

from inspection import NOISE_TYPES
from inspection.models.inference import for_inference
from inspection.spectrum import log1p


class Denoiser(Protocol):
    """Anything with a ``name`` that maps a uint8 gray image to a uint8 gray image."""

    name: str

    def __call__(self, image: np.ndarray) -> np.ndarray: ...


class IdentityDenoiser:
    """Leaves the photo untouched: the route for clean photos."""

    name = "identity"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return image


@dataclass
class MedianDenoiser:
    """Median filtering for impulse (salt-and-pepper) noise.

    With ``switching=True`` (default) only pixels stuck at 0 or 255 are treated as impulses and refilled from
    their valid neighbours (normalised convolution, widening until every impulse has support); all other
    pixels keep their value, so edges and fine defects survive. With ``switching=False`` it is the classic
    ``passes`` x ``ksize`` median; above ``heavy_density`` estimated impulses its first pass uses ``heavy_ksize``
    (measured on the casting photos: 3x3 passes win up to a density of about 0.3, a 5x5 first pass beyond).
    """

    ksize: int = 3
    passes: int = 3
    switching: bool = True
    heavy_density: float = 0.35
    heavy_ksize: int = 5
    name: str = "median"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        impulses = (image == 0) | (image == 255)
        if self.switching:
            return _refill(image, impulses)
        heavy = impulses.mean() > self.heavy_density
        out = image
        for i in range(self.passes):
            out = cv2.medianBlur(out, self.heavy_ksize if heavy and i == 0 else self.ksize)
        return out


REFILL_SIGMAS = (0.8, 1.5, 3.0, 6.0)  # the impulse refill's blurs, narrowest first


def _refill(image: np.ndarray, holes: np.ndarray) -> np.ndarray:
    out = image.astype(np.float32)
    valid = (~holes).astype(np.float32)
    todo = holes.copy()
    for sigma in REFILL_SIGMAS:
        if not todo.any():
            break
        num = cv2.GaussianBlur(out * valid, (0, 0), sigma)
        den = cv2.GaussianBlur(valid, (0, 0), sigma)
        fill = todo & (den > 0.05)
        out[fill] = num[fill] / den[fill]
        valid[fill] = 1.0
        todo &= ~fill
    # Pixels with no valid neighbour at all (a saturated area) keep their value.
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass
class NotchDenoiser:
    """Finds periodic peaks in the spectrum and removes each sinusoid by fitting it exactly.

    A peak is a spectral bin standing ``threshold`` (natural-log units) above the median of its frequency
    ring, at least ``min_radius`` cycles from the centre, and strong enough to be a sinusoid of at least
    ``min_amplitude`` gray levels. Peaks are taken one at a time, strongest first: each one's frequency is
    refined to sub-bin precision, its sinusoid is fitted and subtracted, and the spectrum is looked at
    again, so the leakage of an off-grid frequency goes with its peak. A photo without such peaks comes
    back unchanged.
    """

    threshold: float = 2.5
    min_radius: float = 3.0
    min_amplitude: float = 2.0
    max_peaks: int = 6
    name: str = "notch"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        f = image.astype(np.float32)
        mean = float(f.mean())
        f -= mean
        h, w = f.shape
        radius, ring = _rings(h, w)
        magnitude = np.abs(scipy.fft.rfft2(f))
        background = _ring_medians(log1p(magnitude), ring)[ring]
        eligible = radius >= self.min_radius
        # A sinusoid of amplitude A puts at least about 0.4*A*h*w/2 in its nearest bin, even off-grid.
        floor = 0.2 * self.min_amplitude * f.size
        removed = 0
        for _ in range(2 * self.max_peaks):
            candidates = np.flatnonzero(eligible & (magnitude > floor))
            if not candidates.size or removed == self.max_peaks:
                break
            excess = log1p(magnitude.ravel()[candidates]).ravel() - background.ravel()[candidates]
            best = int(np.argmax(excess))
            if excess[best] < self.threshold:
                break
            iy, ix = np.unravel_index(int(candidates[best]), magnitude.shape)
            ky = iy if iy <= h // 2 else iy - h
            fy, fx = _refine_frequency(f, ky / h, ix / w)
            ey = np.exp(-2j * np.pi * fy * np.arange(h)).astype(np.complex64)
            ex = np.exp(-2j * np.pi * fx * np.arange(w)).astype(np.complex64)
            coef = 2.0 * complex(ey @ _real_matmul(f, ex[:, None])[:, 0]) / f.size
            if abs(coef) < self.min_amplitude:
                eligible[iy, ix] = False
                continue
            # Subtract Re(coef * conj(ey) (x) conj(ex)) as two real outer products.
            py = (coef * ey.conj()).astype(np.complex64)
            f -= np.outer(py.real, ex.real)
            f -= np.outer(py.imag, ex.imag)
            magnitude = np.abs(scipy.fft.rfft2(f))
            removed += 1
        if not removed:
            return image
        return np.clip(np.rint(f + mean), 0, 255).astype(np.uint8)


def _real_matmul(f: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``f @ z`` for a real float32 ``f`` and complex ``z``, without converting ``f`` to complex."""
    return (f @ np.ascontiguousarray(z.real) + 1j * (f @ np.ascontiguousarray(z.imag))).astype(np.complex64)


@functools.lru_cache(maxsize=16)
def _rings(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Radius (cycles per image, aspect-corrected) of each half-plane FFT bin, and its integer ring."""
    ky = np.fft.fftfreq(h) * h
    radius = np.hypot(ky[:, None] * (w / h), np.arange(w // 2 + 1)[None, :])
    radius.setflags(write=False)
    ring = np.rint(radius).astype(np.int64)
    ring.setflags(write=False)
    return radius, ring


def _ring_medians(values: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Median of ``values`` in each ring, from one sort of keys ordered by (ring, value)."""
    low = float(values.min())
    span = float(values.max()) - low + 1.0
    keys = np.sort(ring.ravel() * span + (values.ravel() - low))  # ring-major, then value
    counts = np.bincount(ring.ravel())
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    middle = np.minimum(starts + counts // 2, len(keys) - 1)
    return (keys[middle] - np.arange(len(counts)) * span + low).astype(np.float32)


def _refine_frequency(f: np.ndarray, fy: float, fx: float) -> tuple[float, float]:
    """Sub-bin frequency (cycles per pixel) maximising the DTFT magnitude near a peak, by nested grid search."""
    h, w = f.shape
    for span, steps in ((0.55, 12), (0.06, 9), (0.01, 5)):
        fys = fy + np.linspace(-span, span, steps) / h
        fxs = fx + np.linspace(-span, span, steps) / w
        ey = np.exp(-2j * np.pi * np.outer(fys, np.arange(h))).astype(np.complex64)
        ex = np.exp(-2j * np.pi * np.outer(np.arange(w), fxs)).astype(np.complex64)
        power = np.abs(ey @ _real_matmul(f, ex))
        iy, ix = np.unravel_index(int(np.argmax(power)), power.shape)
        fy, fx = float(fys[iy]), float(fxs[ix])
    return fy, fx


def group_indices(keys: Sequence[Hashable]) -> list[list[int]]:
    """Indices of equal keys (photo shapes, say), a group per key in order of first appearance."""
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


class AutoencoderDenoiser:
    """Runs a denoising autoencoder on any image size; images of one size are batched together."""

    name = "autoencoder"

    def __init__(self, model: nn.Module, *, version: str = "", device: str = "cpu") -> None:
        self.model = for_inference(model).to(device)
        self.version = version
        self.device = device

    def denoise_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(images)
        for idx in group_indices([im.shape for im in images]):
            y = self.denoise_stack(np.stack([images[i] for i in idx]))
            for j, i in enumerate(idx):
                out[i] = y[j]
        return [o for o in out if o is not None]

    @torch.inference_mode()
    def denoise_stack(self, stack: np.ndarray) -> np.ndarray:
        """Photos of one size, ``(n, H, W)`` uint8, denoised: scaled to 0..1, the model, rounded back to 8 bits."""
        x = torch.from_numpy(stack).to(self.device).float().div_(255.0)
        return self.model(x[:, None]).clamp_(0, 1).mul_(255.0).round_().to(torch.uint8)[:, 0].cpu().numpy()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.denoise_batch([image])[0]


_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32) * np.float32(
    np.sqrt(np.pi / 2) / 6
)


BRIGHTNESS_THIRDS = (100 / 3, 200 / 3)  # percentiles: the darkest and brightest thirds of a photo


class NoiseProfile(NamedTuple):
    sigma: float
    """Noise standard deviation in gray levels (Immerkaer 1996, "Fast noise variance estimation")."""
    signal_dependence: float
    """Noise in the brightest third of the photo over noise in its darkest third."""


def noise_profile(image: np.ndarray) -> NoiseProfile:
    """How strong the noise is, and whether it grows with brightness.

    Noise is measured per pixel with Immerkaer's Laplacian-difference kernel, brightness as a 7x7 local mean.
    Additive noise gives a signal dependence of about 1 (more where clipping at black shrinks it in dark
    areas); shot noise, whose variance grows with the signal, gives more.
    """
    f = image.astype(np.float32)
    noise = np.abs(cv2.filter2D(f, -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT))
    brightness = cv2.blur(f, (7, 7))
    low, high = np.percentile(brightness, BRIGHTNESS_THIRDS)
    dark, bright = noise[brightness <= low].mean(), noise[brightness >= high].mean()
    return NoiseProfile(float(noise.mean()), float(bright / max(float(dark), 1e-3)))


DEFAULT_ROUTES: dict[str, str] = {
    "clean": "identity",
    "gaussian": "autoencoder",
    "salt_pepper": "median",
    "periodic": "notch",
}


@dataclass
class Router:
    """Maps a noise type to a denoiser through a routing table that config can change.

    With ``min_denoise_sigma`` above 0, a photo routed to the autoencoder whose estimated noise sigma
    (:func:`noise_profile`) is below it keeps its pixels: at that little noise the autoencoder erases more of a
    thin defect than the noise hides, and a defect model trained on such photos undenoised judges them better.
    Training (``inspection train defect --min-denoise-sigma``) and the pipeline route through this one rule.
    """

    denoisers: Mapping[str, Denoiser]
    routes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ROUTES))
    min_denoise_sigma: float = 0.0

    def __post_init__(self) -> None:
        for noise_type, name in self.routes.items():
            if noise_type not in NOISE_TYPES:
                raise ValueError(
                    f"route for unknown noise type {noise_type!r}; expected one of {NOISE_TYPES}"
                )
            if name not in self.denoisers:
                raise ValueError(
                    f"route {noise_type} -> {name!r}: no such denoiser; available: {sorted(self.denoisers)}"
                )

    def denoiser_for(self, noise_type: str) -> Denoiser:
        return self.denoisers[self.routes.get(noise_type, "identity")]

    def gated(self, denoiser: Denoiser, sigma: float) -> Denoiser:
        """``denoiser``, or the identity for an autoencoder photo whose noise sigma is below ``min_denoise_sigma``."""
        if isinstance(denoiser, AutoencoderDenoiser) and sigma < self.min_denoise_sigma:
            return self.denoisers.get("identity") or IdentityDenoiser()
        return denoiser

    def denoiser_for_photo(self, noise_type: str, image: np.ndarray) -> Denoiser:
        """:meth:`denoiser_for`, then :meth:`gated` by the photo's own noise (estimated only when it matters)."""
        denoiser = self.denoiser_for(noise_type)
        if self.min_denoise_sigma > 0 and isinstance(denoiser, AutoencoderDenoiser):
            return self.gated(denoiser, noise_profile(image).sigma)
        return denoiser


@dataclass
class NLMeansDenoiser:
    """OpenCV non-local means with the noise sigma estimated from the photo (a classical baseline)."""

    strength: float = 1.0
    name: str = "nlmeans"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from skimage.restoration import estimate_sigma

        sigma = float(estimate_sigma(image))
        return cv2.fastNlMeansDenoising(
            image, None, h=max(1.0, self.strength * sigma), templateWindowSize=7, searchWindowSize=21
        )


# The denoisers that need no model, by name; ``build_denoisers`` adds the autoencoder from its checkpoint.
MODEL_FREE: dict[str, Callable[[], Denoiser]] = {
    "identity": IdentityDenoiser,
    "median": MedianDenoiser,
    "median_classic": lambda: MedianDenoiser(switching=False, name="median_classic"),
    "notch": NotchDenoiser,
    "nlmeans": NLMeansDenoiser,
}


def build_denoisers(autoencoder: nn.Module | None = None, *, version: str = "") -> dict[str, Denoiser]:
    """Every denoiser the pipeline can route to, by name: the model-free ones, plus ``autoencoder`` when given.

    This registry is the one name-to-denoiser table: the pipeline, training, evaluation and the dashboard all
    build their denoisers here.
    """
    table = {name: make() for name, make in MODEL_FREE.items()}
    if autoencoder is not None:
        table["autoencoder"] = AutoencoderDenoiser(autoencoder, version=version)
    return table
