"""Training helpers shared by the training tests: one tiny config, and photos of mixed sizes in the real layout."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspection.configs import TrainConfig
from inspection.data import synth_casting

# The tiny registered variant of each task: seconds per epoch on one CPU core.
TINY_ARCH = {"noise": "test_freq_vgg", "denoiser": "test_unet_ae", "defect": "test_defect_cnn"}


def tiny_train_config(
    data: str | Path, out: str | Path, *, task: str = "defect", **overrides: Any
) -> TrainConfig:
    """A seeded, quiet, single-thread CPU run of ``task``'s tiny model at 32 px; ``overrides`` replace fields."""
    base: dict[str, Any] = {
        "task": task,
        "data": str(data),
        "out": str(out),
        "arch": TINY_ARCH[task],
        "input_size": 32,
        "epochs": 2,
        "batch_size": 4,
        "threads": 1,
        "quiet": True,
        "version": "v1",
        "device": "cpu",
    }
    return TrainConfig(**{**base, **overrides})


def write_photos(
    root: Path,
    classes: Mapping[str, str | None],
    *,
    n: int | Mapping[str, int] = 6,
    seed: int = 0,
    sizes: tuple[tuple[int, int], ...] = ((40, 56), (56, 40), (48, 48), (64, 44)),
) -> Path:
    """Castings of mixed sizes and aspect ratios in ``root/{train,test}/<class>/``; returns ``root``.

    ``classes`` maps each class folder to the defect kind drawn in it (``None``: a good part). ``n`` is the
    number of training photos per class, or per class name; every class gets 2 test photos.
    """
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for cls, kind in classes.items():
            count = 2 if split == "test" else (n if isinstance(n, int) else n[cls])
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                h, w = sizes[i % len(sizes)]
                img = synth_casting(rng, max(h, w), kind)
                top, left = (max(h, w) - h) // 2, (max(h, w) - w) // 2
                cv2.imwrite(str(root / split / cls / f"{i}.png"), img[top : top + h, left : left + w])
    return root
