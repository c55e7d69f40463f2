"""Datasets in the ``train|test/<class_name>/`` layout (or a labels CSV), and the synthetic casting generator.

**Labels from folders.** A class folder whose name starts with def/bad/ng/fail/reject holds defective parts;
any other folder holds good ones. A defective folder ``<prefix>_<name>`` (or ``<prefix>-<name>``) names the
defect kind ``<name>``: ``def_crack/`` holds cracks. Three names give no kind: a folder with nothing after the
prefix (``defective/``, ``NG/``), ``def_unknown/`` (``dataset export``'s defects labelled without a kind) and
``def_front/`` (the casting dataset's and ``dataset export``'s name for "defective, no kinds"). Whether a model
then learns kinds is decided over all of its training data (``inspection.train``): at least two kinds, or a
parent model with kinds, or ``kinds_only``. So a single ``def_*`` folder means no kinds.

**Kinds only.** With ``kinds_only`` every folder is a kind (its name, less a def/bad/... prefix) and every part is
defective: for datasets of defect kinds with no good class.

**Labels CSV.** ``path,label,kind`` (``kind`` optional), paths relative to the CSV's folder; ``label`` is ``ok``
or ``defective``. A row's split is its ``split`` column where there is one, else its path's first folder when
that is ``train`` or ``test`` (as ``inspection dataset export`` writes them), else ``train``.

Photos keep their own size and aspect ratio: :func:`read_photos` returns a list, never a stacked array.

**Golden photos.** A root's ``dataset.json`` (written by ``inspection dataset export``) may list
``golden_sha256``: the SHA-256 of the bytes of every photo in the frozen golden test set. :func:`golden_hashes`
collects them over all the roots of a training run, so that training can drop any photo with those bytes,
whichever root it comes from.

The generator is the project's embedded default: it draws top-view, impeller-like castings with
realistic defect kinds, so the whole pipeline can be trained, tested and demonstrated without any
user data or download. With ``seed`` 0 and default arguments its output stays byte-identical (the shipped
models are trained on it); kinds in ``EXTRA_DEFECT_KINDS`` are drawn only when asked for. A generated root
carries a ``dataset.json`` saying it is synthetic (generator, seed, sizes, kinds), which training copies into
each checkpoint's ``training_data``; ``masks=True`` adds each defect's mask under ``masks/`` without changing a
photo (the masks come from the shapes drawn, not from extra random numbers).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspection.imageio import read_image
from inspection.results import Rejection

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
DEFECT_KINDS = ("blowhole", "pinholes", "crack", "burr", "shrinkage", "missing_material")
# Opt-in kinds: never drawn unless asked for, so the default (seed 0) output stays byte-identical.
EXTRA_DEFECT_KINDS = ("scratch", "inclusion")
ALL_DEFECT_KINDS = DEFECT_KINDS + EXTRA_DEFECT_KINDS
POSITIVE_PREFIXES = ("def", "bad", "ng", "fail", "reject")
DEFECTIVE_CLASS, OK_CLASS = "def_front", "ok_front"
# Defective folder names that name no kind: the casting dataset's and ``dataset export``'s "no kinds" folder,
# and ``dataset export``'s folder of defects labelled without a kind.
NO_KIND_NAMES = ("front", "unknown")
SPLITS = ("train", "test")
OK_LABELS = ("ok", "good", "pass", "0", "false")
DEFECTIVE_LABELS = ("defective", "defect", "1", "true", *POSITIVE_PREFIXES)
DATASET_FILE = "dataset.json"  # what a dataset root says of itself (``synth``, ``dataset export``)
MASKS_DIR = "masks"  # opt-in defect masks of a generated dataset, beside train/ and test/
# The generator's output contract: bump only if seed-0 photos ever change (they must not: shipped models use them).
GENERATOR_VERSION = 1
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset folder or labels CSV that cannot be used as it is; the message says how to fix it."""


@dataclass(frozen=True)
class Sample:
    """One labelled photo.

    Attributes:
        path: the image file.
        label: 1 for a defective part, 0 for a good one.
        class_name: its class folder (for a labels CSV: ``ok``, ``defective`` or ``def_<kind>``).
        kind: the defect kind its folder or CSV row names; ``""`` for good parts and defects of no named kind.
    """

    path: Path
    label: int  # 1 = defective
    class_name: str
    kind: str = ""


