"""The defect model's preprocessing, one definition for training and inference.

Like timm's ``pretrained_cfg`` and torchvision's ``Weights.transforms()``, the preprocessing is stored with
the weights (``meta.json["preprocessing"]``) and rebuilt from there, so a model always sees photos prepared
the way it was trained on them.

Photos of any size and aspect ratio are brought to the model's square input by one of three modes:

- ``pad``: scale the longer side to the input size and pad the shorter one by repeating the border (keeps
  the aspect ratio and the whole photo; the default for new models);
- ``crop``: scale the shorter side to the input size and cut the centre square (keeps the aspect ratio,
  loses the ends of a long photo);
- ``stretch``: resize to a square whatever the aspect ratio (what models trained before this module did).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import torch

RESIZE_MODES = ("pad", "crop", "stretch")


@dataclass(frozen=True)
class DefectTransform:
    """uint8 gray photos of any size -> a normalised ``(n, 1, size, size)`` float tensor.

    Attributes:
        size: the model's square input side in pixels.
        mean: mean of the training photos' pixels, on the 0..1 scale.
        std: standard deviation of the training photos' pixels, on the 0..1 scale.
        resize: how a photo that is not ``size`` x ``size`` is fitted (``pad``, ``crop`` or ``stretch``).
    """

    size: int
    mean: float = 0.5
    std: float = 0.25
    resize: str = "pad"

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {self.resize!r}; expected one of {RESIZE_MODES}")
        if self.size < 8 or self.std <= 0:
            raise ValueError(f"bad preprocessing: size {self.size} (at least 8), std {self.std} (above 0)")

    def fit(self, gray: np.ndarray) -> np.ndarray:
        """One uint8 photo brought to ``size`` x ``size`` by the resize mode."""
        s = self.size
        h, w = gray.shape
        if (h, w) == (s, s):
            return gray
        if self.resize == "stretch" or h == w:
            return _resize(gray, s, s)
        scale = (max if self.resize == "crop" else min)(s / h, s / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        scaled = _resize(gray, nw, nh)
        if self.resize == "crop":
            top, left = (nh - s) // 2, (nw - s) // 2
            return np.ascontiguousarray(scaled[top : top + s, left : left + s])
        top, left = (s - nh) // 2, (s - nw) // 2
        return cv2.copyMakeBorder(scaled, top, s - nh - top, left, s - nw - left, cv2.BORDER_REPLICATE)

    def __call__(self, grays: Sequence[np.ndarray]) -> torch.Tensor:
        batch = np.stack([self.fit(g) for g in grays])
        x = torch.from_numpy(batch).float().div_(255.0)
        return x.sub_(self.mean).div_(self.std)[:, None]

    def to_meta(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> DefectTransform:
        """From a defect checkpoint's ``meta.json``; checkpoints older than this module stretched photos."""
        if "preprocessing" in meta:
            return cls(**meta["preprocessing"])
        norm = meta.get("normalisation") or {}
        return cls(
            size=int(meta["input_size"]),
            mean=float(norm.get("mean", 0.5)),
            std=float(norm.get("std", 0.25)),
            resize="stretch",
        )


def pixel_statistics(grays: Sequence[np.ndarray]) -> tuple[float, float]:
    """Mean and standard deviation of all pixels, on the 0..1 scale (for ``DefectTransform``)."""
    total = count = 0.0
    squares = 0.0
    for g in grays:
        f = g.astype(np.float64) / 255.0
        total += float(f.sum())
        squares += float((f * f).sum())
        count += f.size
    mean = total / max(count, 1.0)
    std = (max(squares / max(count, 1.0) - mean * mean, 0.0)) ** 0.5
    return mean, max(std, 1e-3)


@functools.lru_cache(maxsize=32)
def area_weights(n_in: int, n_out: int) -> torch.Tensor:
    """``(n_out, n_in)`` float32: each output pixel's share of each input pixel when ``n_in`` pixels shrink to
    ``n_out`` by ``cv2.INTER_AREA``, OpenCV's own weights (it resizes the identity), so a product with them is
    OpenCV's resize to float32 rounding. Cached: treat it as read-only."""
    eye = np.eye(n_in, dtype=np.float32)
    return torch.from_numpy(
        np.ascontiguousarray(cv2.resize(eye, (n_out, n_in), interpolation=cv2.INTER_AREA).T)
    )


def _resize(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
