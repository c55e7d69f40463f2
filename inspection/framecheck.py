"""Is this frame a part at all? A blank, uniform or covered frame (lens cap, empty tray) is refused as
``not_a_part`` before any model sees it, so it never gets a verdict.
"""

from __future__ import annotations

import cv2
import numpy as np

from inspection.imageio import DecodedImage, ImageInput, to_gray
from inspection.results import Rejection

CHECK_SIDE = 64  # the frame is judged at this size: cheap, and it averages sensor noise away
BLUR_SIGMA = 3.5  # pixels at CHECK_SIDE: wipes out periodic interference finer than about 10 cycles a frame


def part_contrast(gray: np.ndarray) -> float:
    """Gray levels between the 1st and 99th percentile of the frame once noise is smoothed away.

    Impulses go with a 3x3 median, Gaussian and periodic noise with a blur, while a part's outline survives.
    Measured under each protocol noise type (4 draws per photo): 1,000 blank frames of random size and gray
    level stayed at or below 26 levels; 1,000 synthetic castings of 64 to 400 px reached at least 61, and
    1,328 noised casting training photos at least 105.
    """
    small = gray
    if max(gray.shape) > CHECK_SIDE:
        scale = CHECK_SIDE / max(gray.shape)
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    smooth = cv2.GaussianBlur(cv2.medianBlur(small, 3), (0, 0), BLUR_SIGMA)
    low, high = np.percentile(smooth, [1, 99])
    return float(high - low)


def check_is_part(gray: np.ndarray, min_contrast: float) -> None:
    """Raise ``Rejection("not_a_part")`` when the frame has less than ``min_contrast`` levels of structure."""
    if min_contrast <= 0:
        return
    contrast = part_contrast(gray)
    if contrast < min_contrast:
        raise Rejection(
            "not_a_part",
            f"the frame shows no part: only {contrast:.0f} gray levels of structure once noise is smoothed "
            f"(a part needs {min_contrast:.0f}); check the camera, the lens cap and the part's placement",
        )


def checked_gray(image: ImageInput, min_contrast: float) -> DecodedImage | Rejection:
    """A photo (array, encoded bytes or path) as 8-bit gray that shows a part, or the reason it cannot be
    judged; returned, not raised, so a batch's workers hand every photo's outcome back."""
    try:
        decoded = to_gray(image)
        check_is_part(decoded.gray, min_contrast)
    except Rejection as e:
        return e
    return decoded