@dataclass(frozen=True)
class RejectedPhoto:
    """A listed photo that could not be read, with the ``Rejection`` reason code and message."""

    path: Path
    reason: str
    message: str


def is_defect_class(name: str) -> bool:
    """Folder names starting with def/bad/ng/fail/reject hold defective parts."""
    return name.lower().startswith(POSITIVE_PREFIXES)


def folder_kind(name: str, *, kinds_only: bool = False) -> str:
    """The defect kind a class folder names (module docstring); ``""`` for none.

    ``def_crack`` -> ``crack``; ``defective``, ``def_front``, ``def_unknown`` and good folders -> ``""``. With
    ``kinds_only`` every folder names a kind: its name less a def/bad/ng/fail/reject prefix and separator.
    """
    lower = name.lower()
    prefix = next((p for p in POSITIVE_PREFIXES if lower.startswith(p)), None)
    rest = name[len(prefix) :] if prefix else ""
    named = rest[1:] if rest[:1] in ("_", "-") and len(rest) > 1 else ""
    if kinds_only:
        return named or name
    if prefix is None or named.lower() in NO_KIND_NAMES:
        return ""
    return named


def list_split(
    root: str | Path, split: str, *, kinds_only: bool = False, labels: str | Path | None = None
) -> list[Sample]:
    """All image files of ``root/split/<class>/`` (or the ``labels`` CSV's rows of ``split``), sorted.

    Raises:
        FileNotFoundError: the split folder or the CSV is missing.
        DatasetError: no defective class (unless ``kinds_only``), no images, or a CSV row that cannot be used.
    """
    if labels:
        return read_labels_csv(labels, split, kinds_only=kinds_only)
    base = Path(root) / split
    if not base.is_dir():
        raise FileNotFoundError(
            f"{base} does not exist; expected the layout {Path(root)}/{{train,test}}/<class_name>/<images>"
        )
    classes = sorted(d for d in base.iterdir() if d.is_dir())
    if not kinds_only and not any(is_defect_class(c.name) for c in classes):
        raise DatasetError(
            f"no defective class folder under {base} (found {[c.name for c in classes]}); "
            f"name it starting with one of {POSITIVE_PREFIXES}, e.g. def_front, or pass --kinds-only "
            "when every folder is a defect kind"
        )
    samples = [
        Sample(
            p,
            1 if kinds_only else int(is_defect_class(c.name)),
            c.name,
            folder_kind(c.name, kinds_only=kinds_only),
        )
        for c in classes
        for p in sorted(c.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not samples:
        raise DatasetError(f"{base} holds no images with suffixes {sorted(IMAGE_SUFFIXES)}")
    return samples


def read_labels_csv(path: str | Path, split: str, *, kinds_only: bool = False) -> list[Sample]:
    """The rows of a ``path,label,kind`` CSV that belong to ``split`` (module docstring), as samples.

    Every listed file must exist: a labels file that names missing photos is refused with the first few.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labels CSV {path} does not exist")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "path" not in columns or ("label" not in columns and not kinds_only):
            raise DatasetError(
                f"{path} must have a header with columns path,label[,kind][,split]; found {columns}"
            )
        rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]
    samples, missing = [], []
    for line, row in enumerate(rows, start=2):
        rel = Path(row["path"])
        row_split = row.get("split") or (rel.parts[0] if rel.parts and rel.parts[0] in SPLITS else "train")
        if row_split != split:
            continue
        file = rel if rel.is_absolute() else path.parent / rel
        kind = row.get("kind", "")
        text = row.get("label", "").lower()
        if kinds_only:
            label = 1
            if not kind:
                raise DatasetError(f"{path} line {line}: with --kinds-only every row needs a kind")
        elif text in OK_LABELS:
            label, kind = 0, ""
        elif text in DEFECTIVE_LABELS:
            label = 1
        else:
            raise DatasetError(
                f"{path} line {line}: label {row.get('label')!r} is neither ok nor defective "
                f"(accepted: {OK_LABELS} and {DEFECTIVE_LABELS})"
            )
        if not file.is_file():
            missing.append(str(file))
            continue
        class_name = "ok" if label == 0 else (f"def_{kind}" if kind else "defective")
        samples.append(Sample(file, label, class_name, kind))
    if missing:
        raise DatasetError(
            f"{path} lists {len(missing)} photo(s) that do not exist, e.g. {missing[:3]}; paths are relative to "
            "the CSV's folder"
        )
    if not samples:
        raise DatasetError(
            f"{path} has no rows for split {split!r}: give a split column, or start paths with {split}/"
        )
    if not kinds_only and not any(s.label for s in samples):
        raise DatasetError(f"{path} has no defective row in split {split!r}; pass --kinds-only if none is ok")
    return sorted(samples, key=lambda s: (s.class_name, str(s.path)))


def scale_longer_side(gray: np.ndarray, size: int) -> np.ndarray:
    """``gray`` scaled so its longer side is ``size`` pixels, keeping the aspect ratio."""
    h, w = gray.shape
    if max(h, w) == size:
        return gray
    f = size / max(h, w)
    return cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def read_photos(
    samples: Sequence[Sample], size: int | None = None
) -> tuple[list[np.ndarray], list[Sample], list[RejectedPhoto]]:
    """Decode samples to uint8 gray photos of their own sizes: ``(photos, kept samples, rejected)``.

    ``size`` scales each photo so its longer side is ``size`` pixels (aspect ratio kept). A photo that cannot
    be read is not silently skipped: it is returned in ``rejected`` with the reason, and logged.
    """
    photos, kept, rejected = [], [], []
    for s in samples:
        try:
            gray = read_image(s.path).gray
        except Rejection as e:
            log.warning("photo %s is not used: %s (%s)", s.path, e.message, e.reason)
            rejected.append(RejectedPhoto(s.path, e.reason, e.message))
            continue
        photos.append(scale_longer_side(gray, size) if size else gray)
        kept.append(s)
    return photos, kept, rejected


def load_images(samples: list[Sample], size: int | None = None) -> np.ndarray:
    """Decode samples to one uint8 array ``(n, h, w)``; all must share a shape unless ``size`` resizes them.

    For photos of mixed sizes use :func:`read_photos`, which keeps each photo's size.
    """
    out = []
    for s in samples:
        gray = read_image(s.path).gray
        if size is not None and gray.shape != (size, size):
            gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
        out.append(gray)
    shapes = sorted({g.shape for g in out})
    if len(shapes) > 1:
        raise DatasetError(
            f"the photos have {len(shapes)} different sizes (e.g. {shapes[:3]}); use read_photos to keep each "
            "photo's size, or pass size to resize them all"
        )
    return np.stack(out)


def golden_hashes(roots: Sequence[str | Path]) -> set[str]:
    """The golden photos' SHA-256 (lower-case hex) listed by the ``dataset.json`` of any of ``roots``.

    A root without ``dataset.json``, or whose ``dataset.json`` has no ``golden_sha256``, adds none.

    Raises:
        DatasetError: a ``dataset.json`` that cannot be read or whose ``golden_sha256`` is not a list of hex
            strings: the golden set it protects would be unknown, so training refuses rather than guess.
    """
    found: set[str] = set()
    for root in roots:
        manifest = Path(root) / DATASET_FILE
        if not manifest.is_file():
            continue
        try:
            listed = json.loads(manifest.read_text()).get("golden_sha256", [])
        except (OSError, json.JSONDecodeError, AttributeError) as e:
            raise DatasetError(
                f"{manifest} cannot be read ({e}), so its golden photos cannot be kept out of training; "
                "repair it or export the dataset again"
            ) from e
        if not isinstance(listed, list) or not all(
            isinstance(h, str) and _SHA256_HEX.match(h) for h in listed
        ):
            raise DatasetError(
                f"{manifest}: golden_sha256 must be a list of SHA-256 hex digests; repair it or export the "
                "dataset again"
            )
        found.update(h.lower() for h in listed)
    return found


def photo_sha256(path: str | Path) -> str:
    """SHA-256 (lower-case hex) of a photo file's bytes, as ``dataset export`` names and freezes photos."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dataset_fingerprint(samples: list[Sample]) -> dict[str, object]:
    """A summary and SHA-256 over file names, sizes and labels: cheap, and changes when the data does.

    Only the listed photos are hashed: a root's ``dataset.json`` and a generated dataset's ``masks/`` are not photos
    of any split. ``synthetic`` is True only when every photo lies in a ``<root>/<split>/<class>/`` folder whose
    root's ``dataset.json`` says ``"synthetic": true`` (as ``inspection synth`` writes it); with one such root its
    ``dataset.json`` comes along as ``dataset`` (long lists in it, such as golden hashes, as their lengths).
    """
    h = hashlib.sha256()
    counts: dict[str, int] = {}
    roots: dict[Path | None, None] = {}
    for s in samples:
        h.update(f"{s.class_name}/{s.path.name}:{s.path.stat().st_size}:{s.label}\n".encode())
        counts[s.class_name] = counts.get(s.class_name, 0) + 1
        roots[_split_root(s.path)] = None
    manifests = [read_dataset_manifest(r) if r is not None else None for r in roots]
    out: dict[str, object] = {"n_images": len(samples), "classes": counts, "sha256": h.hexdigest()}
    out["synthetic"] = bool(manifests) and all(
        m is not None and m.get("synthetic") is True for m in manifests
    )
    if len(manifests) == 1 and manifests[0] is not None:
        out["dataset"] = manifests[0]
    return out


def _split_root(path: Path) -> Path | None:
    """``<root>`` of a photo at ``<root>/<split>/<class>/<name>``; None for a photo elsewhere (a labels CSV's)."""
    parents = path.parents
    return parents[2] if len(parents) > 2 and parents[1].name in SPLITS else None


def read_dataset_manifest(root: str | Path, *, max_list: int = 32) -> dict[str, Any] | None:
    """``root/dataset.json`` as a dict, lists longer than ``max_list`` replaced by their lengths; None if absent.

    An unreadable file is logged and treated as absent here: the data is then simply not called synthetic.
    (:func:`golden_hashes` refuses such a file, because a golden set it cannot read would leak into training.)
    """
    path = Path(root) / DATASET_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        log.warning("%s cannot be read (%s); the data is not marked synthetic", path, e)
        return None
    if not isinstance(data, dict):
        log.warning("%s does not hold a JSON object; the data is not marked synthetic", path)
        return None
    return {k: (len(v) if isinstance(v, list) and len(v) > max_list else v) for k, v in data.items()}


# --- the synthetic casting generator ---------------------------------------------------------------


def synth_casting(rng: np.random.Generator, size: int = 160, defect: str | None = None) -> np.ndarray:
    """Draw one top-view impeller-like casting; ``defect`` adds one of ``ALL_DEFECT_KINDS``."""
    return synth_casting_with_mask(rng, size, defect)[0]


def synth_casting_with_mask(
    rng: np.random.Generator, size: int = 160, defect: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`synth_casting`, and the defect's mask: ``(photo, mask)``, the mask bool ``(size, size)``.

    The mask is the pixels the defect's shapes changed, computed from the very shapes drawn; no random number is
    drawn for it, so the photo for a given ``rng`` state is the same whether or not the mask is used. It is all
    False for a good part.
    """
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
    mask = np.zeros((size, size), bool)
    if defect is not None:
        mask = _add_defect(img, rng, defect, cx, cy, r_hub, r_outer, dist, xx, yy, s)
    img = cv2.GaussianBlur(img, (0, 0), 0.6 * s)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), mask


# Each branch draws its random numbers in the order the generator always has (in ``img[a] = b`` Python evaluates
# ``b`` before ``a``), so the photos stay byte-identical; the mask is built from the shapes already drawn.
@dataclass
class _Disc:
    """The casting being drawn, as the defect painters see it: the float photo (painted in place), the generator
    and the disc's geometry (centre, hub and outer radius, each pixel's distance and coordinates, scale)."""

    img: np.ndarray
    rng: np.random.Generator
    cx: float
    cy: float
    r_hub: float
    r_outer: float
    dist: np.ndarray
    xx: np.ndarray
    yy: np.ndarray
    s: float

    def spot(self) -> tuple[float, float]:
        """A random point on the vanes, between the hub and the rim."""
        r, a = self.rng.uniform(self.r_hub * 1.15, self.r_outer * 0.9), self.rng.uniform(0, 2 * np.pi)
        return self.cx + r * np.cos(a), self.cy + r * np.sin(a)

    def within(self, x: float, y: float) -> np.ndarray:
        """Each pixel's distance to ``(x, y)``."""
        return np.hypot(self.xx - x, self.yy - y)


def _add_defect(img, rng, kind, cx, cy, r_hub, r_outer, dist, xx, yy, s) -> np.ndarray:
    painter = _DEFECT_PAINTERS.get(kind)
    if painter is None:
        raise ValueError(f"unknown defect kind {kind!r}; expected one of {ALL_DEFECT_KINDS}")
    return painter(_Disc(img, rng, cx, cy, r_hub, r_outer, dist, xx, yy, s))


def _blowhole(d: _Disc) -> np.ndarray:
    x, y = d.spot()
    rad = d.rng.uniform(3.0, 6.0) * d.s
    dist = d.within(x, y)
    d.img[dist < rad] = d.rng.uniform(15, 40)
    lip = (dist >= rad) & (dist < rad + 1.5 * d.s)
    d.img[lip] += 25  # bright lip around the cavity
    return (dist < rad) | lip


def _dots(
    d: _Disc,
    n: int,
    centre: Callable[[int], tuple[float, float]],
    values: tuple[float, float],
    radii: tuple[float, float],
) -> np.ndarray:
    """``n`` filled discs, the k-th at ``centre(k)``, each of a random gray value then a random radius (x scale)."""
    mask = np.zeros(d.img.shape, bool)
    for k in range(n):
        x, y = centre(k)
        value = d.rng.uniform(*values)
        dot = d.within(x, y) < d.rng.uniform(*radii) * d.s
        d.img[dot] = value
        mask |= dot
    return mask


def _pinholes(d: _Disc) -> np.ndarray:
    return _dots(d, int(d.rng.integers(4, 10)), lambda _: d.spot(), (10, 45), (1.2, 2.2))


def _crack(d: _Disc) -> np.ndarray:
    x, y = d.spot()
    a = d.rng.uniform(0, 2 * np.pi)
    pts = [(x, y)]
    for _ in range(int(d.rng.integers(6, 12))):
        a += d.rng.normal(0, 0.5)
        x, y = x + 4 * d.s * np.cos(a), y + 4 * d.s * np.sin(a)
        pts.append((x, y))
    line = [np.round(np.array(pts) * 4).astype(np.int32)]
    thickness = max(1, int(round(1.3 * d.s)))
    cv2.polylines(d.img, line, False, float(d.rng.uniform(10, 40)), thickness, cv2.LINE_AA, shift=2)
    drawn = np.zeros(d.img.shape, np.uint8)
    cv2.polylines(drawn, line, False, 1, thickness, cv2.LINE_AA, shift=2)
    return drawn > 0


def _burr(d: _Disc) -> np.ndarray:
    a = d.rng.uniform(0, 2 * np.pi)

    def on_rim(k: int) -> tuple[float, float]:
        return d.cx + d.r_outer * np.cos(a + 0.05 * k), d.cy + d.r_outer * np.sin(a + 0.05 * k)

    return _dots(d, int(d.rng.integers(2, 5)), on_rim, (185, 230), (2.5, 4.0))


def _shrinkage(d: _Disc) -> np.ndarray:
    x, y = d.spot()
    blob = cv2.GaussianBlur(d.rng.normal(0, 1, d.img.shape).astype(np.float32), (0, 0), 2.0 * d.s)
    area = (d.within(x, y) < d.rng.uniform(6, 10) * d.s) & (blob > 0.1)
    d.img[area] -= d.rng.uniform(45, 70)
    return area


def _missing_material(d: _Disc) -> np.ndarray:
    a, width = d.rng.uniform(0, 2 * np.pi), d.rng.uniform(0.15, 0.3)
    theta = np.arctan2(d.yy - d.cy, d.xx - d.cx)
    near_rim = d.dist > d.r_outer * d.rng.uniform(0.8, 0.88)
    gap = (np.abs(np.angle(np.exp(1j * (theta - a)))) < width) & near_rim
    mask = gap & (d.dist < d.r_outer + 1)
    d.img[mask] = d.img[0, 0]
    return mask


def _scratch(d: _Disc) -> np.ndarray:
    """A long, thin, straight tool mark across the disc: bright (polished) or dark (a groove)."""
    a, offset = d.rng.uniform(0, np.pi), d.rng.uniform(-0.5, 0.5) * d.r_outer
    nx, ny = -np.sin(a), np.cos(a)
    length = d.r_outer * d.rng.uniform(1.2, 1.8)
    x0, y0 = d.cx + offset * nx, d.cy + offset * ny
    p0 = (x0 - 0.5 * length * np.cos(a), y0 - 0.5 * length * np.sin(a))
    p1 = (x0 + 0.5 * length * np.cos(a), y0 + 0.5 * length * np.sin(a))
    line = np.zeros(d.img.shape, np.float32)
    end0, end1 = (tuple(int(round(v * 4)) for v in p) for p in (p0, p1))
    cv2.line(line, end0, end1, 1.0, max(1, int(round(1.0 * d.s))), cv2.LINE_AA, shift=2)
    sign = 1.0 if d.rng.random() < 0.5 else -1.0
    d.img += sign * d.rng.uniform(55, 80) * line * (d.dist < d.r_outer)
    return (line > 0) & (d.dist < d.r_outer)


def _inclusion(d: _Disc) -> np.ndarray:
    """A foreign particle (sand, slag) in the surface: a small bright core with a dark irregular rim."""
    x, y = d.spot()
    rad = d.rng.uniform(2.0, 3.5) * d.s
    blob = cv2.GaussianBlur(d.rng.normal(0, 1, d.img.shape).astype(np.float32), (0, 0), 1.0 * d.s)
    dist = d.within(x, y)
    rim = (dist < 2.2 * rad) & (blob > 0.15)
    d.img[rim] -= d.rng.uniform(40, 60)
    d.img[dist < rad] = d.rng.uniform(200, 235)
    return rim | (dist < rad)


_DEFECT_PAINTERS: dict[str, Callable[[_Disc], np.ndarray]] = {
    "blowhole": _blowhole,
    "pinholes": _pinholes,
    "crack": _crack,
    "burr": _burr,
    "shrinkage": _shrinkage,
    "missing_material": _missing_material,
    "scratch": _scratch,
    "inclusion": _inclusion,
}


def synth_samples(
    n: int,
    rng: np.random.Generator,
    size: int = 160,
    defect_share: float = 0.5,
    kinds: Sequence[str] = DEFECT_KINDS,
) -> Iterator[tuple[np.ndarray, int, str]]:
    """Yield ``n`` synthetic photos as ``(image, label, defect_kind_or_ok)``, defects drawn from ``kinds``."""
    for img, _, label, kind in synth_samples_with_masks(n, rng, size, defect_share, kinds):
        yield img, label, kind


def synth_samples_with_masks(
    n: int,
    rng: np.random.Generator,
    size: int = 160,
    defect_share: float = 0.5,
    kinds: Sequence[str] = DEFECT_KINDS,
) -> Iterator[tuple[np.ndarray, np.ndarray, int, str]]:
    """:func:`synth_samples` with each photo's defect mask: ``(image, mask, label, kind)``, same random draws."""
    for _ in range(n):
        if rng.random() < defect_share:
            kind = str(rng.choice(kinds))
            img, mask = synth_casting_with_mask(rng, size, kind)
            yield img, mask, 1, kind
        else:
            img, mask = synth_casting_with_mask(rng, size)
            yield img, mask, 0, "ok"


def write_synthetic_dataset(
    root: str | Path,
    *,
    n_train: int = 600,
    n_test: int = 200,
    size: int = 160,
    seed: int = 0,
    kinds: Sequence[str] | None = None,
    kind_folders: bool = False,
    defect_share: float = 0.5,
    products: Sequence[str] | None = None,
    masks: bool = False,
) -> Path:
    """Write a synthetic dataset in the real ``train|test/<class>/`` layout (PNG files); returns ``root``.

    Args:
        kinds: defect kinds to draw from (default ``DEFECT_KINDS``); add ``EXTRA_DEFECT_KINDS`` by naming them.
        kind_folders: defective photos go to ``def_<kind>/`` instead of one ``def_front/``.
        defect_share: share of defective photos; 1.0 with ``kind_folders`` gives a kinds-only dataset.
        products: draw these products uniformly (:data:`inspection.products.PRODUCTS`) instead of castings
            only; file names then carry the product: ``synth_<split>_<i>_<product>_<kind>.png``.
        masks: also write each defective photo's defect mask (255 where the defect was drawn, else 0) to
            ``masks/<split>/<class>/<name>.png``, for checking where a model looks (``inspection explain``).
            Castings only. The photos are the same bytes with or without masks.

    With the default arguments the output for a seed is byte-identical to earlier versions. The root also gets a
    ``dataset.json`` (:func:`synthetic_manifest`) that says the photos are synthetic and how they were drawn;
    it is not a photo, and no split lists it.
    """
    kinds = tuple(kinds) if kinds else DEFECT_KINDS
    unknown = sorted(set(kinds) - set(ALL_DEFECT_KINDS))
    if unknown:
        raise ValueError(f"unknown defect kind(s) {unknown}; expected some of {ALL_DEFECT_KINDS}")
    if products is not None:
        from inspection.products import check_products  # it imports this module

        products = check_products(products)
        if masks:
            raise ValueError("defect masks are drawn for castings only; leave out --products or --masks")
    root = Path(root)
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        if not kind_folders:
            for c in (DEFECTIVE_CLASS, OK_CLASS):
                (root / split / c).mkdir(parents=True, exist_ok=True)
        drawn = _drawn_samples(n, rng, size, defect_share, kinds, products)
        for i, (img, mask, label, kind, product) in enumerate(drawn):
            cls = (f"def_{kind}" if kind_folders else DEFECTIVE_CLASS) if label else OK_CLASS
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            name = f"synth_{split}_{i:05d}_" + (f"{product}_" if product else "") + f"{kind}.png"
            cv2.imwrite(str(root / split / cls / name), img)
            if masks and label and mask is not None:
                (root / MASKS_DIR / split / cls).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / MASKS_DIR / split / cls / name), mask.astype(np.uint8) * 255)
            counts[f"{split}/{cls}"] = counts.get(f"{split}/{cls}", 0) + 1
    manifest = synthetic_manifest(
        n_train=n_train, n_test=n_test, size=size, seed=seed, kinds=kinds, kind_folders=kind_folders,
        defect_share=defect_share, products=products, masks=masks, counts=counts,
    )  # fmt: skip
    (root / DATASET_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return root


def _drawn_samples(
    n: int,
    rng: np.random.Generator,
    size: int,
    defect_share: float,
    kinds: tuple[str, ...],
    products: Sequence[str] | None,
) -> Iterator[tuple[np.ndarray, np.ndarray | None, int, str, str]]:
    """``(photo, mask or None, label, kind, product)`` for ``n`` samples: castings with their masks, or (with
    ``products``) the products drawn uniformly, product named and no mask."""
    if products is None:
        for img, mask, label, kind in synth_samples_with_masks(n, rng, size, defect_share, kinds):
            yield img, mask, label, kind, ""
        return
    from inspection.products import synth_product_samples  # it imports this module

    for img, label, kind, product in synth_product_samples(n, rng, size, products, defect_share, kinds):
        yield img, None, label, kind, product


def synthetic_manifest(
    *,
    n_train: int,
    n_test: int,
    size: int,
    seed: int,
    kinds: Sequence[str],
    kind_folders: bool,
    defect_share: float,
    products: Sequence[str] | None,
    masks: bool,
    counts: dict[str, int],
) -> dict[str, Any]:
    """What a generated dataset's ``dataset.json`` says of it: synthetic, and the generator's settings.

    Training copies it into each checkpoint's ``training_data`` (:func:`dataset_fingerprint`), so a bundle's card
    marks the data synthetic from the data itself rather than from the folder's name.
    """
    return {
        "synthetic": True,
        "generator": "inspection.data.write_synthetic_dataset",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "n_train": n_train,
        "n_test": n_test,
        "kinds": list(kinds),
        "kind_folders": kind_folders,
        "defect_share": defect_share,
        "products": list(products) if products is not None else ["casting"],
        "masks": MASKS_DIR if masks else None,
        "counts": dict(sorted(counts.items())),
    }


def mask_path(root: str | Path, photo: str | Path) -> Path:
    """Where :func:`write_synthetic_dataset` puts ``photo``'s defect mask: ``root/masks/<photo's relative path>``."""
    return Path(root) / MASKS_DIR / Path(photo).resolve().relative_to(Path(root).resolve())
