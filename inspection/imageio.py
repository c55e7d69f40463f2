"""Decoding and validating part photos: anything a camera or a file share hands us, to 8-bit gray.

Validation happens before full decoding where possible: the header's size is checked first, so a
decompression bomb is refused without allocating its pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 32
MAX_SIDE = 8192
MAX_PIXELS = 16_000_000
MAX_FILE_BYTES = 50 * 1024 * 1024


class ImageRejected(ValueError):
    """A photo that cannot be judged; ``reason`` is a short machine-readable code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DecodedImage:
    """An 8-bit grayscale photo plus how it was converted (``gray8``, ``rgb``, ``rgba``, ``gray16``, ``cmyk`` ...)."""

    gray: np.ndarray
    conversion: str


def check_size(height: int, width: int) -> None:
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ImageRejected(
            "too_small",
            f"image is {width}x{height}; at least {MIN_SIDE}x{MIN_SIDE} pixels are needed to judge a part",
        )
    if height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
        raise ImageRejected(
            "too_large",
            f"image is {width}x{height}; the limit is {MAX_SIDE} px a side and {MAX_PIXELS:,} pixels in all",
        )


def array_to_gray(array: np.ndarray) -> DecodedImage:
    """Convert a decoded array to 8-bit gray: gray, RGB (luma), RGBA (alpha dropped), 16-bit (scaled).

    Three- and four-channel arrays are taken in RGB(A) order, as PIL, torchvision and scikit-image give them.
    """
    if not isinstance(array, np.ndarray):
        raise ImageRejected("not_an_image", f"expected a numpy array, got {type(array).__name__}")
    if array.size == 0:
        raise ImageRejected("empty", f"image has no pixels (shape {array.shape})")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageRejected(
            "bad_shape", f"image must be 2-D grayscale or 3/4-channel, got shape {array.shape}"
        )
    check_size(array.shape[0], array.shape[1])
    conversion = "gray8" if array.ndim == 2 else ("rgb" if array.shape[2] == 3 else "rgba")
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:  # 16-bit, either byte order
        array = (array.astype(np.uint32) * 255 + 32767) // 65535
        array = array.astype(np.uint8)
        conversion = "gray16" if conversion == "gray8" else conversion + "16"
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ImageRejected("bad_pixels", "image holds NaN or infinite values")
        scale = 255.0 if array.max() <= 1.0 else 1.0
        array = np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
        conversion += "_float"
    elif array.dtype != np.uint8:
        raise ImageRejected(
            "bad_dtype", f"pixel type {array.dtype} is not supported; use uint8, uint16 or float"
        )
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2GRAY if array.shape[2] == 4 else cv2.COLOR_RGB2GRAY)
    return DecodedImage(np.ascontiguousarray(array), conversion)


def decode_image(data: bytes) -> DecodedImage:
    """Decode encoded photo bytes (by content, never by file name) into 8-bit gray."""
    if not data:
        raise ImageRejected("empty", "the photo is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise ImageRejected("too_large", f"the photo is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,}")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            fmt = probe.format
    except Image.DecompressionBombError as e:
        raise ImageRejected(
            "too_large", f"the image header declares too many pixels (decompression bomb?): {e}"
        ) from e
    except (UnidentifiedImageError, OSError) as e:
        raise ImageRejected(
            "not_an_image", f"the data is not a readable image ({e.__class__.__name__})"
        ) from e
    check_size(height, width)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # raises on truncated data, unlike OpenCV which pads with gray
            if im.mode in ("L", "RGB", "RGBA") or im.mode.startswith("I;16"):
                return array_to_gray(np.asarray(im))
            if im.mode == "I" and np.asarray(im).min() >= 0 and np.asarray(im).max() <= 65535:
                return array_to_gray(np.asarray(im).astype(np.uint16))
            if im.mode == "F":
                return array_to_gray(np.asarray(im))
            return DecodedImage(np.asarray(im.convert("L")), im.mode.lower())
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageRejected("corrupt", f"the {fmt} image is truncated or corrupt: {e}") from e


def read_image(path: str | Path) -> DecodedImage:
    """Read and decode a photo file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageRejected("unreadable", f"cannot read {path}: {e.strerror}") from e
    if size > MAX_FILE_BYTES:
        raise ImageRejected("too_large", f"{path.name} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
    return decode_image(path.read_bytes())


def to_gray(image: np.ndarray | bytes | str | Path) -> DecodedImage:
    """Accept an array, encoded bytes or a path, and return validated 8-bit gray."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(bytes(image))
    if isinstance(image, (str, Path)):
        return read_image(image)
    return array_to_gray(image)
