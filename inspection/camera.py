"""How another camera, lens or setting changes a photo, for training the noise model to ignore it.

A noise-type classifier trained on one product's photos from one camera learns that camera too: its JPEG
block grid, its sharpening halo, its optical blur, its gamma. On a new camera it then calls those "noise".
:func:`camera_jitter` draws such a change at random, before noise is added, so the classifier learns the
noise and not the camera. Every function takes and returns 2-D ``uint8`` arrays and draws from ``rng``.
"""

from __future__ import annotations

import cv2
import numpy as np

from inspection.noise import jpeg_compress

SCALE_RANGE = (0.6, 1.6)  # digital zoom in or out, as another framing or sensor would give
GAMMA_RANGE = (0.7, 1.4)
BLUR_SIGMA = (0.3, 1.2)  # optics slightly out of focus
SHARPEN_AMOUNT = (0.3, 1.5)  # in-camera unsharp masking
JPEG_QUALITY = (60, 95)


def rescale(image: np.ndarray, factor: float) -> np.ndarray:
    """Resize by ``factor`` (area when shrinking, cubic when enlarging), at least 32 pixels a side."""
    h, w = image.shape
    size = (max(32, round(w * factor)), max(32, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def tone(image: np.ndarray, gamma: float, gain: float, offset: float) -> np.ndarray:
    """``gain * 255 * (x / 255) ** gamma + offset``, rounded and clipped."""
    x = (image.astype(np.float32) / 255.0) ** np.float32(gamma)
    return np.clip(np.rint(gain * 255.0 * x + offset), 0, 255).astype(np.uint8)


def sharpen(image: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """Unsharp masking: ``x + amount * (x - blur(x))``."""
    f = image.astype(np.float32)
    out = f + amount * (f - cv2.GaussianBlur(f, (0, 0), sigma))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def camera_jitter(image: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Each of scale, tone, blur or sharpening, and JPEG compression, applied with probability ``p``."""
    if rng.random() < p:
        image = rescale(image, float(np.exp(rng.uniform(*np.log(SCALE_RANGE)))))
    if rng.random() < p:
        image = tone(
            image, float(rng.uniform(*GAMMA_RANGE)), float(rng.uniform(0.8, 1.2)), float(rng.uniform(-20, 20))
        )
    if rng.random() < p:
        image = (
            blur(image, float(rng.uniform(*BLUR_SIGMA)))
            if rng.random() < 0.5
            else sharpen(image, float(rng.uniform(*SHARPEN_AMOUNT)))
        )
    if rng.random() < p:
        image = jpeg_compress(image, int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
    return image
