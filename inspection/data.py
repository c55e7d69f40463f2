"""Datasets in the ``train|test/<class_name>/`` layout, and the procedural synthetic casting generator.

The generator is the project's embedded default: it draws top-view, impeller-like castings with
realistic defect kinds, so the whole pipeline can be trained, tested and demonstrated without any
user data or download.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspection.imageio import read_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
DEFECT_KINDS = ("blowhole", "pinholes", "crack", "burr", "shrinkage", "missing_material")
POSITIVE_PREFIXES = ("def", "bad", "ng", "fail", "reject")
DEFECTIVE_CLASS, OK_CLASS = "def_front", "ok_front"


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 1 = defective
    class_name: str


def is_defect_class(name: str) -> bool:
    """Folder names starting with def/bad/ng/fail/reject hold defective parts."""
    return name.lower().startswith(POSITIVE_PREFIXES)


def list_split(root: str | Path, split: str) -> list[Sample]:
    """All image files of ``root/split/<class>/``, sorted, labelled by their class folder."""
    base = Path(root) / split
    if not base.is_dir():
        raise FileNotFoundError(
            f"{base} does not exist; expected the layout {Path(root)}/{{train,test}}/<class_name>/<images>"
        )
    classes = sorted(d for d in base.iterdir() if d.is_dir())
    if not any(is_defect_class(c.name) for c in classes):
        raise ValueError(
            f"no defective class folder under {base} (found {[c.name for c in classes]}); "
            f"name it starting with one of {POSITIVE_PREFIXES}, e.g. def_front"
        )
    samples = [
        Sample(p, int(is_defect_class(c.name)), c.name)
        for c in classes
        for p in sorted(c.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not samples:
        raise ValueError(f"{base} holds no images with suffixes {sorted(IMAGE_SUFFIXES)}")
    return samples


def load_images(samples: list[Sample], size: int | None = None) -> np.ndarray:
    """Decode samples to one uint8 array ``(n, h, w)``; all must share a shape unless ``size`` resizes them."""
    out = []
    for s in samples:
        gray = read_image(s.path).gray
        if size is not None and gray.shape != (size, size):
            gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
        out.append(gray)
    return np.stack(out)


def dataset_fingerprint(samples: list[Sample]) -> dict[str, object]:
    """A summary and SHA-256 over file names, sizes and labels: cheap, and changes when the data does."""
    h = hashlib.sha256()
    counts: dict[str, int] = {}
    for s in samples:
        h.update(f"{s.class_name}/{s.path.name}:{s.path.stat().st_size}:{s.label}\n".encode())
        counts[s.class_name] = counts.get(s.class_name, 0) + 1
    return {"n_images": len(samples), "classes": counts, "sha256": h.hexdigest()}


# --- the synthetic casting generator ---------------------------------------------------------------


def synth_casting(rng: np.random.Generator, size: int = 160, defect: str | None = None) -> np.ndarray:
    """Draw one top-view impeller-like casting; ``defect`` adds one of ``DEFECT_KINDS``."""
    s = size / 160.0
    cx, cy = size / 2 + rng.normal(0, 2 * s), size / 2 + rng.normal(0, 2 * s)
    r_outer = size * rng.uniform(0.40, 0.45)
    r_hub, r_hole = r_outer * rng.uniform(0.28, 0.34), r_outer * rng.uniform(0.12, 0.16)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dist = np.hypot(xx - cx, yy - cy)
    theta = np.arctan2(yy - cy, xx - cx)

    img: np.ndarray = np.full((size, size), rng.uniform(35, 60), np.float32)  # dark background
    metal = rng.uniform(120, 150)
    disc = dist < r_outer
    img[disc] = metal
    # Vanes: curved blades as bright ridges with dark gaps between them.
    n_vanes, twist, rot = int(rng.integers(5, 9)), rng.uniform(1.5, 3.0), rng.uniform(0, 2 * np.pi)
    blade = np.cos(n_vanes * (theta + twist * dist / r_outer + rot))
    vane_zone = disc & (dist > r_hub * 1.1) & (dist < r_outer * 0.92)
    img[vane_zone] += np.where(blade[vane_zone] > 0.55, 35.0, -25.0 * (blade[vane_zone] < -0.3))
    # Rim, hub, bore and bolt holes.
    img[(dist > r_outer * 0.92) & disc] = metal + 15
    img[dist < r_hub] = metal + 25
    img[dist < r_hole] = rng.uniform(10, 30)
    for k in range(int(rng.integers(3, 7))):
        a = rot + 2 * np.pi * k / 6
        hx, hy = cx + 0.7 * r_hub * np.cos(a), cy + 0.7 * r_hub * np.sin(a)
        img[np.hypot(xx - hx, yy - hy) < 0.12 * r_hub] = metal - 50
    # Cast surface grain and directional lighting.
    grain = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 1.2 * s)
    img += 6.0 * grain * disc
    light = rng.uniform(-1, 1, 2)
    img *= 1.0 + 0.15 * (light[0] * (xx - cx) + light[1] * (yy - cy)) / size
    if defect is not None:
        _add_defect(img, rng, defect, cx, cy, r_hub, r_outer, dist, xx, yy, s)
    img = cv2.GaussianBlur(img, (0, 0), 0.6 * s)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _add_defect(img, rng, kind, cx, cy, r_hub, r_outer, dist, xx, yy, s):
    def spot() -> tuple[float, float]:
        r, a = rng.uniform(r_hub * 1.15, r_outer * 0.9), rng.uniform(0, 2 * np.pi)
        return cx + r * np.cos(a), cy + r * np.sin(a)

    if kind == "blowhole":
        x, y = spot()
        rad = rng.uniform(3.0, 6.0) * s
        d = np.hypot(xx - x, yy - y)
        img[d < rad] = rng.uniform(15, 40)
        img[(d >= rad) & (d < rad + 1.5 * s)] += 25  # bright lip around the cavity
    elif kind == "pinholes":
        for _ in range(int(rng.integers(4, 10))):
            x, y = spot()
            img[np.hypot(xx - x, yy - y) < rng.uniform(1.2, 2.2) * s] = rng.uniform(10, 45)
    elif kind == "crack":
        x, y = spot()
        a = rng.uniform(0, 2 * np.pi)
        pts = [(x, y)]
        for _ in range(int(rng.integers(6, 12))):
            a += rng.normal(0, 0.5)
            x, y = x + 4 * s * np.cos(a), y + 4 * s * np.sin(a)
            pts.append((x, y))
        cv2.polylines(
            img,
            [np.round(np.array(pts) * 4).astype(np.int32)],
            False,
            float(rng.uniform(10, 40)),
            max(1, int(round(1.3 * s))),
            cv2.LINE_AA,
            shift=2,
        )
    elif kind == "burr":
        a = rng.uniform(0, 2 * np.pi)
        for k in range(int(rng.integers(2, 5))):
            ak = a + 0.05 * k
            x, y = cx + r_outer * np.cos(ak), cy + r_outer * np.sin(ak)
            img[np.hypot(xx - x, yy - y) < rng.uniform(2.5, 4.0) * s] = rng.uniform(185, 230)
    elif kind == "shrinkage":
        x, y = spot()
        blob = cv2.GaussianBlur(rng.normal(0, 1, img.shape).astype(np.float32), (0, 0), 2.0 * s)
        area = (np.hypot(xx - x, yy - y) < rng.uniform(6, 10) * s) & (blob > 0.1)
        img[area] -= rng.uniform(45, 70)
    elif kind == "missing_material":
        a, width = rng.uniform(0, 2 * np.pi), rng.uniform(0.15, 0.3)
        theta = np.arctan2(yy - cy, xx - cx)
        gap = (np.abs(np.angle(np.exp(1j * (theta - a)))) < width) & (dist > r_outer * rng.uniform(0.8, 0.88))
        img[gap & (dist < r_outer + 1)] = img[0, 0]
    else:
        raise ValueError(f"unknown defect kind {kind!r}; expected one of {DEFECT_KINDS}")


def synth_samples(
    n: int, rng: np.random.Generator, size: int = 160, defect_share: float = 0.5
) -> Iterator[tuple[np.ndarray, int, str]]:
    """Yield ``n`` synthetic photos as ``(image, label, defect_kind_or_ok)``."""
    for _ in range(n):
        if rng.random() < defect_share:
            kind = str(rng.choice(DEFECT_KINDS))
            yield synth_casting(rng, size, kind), 1, kind
        else:
            yield synth_casting(rng, size), 0, "ok"


def write_synthetic_dataset(
    root: str | Path, *, n_train: int = 600, n_test: int = 200, size: int = 160, seed: int = 0
) -> Path:
    """Write a synthetic dataset in the real ``train|test/<class>/`` layout (PNG files); returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for c in (DEFECTIVE_CLASS, OK_CLASS):
            (root / split / c).mkdir(parents=True, exist_ok=True)
        for i, (img, label, kind) in enumerate(synth_samples(n, rng, size)):
            cls = DEFECTIVE_CLASS if label else OK_CLASS
            cv2.imwrite(str(root / split / cls / f"synth_{split}_{i:05d}_{kind}.png"), img)
    return root
