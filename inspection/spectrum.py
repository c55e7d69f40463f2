"""The frequency-domain input of the noise classifier.

The spectrum is always computed at the photo's own resolution: resizing first would low-pass the photo
and erase the very noise signature we classify. Only the finished spectrum is pooled to the model's size,
with max-pooling so that narrow periodic peaks survive (area resizing averages them away).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

SPECTRUM_CHANNELS = 1
FEATURE_CHANNELS = 2  # log spectrum and high-pass residual; 3 adds the lowest frequencies, unpooled


def log1p(x: np.ndarray) -> np.ndarray:
    """``log(1 + x)`` for non-negative float32 arrays; OpenCV's log is ~20x faster than ``np.log1p`` here."""
    return cv2.log(x + np.float32(1.0))


def log_spectrum_full(image: np.ndarray) -> np.ndarray:
    """Centred ``log(1 + |FFT|)`` at full resolution, standardised to zero mean and unit variance."""
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
    f = image.astype(np.float32)
    spec = cv2.dft(f - f.mean(), flags=cv2.DFT_COMPLEX_OUTPUT)
    logmag = np.fft.fftshift(log1p(cv2.magnitude(spec[..., 0], spec[..., 1])))
    mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(logmag))  # one pass, in double precision
    return ((logmag - np.float32(mean)) * np.float32(1.0 / (std + 1e-6))).astype(np.float32, copy=False)


def _max_pool_to(array: np.ndarray, size: int) -> np.ndarray:
    """``torch``'s ``adaptive_max_pool2d`` of a 2-D array to ``size`` x ``size``, the same values, in NumPy.

    Output bin ``i`` of an axis of length ``n`` covers ``floor(i n / size)`` to ``ceil((i + 1) n / size)``
    (exclusive): consecutive bins, each taking the first row of the next where the boundary falls inside a row.
    An axis shorter than ``size`` is first repeated up to it (nearest), as the model was trained.
    """
    if array.shape[0] < size or array.shape[1] < size:
        rows = np.floor(np.arange(max(size, array.shape[0])) * array.shape[0] / max(size, array.shape[0]))
        cols = np.floor(np.arange(max(size, array.shape[1])) * array.shape[1] / max(size, array.shape[1]))
        array = array[rows.astype(int)][:, cols.astype(int)]
    return _max_pool_axis(_max_pool_axis(array, size, 0), size, 1)


def _max_pool_axis(array: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Adaptive max-pooling of one axis: each bin's maximum read from a running maximum of its width (OpenCV's
    dilation by a line anchored at its start), one dilation per bin width (two or three widths at most)."""
    out = np.empty((size, array.shape[1]) if axis == 0 else (array.shape[0], size), np.float32)
    for width, starts, bins in _pool_bins(array.shape[axis], size):
        kernel = np.ones((width, 1) if axis == 0 else (1, width), np.uint8)
        running = cv2.dilate(array, kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        if axis == 0:
            out[bins] = running[starts]
        else:
            out[:, bins] = running[:, starts]
    return out


@functools.lru_cache(maxsize=64)
def _pool_bins(n: int, size: int) -> tuple[tuple[int, np.ndarray, np.ndarray], ...]:
    """For each bin width of adaptive pooling ``n`` -> ``size``: the width, its bins' starts and their indices."""
    i = np.arange(size)
    starts, ends = (i * n) // size, -((-(i + 1) * n) // size)
    widths = ends - starts
    return tuple((int(w), starts[widths == w], np.flatnonzero(widths == w)) for w in np.unique(widths))


def log_spectrum(image: np.ndarray, size: int = 64) -> np.ndarray:
    """The model-ready spectrum: full-resolution log magnitude, max-pooled to ``size`` x ``size``."""
    return _max_pool_to(log_spectrum_full(image), size)


def highpass_residual(image: np.ndarray, size: int = 64) -> np.ndarray:
    """A centre crop of ``image - median3(image)`` at native resolution, scaled to about [-2, 2].

    White noise looks alike in the spectrum whether Gaussian or impulsive; in the spatial residual,
    impulses are sparse and saturated while Gaussian noise is dense, which tells them apart.
    """
    residual: np.ndarray = (image.astype(np.float32) - cv2.medianBlur(image, 3).astype(np.float32)) / 64.0
    h, w = residual.shape
    if h < size or w < size:
        residual = cv2.resize(residual, (max(w, size), max(h, size)), interpolation=cv2.INTER_NEAREST)
        h, w = residual.shape
    top, left = (h - size) // 2, (w - size) // 2
    return np.clip(residual[top : top + size, left : left + size], -2.0, 2.0)


