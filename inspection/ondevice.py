"""The per-photo work outside the models as torch batches on the pipeline's device.

On a GPU machine the pipeline's CPU work (the median and notch filters, the noise profile that gates the
autoencoder, the defect model's resizing and the OOD check's input statistics) was the limit, not the GPU
(``docs/deployment.md``, "Measured on a GPU"). Each function here takes a batch of photos of one size and does
what its per-photo NumPy/OpenCV counterpart in :mod:`inspection.denoise`, :mod:`inspection.transforms` or
:mod:`inspection.ood` does, to float32 rounding (``tests/test_ondevice.py`` checks each against it on the CPU):
a pixel may differ by one gray level where a value sits on a rounding edge.

Photos are ``(n, H, W)`` uint8 tensors on the device. On 2 CPU cores the per-photo path is faster, so the
pipeline uses these on a GPU only (:attr:`inspection.pipeline.InspectionPipeline.batch_on_device`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from inspection.denoise import (
    _NOISE_KERNEL,
    BRIGHTNESS_THIRDS,
    REFILL_SIGMAS,
    MedianDenoiser,
    NoiseProfile,
    NotchDenoiser,
    _rings,
    group_indices,
)
from inspection.transforms import DefectTransform, area_weights


@functools.lru_cache(maxsize=32)
def _gaussian_kernel(sigma: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """``cv2.GaussianBlur``'s 1-D kernel for a float image and ``ksize=(0, 0)``, on ``device``."""
    ksize = int(round(sigma * 4 * 2 + 1)) | 1
    return torch.tensor(cv2.getGaussianKernel(ksize, sigma, cv2.CV_32F)[:, 0], device=device)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``cv2.GaussianBlur(x, (0, 0), sigma)`` of a float batch ``(n, H, W)`` (border reflected without its edge
    pixel, OpenCV's default); each side must be longer than half the kernel."""
    k = _gaussian_kernel(sigma, x.device)
    r = len(k) // 2
    y = F.pad(x[:, None], (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    return F.conv2d(y, k.view(1, 1, -1, 1))[:, 0]


def fits_blur(shape: tuple[int, ...]) -> bool:
    """Whether photos of this shape are large enough for the widest blur here (reflection needs the room)."""
    r = len(_gaussian_kernel(max(REFILL_SIGMAS))) // 2
    return min(shape[-2:]) > r


def refill_impulses(gray: torch.Tensor) -> torch.Tensor:
    """:class:`inspection.denoise.MedianDenoiser` (switching, its default) on a batch: pixels stuck at 0 or 255
    refilled from their valid neighbours by normalised convolution, widening until each has support."""
    out = gray.float()
    holes = (gray == 0) | (gray == 255)
    valid = (~holes).float()
    todo = holes.clone()
    for sigma in REFILL_SIGMAS:
        if not bool(todo.any()):
            break
        num, den = gaussian_blur(torch.cat([out * valid, valid]), sigma).chunk(2)
        fill = todo & (den > 0.05)
        out = torch.where(fill, num / den.clamp_min(1e-12), out)
        valid = torch.where(fill, 1.0, valid)
        todo &= ~fill
    return out.round_().clamp_(0, 255).to(torch.uint8)


def noise_profiles(gray: torch.Tensor) -> list[NoiseProfile]:
    """:func:`inspection.denoise.noise_profile` of each photo of a batch."""
    f = gray.float()[:, None]
    kernel = torch.from_numpy(_NOISE_KERNEL).to(f.device).view(1, 1, 3, 3)
    noise = (
        F.conv2d(F.pad(f, (1, 1, 1, 1), mode="replicate"), kernel).abs()[:, 0].flatten(1)
    )  # BORDER_REFLECT
    brightness = F.avg_pool2d(F.pad(f, (3, 3, 3, 3), mode="reflect"), 7, stride=1)[:, 0].flatten(1)
    low, high = percentiles(brightness, BRIGHTNESS_THIRDS).unbind(1)
    dark_mask, bright_mask = brightness.double() <= low[:, None], brightness.double() >= high[:, None]
    dark = (noise * dark_mask).sum(1) / dark_mask.sum(1)
    bright = (noise * bright_mask).sum(1) / bright_mask.sum(1)
    sigma = noise.mean(1)
    ratio = bright / dark.clamp_min(1e-3)
    return [NoiseProfile(float(s), float(r)) for s, r in zip(sigma.tolist(), ratio.tolist(), strict=True)]


def percentiles(x: torch.Tensor, percents: Sequence[float]) -> torch.Tensor:
    """``np.percentile(row, percents)`` of each row of ``x (n, m)``, float64 ``(n, len(percents))``: NumPy's
    linear method step for step (its virtual index, its float32 differences, its interpolation from the nearer
    end), so thresholds on a value that sits exactly at a quantile cut where NumPy's do (``torch.quantile``'s
    interpolation differs in the last bits)."""
    m = x.shape[1]
    q = np.true_divide(np.asarray(percents, np.float64), 100)
    virtual = m * q + (1 + q * (1 - 1 - 1)) - 1  # NumPy's _compute_virtual_index with alpha = beta = 1
    below_i = np.clip(np.floor(virtual), 0, m - 1).astype(np.int64)
    above_i = np.clip(below_i + 1, 0, m - 1)
    gamma = torch.tensor(virtual - below_i, dtype=torch.float64, device=x.device)
    ordered = torch.sort(x, dim=1).values
    below = ordered[:, torch.tensor(below_i, device=x.device)]
    above = ordered[:, torch.tensor(above_i, device=x.device)]
    diff = (above - below).double()
    below, above = below.double(), above.double()
    return torch.where(gamma >= 0.5, above - diff * (1 - gamma), below + diff * gamma)


def area_resize(gray: torch.Tensor, size: int) -> torch.Tensor:
    """``cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)`` of a uint8 batch, as two products with
    OpenCV's own weights (resizing is linear in each direction), rounded back to uint8."""
    h, w = gray.shape[1:]
    rows, cols = area_weights(h, size).to(gray.device), area_weights(w, size).to(gray.device)
    y = rows @ gray.float() @ cols.T
    # OpenCV halves with integer sums, rounding halves up (its (a + b + c + d + 2) >> 2); elsewhere it rounds to
    # even, but at whole scales whose pixel area is not a power of two (6x: 36) it multiplies by an inexact
    # 1/area, so a pixel can come out one level off there
    y = (y + 0.5).floor_() if (h, w) == (2 * size, 2 * size) else y.round_()
    return y.clamp_(0, 255).to(torch.uint8)


class BatchNotch:
    """:class:`inspection.denoise.NotchDenoiser` on a batch: the same peaks, refinement and exact sinusoid fits,
    each step for every photo at once, masked, so no step indexes photos or waits on the device but the one
    that asks whether any photo still searches (a photo whose search has ended waits for the others)."""

    def __init__(self, notch: NotchDenoiser) -> None:
        self.notch = notch

    def __call__(self, gray: torch.Tensor, *, early_exit: bool = True) -> torch.Tensor:
        """Denoise a ``(n, H, W)`` uint8 batch; ``early_exit=False`` runs all ``2 * max_peaks`` steps without
        asking the device whether any photo still searches (a step after the end changes nothing), so that the
        search holds no synchronisation and a CUDA graph can capture it (``docs/proofs/notch_graph.py``)."""
        cfg = self.notch
        n, h, w = gray.shape
        f = gray.float()
        mean = f.mean((1, 2), keepdim=True)
        f = f - mean
        radius, layout = _ring_tables(h, w, gray.device)
        magnitude = torch.fft.rfft2(f).abs()
        background = _ring_medians(torch.log1p(magnitude), layout)
        eligible = (radius >= cfg.min_radius).expand(n, -1, -1).clone()
        floor = 0.2 * cfg.min_amplitude * h * w
        removed = torch.zeros(n, dtype=torch.long, device=gray.device)
        active = torch.ones(n, dtype=torch.bool, device=gray.device)
        for _ in range(2 * cfg.max_peaks):
            excess = torch.where(
                eligible & (magnitude > floor), torch.log1p(magnitude) - background, -torch.inf
            ).flatten(1)
            best, where = excess.max(1)
            active &= (best >= cfg.threshold) & (removed < cfg.max_peaks)
            if early_exit and not bool(active.any()):
                break
            iy, ix = where // magnitude.shape[2], where % magnitude.shape[2]
            ky = torch.where(iy <= h // 2, iy, iy - h)
            fy, fx = _refine_frequencies(f, ky / h, ix / w)
            ey, ex = _phasors(fy, h), _phasors(fx, w)  # (n, h), (n, w)
            coef = 2.0 * _dtft(f, ey, ex) / (h * w)
            weak = active & (coef.abs() < cfg.min_amplitude)  # no sinusoid there after all: never look again
            flat = eligible.view(n, -1)
            flat.scatter_(1, where[:, None], flat.gather(1, where[:, None]) & ~weak[:, None])
            fit = active & ~weak
            py = torch.where(fit[:, None], coef[:, None] * ey.conj(), 0)  # the others subtract exactly zero
            f -= py.real[:, :, None] * ex.real[:, None, :] + py.imag[:, :, None] * ex.imag[:, None, :]
            magnitude = torch.where(fit[:, None, None], torch.fft.rfft2(f).abs(), magnitude)
            removed += fit
        cleaned = (f + mean).round_().clamp_(0, 255).to(torch.uint8)
        return torch.where((removed > 0)[:, None, None], cleaned, gray)


@functools.lru_cache(maxsize=16)
def _ring_tables(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """On ``device``: each half-plane FFT bin's radius (:func:`inspection.denoise._rings`), and for
    :func:`_ring_medians` its ring, each ring's number and the sorted position of its median."""
    radius, ring = _rings(h, w)
    counts = np.bincount(ring.ravel())
    middle = np.minimum(np.cumsum(counts) - counts + counts // 2, ring.size - 1)
    tables = (ring, np.arange(len(counts)), middle)
    return torch.tensor(radius, device=device), tuple(torch.tensor(t, device=device) for t in tables)


def _ring_medians(values: torch.Tensor, layout: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """``inspection.denoise._ring_medians`` of each photo, spread back over its bins ``(n, H, W // 2 + 1)``:
    one sort of (ring, value) keys a photo."""
    ring, rings, middle = layout
    flat = values.flatten(1).double()
    low = flat.min(1, keepdim=True).values
    span = flat.max(1, keepdim=True).values - low + 1.0
    keys = torch.sort(ring.flatten()[None] * span + (flat - low), dim=1).values
    medians = (keys[:, middle] - rings[None] * span + low).float()
    return medians[:, ring]


def _phasors(freq: torch.Tensor, n: int) -> torch.Tensor:
    """``exp(-2j pi f k)`` for k < n, one row per frequency (cycles per pixel), phases in float64."""
    phase = (
        -2.0 * torch.pi * freq.double()[..., None] * torch.arange(n, device=freq.device, dtype=torch.float64)
    )
    return torch.polar(torch.ones_like(phase), phase).to(torch.complex64)


def _dtft(f: torch.Tensor, ey: torch.Tensor, ex: torch.Tensor) -> torch.Tensor:
    """``ey @ f @ ex`` for photos ``(m, h, w)`` and phasors ``ey (m, [k,] h)``, ``ex (m, [k,] w)``:
    ``(m, [k, k])``."""
    grid = ey.dim() == 3
    ey_ = ey if grid else ey[:, None]
    ex_ = (ex if grid else ex[:, None]).transpose(1, 2)
    inner = torch.complex(f @ ex_.real, f @ ex_.imag)  # (m, h, k)
    out = ey_ @ inner
    return out if grid else out[:, 0, 0]


def _refine_frequencies(
    f: torch.Tensor, fy: torch.Tensor, fx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``inspection.denoise._refine_frequency`` for each photo: nested grid searches of the DTFT magnitude."""
    h, w = f.shape[1:]
    fy, fx = fy.double(), fx.double()
    for span, steps in ((0.55, 12), (0.06, 9), (0.01, 5)):
        offsets = torch.linspace(-span, span, steps, dtype=torch.float64, device=f.device)
        fys, fxs = fy[:, None] + offsets / h, fx[:, None] + offsets / w
        power = _dtft(f, _phasors(fys, h), _phasors(fxs, w)).abs().flatten(1)
        best = power.argmax(1)
        rows = torch.arange(len(f), device=f.device)
        fy, fx = fys[rows, best // steps], fxs[rows, best % steps]
    return fy, fx


def supports(denoiser: object) -> bool:
    """Whether a classical denoiser has a batch counterpart here."""
    if isinstance(denoiser, MedianDenoiser):
        return denoiser.switching
    return isinstance(denoiser, NotchDenoiser)


def batch_denoiser(denoiser: MedianDenoiser | NotchDenoiser):  # noqa: ANN201 - a callable on uint8 batches
    """The batch counterpart of a classical denoiser (see :func:`supports`)."""
    return BatchNotch(denoiser) if isinstance(denoiser, NotchDenoiser) else refill_impulses


def upload(grays: Sequence[np.ndarray], device: str) -> torch.Tensor:
    """Photos of one size as a ``(n, H, W)`` uint8 tensor on ``device``."""
    return torch.from_numpy(np.stack(grays)).to(device, non_blocking=True)


def defect_input(transform: DefectTransform, grays: Sequence[np.ndarray], device: str) -> torch.Tensor:
    """``transform(grays)`` built on ``device``: square photos at least the model's size are resized there
    (:func:`area_resize`), the rest by ``transform.fit`` on the CPU, then all normalised there."""
    s = transform.size
    fitted = torch.empty((len(grays), s, s), dtype=torch.uint8, device=device)
    for idx in group_indices([g.shape for g in grays]):
        h, w = grays[idx[0]].shape
        if h == w >= s:
            fitted[idx] = area_resize(upload([grays[i] for i in idx], device), s)
        else:
            fitted[idx] = upload([transform.fit(grays[i]) for i in idx], device)
    return fitted.float().div_(255.0).sub_(transform.mean).div_(transform.std)[:, None]
