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


# --- camera shift, for evaluation: the same parts photographed by another station ----------------------------

SHIFT_ZOOM = (0.6, 0.85)  # the part smaller in the frame
SHIFT_GAMMA = (0.6, 0.85)  # a brighter exposure: a lighter background, flatter highlights
SHIFT_LIGHT_SLOPE = 0.25  # brightness change across the frame, as a fraction
SHIFT_SHARPEN = (0.8, 1.5)


def camera_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo as another station's camera would take it, same size: the part smaller in the frame (the
    border continued outwards), a brighter exposure, uneven lighting and in-camera sharpening.

    Not a training augmentation (the noise model's :func:`camera_jitter` is milder and keeps the framing):
    evaluation uses it to ask whether a station's models notice photos unlike their training ones.
    """
    h, w = image.shape
    zoom = float(rng.uniform(*SHIFT_ZOOM))
    small = cv2.resize(
        image, (max(8, round(w * zoom)), max(8, round(h * zoom))), interpolation=cv2.INTER_AREA
    )
    top = int(rng.integers(0, h - small.shape[0] + 1))
    left = int(rng.integers(0, w - small.shape[1] + 1))
    framed = cv2.copyMakeBorder(
        small, top, h - small.shape[0] - top, left, w - small.shape[1] - left, cv2.BORDER_REPLICATE
    )
    outside = np.ones((h, w), bool)
    outside[top : top + small.shape[0], left : left + small.shape[1]] = False
    framed[outside] = cv2.GaussianBlur(framed, (0, 0), 8.0)[outside]  # a plain plate, not replicated streaks
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-9
    ramp = (direction[0] * (xx / w - 0.5) + direction[1] * (yy / h - 0.5)) * 2 * SHIFT_LIGHT_SLOPE
    lit = tone(framed, float(rng.uniform(*SHIFT_GAMMA)), 1.0, 0.0).astype(np.float32) * (1.0 + ramp)
    return sharpen(np.clip(np.rint(lit), 0, 255).astype(np.uint8), float(rng.uniform(*SHIFT_SHARPEN)))
