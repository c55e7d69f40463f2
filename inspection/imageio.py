"""Decoding and validating part photos: anything a camera or a file share hands us, to 8-bit gray.

Validation happens before full decoding where possible: the header's size is checked first, so a
decompression bomb is refused without allocating its pixels.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from inspection.results import Rejection

MIN_SIDE = 32
MAX_SIDE = 8192
# 16 million pixels: the largest photo judged at full size. Scoring costs about 0.1 s and 25 MB per million
# pixels on 2 CPU cores, so the default keeps one photo under 2 s. ``$INSPECTION_MAX_PIXELS`` moves it.
DEFAULT_MAX_PIXELS = 16_000_000
MAX_PIXELS_ENV = "INSPECTION_MAX_PIXELS"
MAX_FILE_BYTES = 50 * 1024 * 1024


def _max_pixels_from_env() -> int:
    value = os.environ.get(MAX_PIXELS_ENV, "")
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        pixels = int(float(value))
    except ValueError as e:
        raise ValueError(f"{MAX_PIXELS_ENV}={value!r} is not a number of pixels (e.g. 16000000)") from e
    if pixels < MIN_SIDE * MIN_SIDE:
        raise ValueError(f"{MAX_PIXELS_ENV}={value!r} is below the smallest photo ({MIN_SIDE}x{MIN_SIDE})")
    return pixels


MAX_PIXELS = _max_pixels_from_env()


# Pillow warns of large headers; they are refused with our own message (check_size). Filtered once here, not
# with warnings.catch_warnings() around each decode: that is not thread-safe, and photos decode on threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module="PIL")

# The one rejection type (``inspection.results.Rejection``), under the name older callers import.
ImageRejected = Rejection
ImageInput = np.ndarray | bytes | str | Path  # what the pipeline and to_gray accept


@dataclass(frozen=True)
class DecodedImage:
    """An 8-bit grayscale photo plus how it was converted (``gray8``, ``rgb``, ``rgba``, ``gray16``, ``cmyk`` ...)."""

    gray: np.ndarray
    conversion: str


def check_size(height: int, width: int, max_pixels: int | None = None) -> None:
    """Refuse photos too small to judge or too large to score (``max_pixels`` defaults to ``MAX_PIXELS``)."""
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    if height < MIN_SIDE or width < MIN_SIDE:
        raise Rejection(
            "too_small",
            f"image is {width}x{height}; at least {MIN_SIDE}x{MIN_SIDE} pixels are needed to judge a part",
        )
    if height > MAX_SIDE or width > MAX_SIDE or height * width > max_pixels:
        raise Rejection(
            "too_large",
            f"image is {width}x{height}; the limit is {MAX_SIDE} px a side and {max_pixels:,} pixels in all",
        )


def array_to_gray(array: np.ndarray) -> DecodedImage:
    """Convert a decoded array to 8-bit gray: gray, RGB (luma), RGBA (alpha dropped), 16-bit (scaled).

    Three- and four-channel arrays are taken in RGB(A) order, as PIL, torchvision and scikit-image give them.
    """
    if not isinstance(array, np.ndarray):
        raise Rejection("not_an_image", f"expected a numpy array, got {type(array).__name__}")
    if array.size == 0:
        raise Rejection("empty", f"image has no pixels (shape {array.shape})")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise Rejection("bad_shape", f"image must be 2-D grayscale or 3/4-channel, got shape {array.shape}")
    check_size(array.shape[0], array.shape[1])
    conversion = "gray8" if array.ndim == 2 else ("rgb" if array.shape[2] == 3 else "rgba")
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:  # 16-bit, either byte order
        array = (array.astype(np.uint32) * 255 + 32767) // 65535
        array = array.astype(np.uint8)
        conversion = "gray16" if conversion == "gray8" else conversion + "16"
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise Rejection("bad_pixels", "image holds NaN or infinite values")
        scale = 255.0 if array.max() <= 1.0 else 1.0
        array = np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
        conversion += "_float"
    elif array.dtype != np.uint8:
        raise Rejection("bad_dtype", f"pixel type {array.dtype} is not supported; use uint8, uint16 or float")
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2GRAY if array.shape[2] == 4 else cv2.COLOR_RGB2GRAY)
    return DecodedImage(np.ascontiguousarray(array), conversion)


def _probe(data: bytes) -> tuple[int, int, str | None, bool]:
    """Width, height, format and whether it holds more than one frame, from the headers alone (no pixels
    decoded, and never a walk over every frame: a GIF can hold a million)."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            return probe.size[0], probe.size[1], probe.format, bool(getattr(probe, "is_animated", False))
    except Image.DecompressionBombError as e:
        raise Rejection(
            "too_large", f"the image header declares too many pixels (decompression bomb?): {e}"
        ) from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise Rejection("not_an_image", f"the data is not a readable image ({e.__class__.__name__})") from e


