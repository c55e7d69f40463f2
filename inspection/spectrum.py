"""The frequency-domain input of the noise classifier.

The spectrum is always computed at the photo's own resolution: resizing first would low-pass the photo
and erase the very noise signature we classify. Only the finished spectrum is pooled to the model's size,
with max-pooling so that narrow periodic peaks survive (area resizing averages them away).
"""

from __future__ import annotations

import cv2
import numpy as np

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
    return ((logmag - logmag.mean()) / (logmag.std() + 1e-6)).astype(np.float32)


def _max_pool_to(array: np.ndarray, size: int) -> np.ndarray:
    import torch  # here, not at the top: the dashboard draws spectra without loading torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(array))[None, None]
    if t.shape[-1] < size or t.shape[-2] < size:
        t = F.interpolate(t, size=(max(size, t.shape[-2]), max(size, t.shape[-1])), mode="nearest")
    return F.adaptive_max_pool2d(t, size)[0, 0].numpy()


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