def spectrum_centre(logmag: np.ndarray, size: int = 64) -> np.ndarray:
    """The ``size`` x ``size`` lowest frequencies of a full-resolution log spectrum, unpooled.

    Pooling a large photo's spectrum to the model's size merges its lowest frequencies into the centre, where a
    slow interference wave (a few cycles per image) hides in the part's own energy; this plane keeps them one
    frequency bin per pixel.
    """
    h, w = logmag.shape
    if h < size or w < size:
        return _max_pool_to(logmag, size)
    top, left = h // 2 - size // 2, w // 2 - size // 2
    return np.ascontiguousarray(logmag[top : top + size, left : left + size])


def noise_features(image: np.ndarray, size: int = 64, channels: int = FEATURE_CHANNELS) -> np.ndarray:
    """Stack the classifier input, ``(channels, size, size)`` float32: spectrum, residual, spectral peaks."""
    if channels not in (1, 2, 3):
        raise ValueError(f"noise features have 1, 2 or 3 channels, got {channels}")
    full = log_spectrum_full(image)
    planes = [_max_pool_to(full, size)]
    if channels >= 2:
        planes.append(highpass_residual(image, size))
    if channels == 3:
        planes.append(spectrum_centre(full, size))
    return np.stack(planes)


def noise_features_batch(
    images: Sequence[np.ndarray], size: int = 64, channels: int = FEATURE_CHANNELS, device: str = "cpu"
) -> torch.Tensor:
    """:func:`noise_features` of photos of one size at once, with ``torch.fft`` on ``device``.

    Returns a float32 tensor ``(n, channels, size, size)`` on ``device``. It matches the per-photo
    NumPy/OpenCV path to float32 rounding (tests/test_spectrum.py); photos smaller than ``size`` go through
    that path photo by photo, since their planes are resized first.
    """
    import torch

    if channels not in (1, 2, 3):
        raise ValueError(f"noise features have 1, 2 or 3 channels, got {channels}")
    shapes = {im.shape for im in images}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(
            f"noise_features_batch needs 2-D grayscale photos of one size, got shapes {sorted(shapes)}"
        )
    h, w = next(iter(shapes))
    if h < size or w < size:
        small = np.stack([noise_features(im, size, channels) for im in images])
        return torch.from_numpy(small).to(device)
    gray = torch.from_numpy(np.stack(images)).to(device)
    full = _log_spectra_full(gray.float())
    planes = [_max_pool_batch(full, size)]
    if channels >= 2:
        planes.append(_highpass_residual_batch(gray, size))
    if channels == 3:
        top, left = h // 2 - size // 2, w // 2 - size // 2
        planes.append(full[:, top : top + size, left : left + size])
    return torch.stack(planes, dim=1).contiguous()


def _log_spectra_full(f: torch.Tensor) -> torch.Tensor:
    """:func:`log_spectrum_full` of a batch ``(n, H, W)`` of float32 photos."""
    import torch

    f = f - f.mean(dim=(1, 2), keepdim=True)
    logmag = torch.fft.fftshift(torch.log1p(torch.fft.fft2(f).abs()), dim=(1, 2))
    mean = logmag.mean(dim=(1, 2), keepdim=True)
    std = logmag.std(dim=(1, 2), keepdim=True, correction=0)  # NumPy's std
    return (logmag - mean) / (std + 1e-6)


def _max_pool_batch(full: torch.Tensor, size: int) -> torch.Tensor:
    import torch.nn.functional as F

    return F.adaptive_max_pool2d(full[:, None], size)[:, 0]


def _highpass_residual_batch(gray: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`highpass_residual` of a batch ``(n, H, W)`` of uint8 photos at least ``size`` on each side.

    Only the centre crop is kept, so the 3x3 median is taken there alone, on a window one pixel wider (edge
    pixels repeated at the photo's border, as ``cv2.medianBlur`` does).
    """
    import torch.nn.functional as F

    h, w = gray.shape[1:]
    top, left = (h - size) // 2, (w - size) // 2
    padded = F.pad(gray[:, None].float(), (1, 1, 1, 1), mode="replicate")[:, 0]
    window = padded[:, top : top + size + 2, left : left + size + 2]
    median = window.unfold(1, 3, 1).unfold(2, 3, 1).reshape(len(gray), size, size, 9).median(dim=-1).values
    centre = gray[:, top : top + size, left : left + size].float()
    return ((centre - median) / 64.0).clamp(-2.0, 2.0)