def _draft_scale(width: int, height: int, max_pixels: int) -> int:
    """The smallest JPEG DCT scale (1, 2, 4 or 8) that brings the photo within ``max_pixels``; 0 if none does."""
    for scale in (1, 2, 4, 8):
        if (width // scale) * (height // scale) <= max_pixels and max(width, height) // scale <= MAX_SIDE:
            return scale
    return 0


def decode_image(data: bytes, *, max_pixels: int | None = None) -> DecodedImage:
    """Decode encoded photo bytes (by content, never by file name) into 8-bit gray.

    The header is checked before any pixel is decoded, so a decompression bomb costs nothing. A JPEG larger
    than ``max_pixels`` is decoded at 1/2, 1/4 or 1/8 size by the codec itself (``conversion`` then ends in
    ``_draft<scale>``); other formats that large are refused. A photo with several frames (a multi-page TIFF,
    an animated GIF) is refused, since only one frame would be judged.
    """
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    if not data:
        raise Rejection("empty", "the photo is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise Rejection("too_large", f"the photo is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,}")
    width, height, fmt, several = _probe(data)
    if several:
        raise Rejection(
            "multi_frame",
            f"the {fmt} holds several frames; only one would be judged, so send one photo per part",
        )
    scale = _draft_scale(width, height, max_pixels) if fmt == "JPEG" else 1
    check_size(height // max(scale, 1), width // max(scale, 1), max_pixels)
    try:
        with Image.open(io.BytesIO(data)) as im:
            if scale > 1:
                im.draft("L", (width // scale, height // scale))
            im.load()  # raises on truncated data, unlike OpenCV which pads with gray
            decoded = _to_gray(im)
    except Rejection:
        raise
    except (OSError, ValueError, SyntaxError) as e:
        raise Rejection("corrupt", f"the {fmt} image is truncated or corrupt: {e}") from e
    if scale > 1:
        decoded = DecodedImage(decoded.gray, f"{decoded.conversion}_draft{scale}")
    return decoded


def _to_gray(im: Image.Image) -> DecodedImage:
    if im.mode in ("L", "RGB", "RGBA") or im.mode.startswith("I;16"):
        return array_to_gray(np.asarray(im))
    if im.mode == "I":
        values = np.asarray(im)
        if values.min() < 0 or values.max() > 65535:
            raise Rejection("bad_pixels", "32-bit integer pixels outside 0..65535 cannot be shown as gray")
        return array_to_gray(values.astype(np.uint16))
    if im.mode == "F":
        return array_to_gray(np.asarray(im))
    return DecodedImage(np.asarray(im.convert("L")), im.mode.lower())


def read_image(path: str | Path) -> DecodedImage:
    """Read and decode a photo file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise Rejection("unreadable", f"cannot read {path}: {e.strerror}") from e
    if size > MAX_FILE_BYTES:
        raise Rejection("too_large", f"{path.name} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
    return decode_image(path.read_bytes())


def to_gray(image: ImageInput) -> DecodedImage:
    """Accept an array, encoded bytes or a path, and return validated 8-bit gray."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(bytes(image))
    if isinstance(image, (str, Path)):
        return read_image(image)
    return array_to_gray(image)


def probe_pixels(data: bytes) -> int:
    """The pixel count a photo's header declares, without decoding it; 1 when the header cannot be read."""
    try:
        width, height, _, _ = _probe(data)
    except Rejection:
        return 1
    return max(1, width * height)
