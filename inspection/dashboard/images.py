"""Images for the dashboard: safe reading of photos, spectra as viewable pictures, zoomed crops.

Photos are decoded only through :func:`inspection.imageio.decode_image`, which reads the header's width
and height and refuses an image over the pipeline's pixel limit before allocating its pixels; files over
``MAX_FILE_BYTES`` are refused before they are read. A refusal is an
:class:`~inspection.imageio.ImageRejected` whose message says what was found and what the limit is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from inspection.imageio import MAX_FILE_BYTES, ImageRejected, decode_image

if TYPE_CHECKING:
    from inspection.store.photos import PhotoStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Crop:
    """A square window in image coordinates: top-left corner and side length."""

    top: int
    left: int
    size: int


def _check_file_size(size: int, what: str) -> None:
    if size > MAX_FILE_BYTES:
        raise ImageRejected("too_large", f"{what} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}")


def read_photo(path: str | Path) -> np.ndarray:
    """An 8-bit gray photo from a file, checked for size before it is read and before it is decoded.

    Raises:
        ImageRejected: the file is unreadable, too big, not an image, or declares too many pixels.
    """
    path = Path(path)
    try:
        _check_file_size(path.stat().st_size, "the file")
        data = path.read_bytes()
    except OSError as e:
        raise ImageRejected("unreadable", f"cannot read {path.name}: {e.strerror or e}") from e
    return decode_image(data).gray


def decode_photo(key: str, store: PhotoStore) -> np.ndarray:
    """An 8-bit gray photo from the photo store, its stored size checked before the bytes are fetched.

    Raises:
        PhotoNotFound: no photo under ``key``.
        OSError: the store cannot be read.
        ImageRejected: the photo is too big, not an image, or declares too many pixels.
    """
    _check_file_size(store.size(key), "the photo")
    return decode_image(store.get(key)).gray


def read_gray(path: str | Path) -> np.ndarray | None:
    """An 8-bit grayscale image from ``path``, or None when the file is missing, unreadable or refused."""
    if not Path(path).is_file():
        return None
    try:
        return read_photo(path)
    except ImageRejected as e:
        log.warning("image %s not shown: %s", path, e)
        return None


def spectrum_image(gray: np.ndarray, max_side: int = 512) -> np.ndarray:
    """The centred log-magnitude spectrum of ``gray`` as an 8-bit picture.

    The standardised spectrum is mapped from [-2, 4] standard deviations to 0..255: the flat high-frequency
    floor sits mid-gray, and periodic peaks and the DC cross saturate to white, as engineers expect to see them.
    Large photos are shrunk with max-pooling (``INTER_AREA`` would average narrow peaks away).
    """
    from inspection.spectrum import log_spectrum_full  # imports torch: only when a spectrum is drawn

    spec = log_spectrum_full(gray)
    out = np.clip((spec + 2.0) / 6.0 * 255.0, 0, 255).astype(np.uint8)
    h, w = out.shape
    factor = int(np.ceil(max(h, w) / max_side))
    if factor > 1:
        hh, ww = h // factor * factor, w // factor * factor
        out = out[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor).max(axis=(1, 3))
    return out


def detail_crop(image: np.ndarray, size: int = 64) -> Crop:
    """The ``size`` window with the most fine detail (local Laplacian energy) in ``image``.

    Defects on a casting (pits, cracks, blowholes) are small high-contrast features, so this is a good
    first place to look when judging whether denoising kept them; the user can move the crop.
    """
    h, w = image.shape[:2]
    size = max(1, min(size, h, w))
    energy = np.abs(cv2.Laplacian(cv2.GaussianBlur(image, (3, 3), 0).astype(np.float32), cv2.CV_32F))
    box = cv2.boxFilter(energy, -1, (size, size), normalize=True, borderType=cv2.BORDER_REFLECT)
    half = size // 2
    # Only centres whose window lies fully inside the image.
    inner = box[half : h - (size - half) + 1, half : w - (size - half) + 1]
    if inner.size == 0:
        return Crop(0, 0, size)
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return Crop(top=int(y), left=int(x), size=size)


def crop_at(image: np.ndarray, centre_x: float, centre_y: float, size: int) -> Crop:
    """A ``size`` window centred at fractional position (``centre_x``, ``centre_y``) in 0..1, kept inside."""
    h, w = image.shape[:2]
    size = max(1, min(size, h, w))
    left = int(round(centre_x * w - size / 2))
    top = int(round(centre_y * h - size / 2))
    return Crop(top=int(np.clip(top, 0, h - size)), left=int(np.clip(left, 0, w - size)), size=size)


def zoom(image: np.ndarray, crop: Crop, out_size: int = 256) -> np.ndarray:
    """Cut ``crop`` from ``image`` and enlarge it with nearest-neighbour, so single pixels stay visible."""
    patch = image[crop.top : crop.top + crop.size, crop.left : crop.left + crop.size]
    return cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_NEAREST)


def outline(image: np.ndarray, crop: Crop, value: int = 255, thickness: int = 2) -> np.ndarray:
    """A 3-channel copy of ``image`` with the crop drawn as a box, to show where the zoom came from."""
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image.copy()
    cv2.rectangle(
        rgb,
        (crop.left, crop.top),
        (crop.left + crop.size - 1, crop.top + crop.size - 1),
        (value, 64, 0),
        thickness,
    )
    return rgb
