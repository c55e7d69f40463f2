"""Datasets: labels and kinds from folders or a labels CSV, photos of any size, the synthetic generator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.data import (
    ALL_DEFECT_KINDS,
    DatasetError,
    Sample,
    dataset_fingerprint,
    folder_kind,
    list_split,
    load_images,
    mask_path,
    read_photos,
    synth_casting,
    synth_casting_with_mask,
    write_synthetic_dataset,
)

# Produced by running, before the opt-in kinds were added (commit f6d4d8b):
#   write_synthetic_dataset(d, n_train=12, n_test=4, size=48, seed=0), then sha256 over every file, sorted by
#   relative path, of `relpath + b"\0" + file bytes` (BYTES) and of `relpath + b"\0" + decoded pixels` (PIXELS).
# The pixel hash does not depend on the PNG encoder; the byte hash checks byte identity with the pinned OpenCV.
SEED0_BYTES = "0d0851914d752cf92d2a627539a5e0e97e50c67c27184b4915a3c88433637fb3"
SEED0_PIXELS = "d02cf841b9389eb0f894a9b78fa153892f36f865b91e5430be126c5bb47799b2"


def _digests(root: Path) -> tuple[str, str]:
    """Digests over the photos of ``train/`` and ``test/`` (not ``dataset.json``, not ``masks/``)."""
    by_bytes, by_pixels = hashlib.sha256(), hashlib.sha256()
    photos = [q for split in ("train", "test") for q in (root / split).rglob("*") if q.suffix == ".png"]
    for p in sorted(photos):
        rel = p.relative_to(root).as_posix().encode() + b"\0"
        by_bytes.update(rel + p.read_bytes())
        by_pixels.update(rel + cv2.imread(str(p), cv2.IMREAD_UNCHANGED).tobytes())
    return by_bytes.hexdigest(), by_pixels.hexdigest()


def test_seed0_output_is_unchanged(tmp_path):
    by_bytes, by_pixels = _digests(write_synthetic_dataset(tmp_path, n_train=12, n_test=4, size=48, seed=0))
    assert by_pixels == SEED0_PIXELS
    if cv2.__version__.startswith("5.0."):  # the encoder the byte digest was made with
        assert by_bytes == SEED0_BYTES


def test_masks_leave_the_photos_unchanged(tmp_path):
    """Asking for masks draws the same random numbers: the seed-0 photos keep their bytes."""
    plain = write_synthetic_dataset(tmp_path / "plain", n_train=12, n_test=4, size=48, seed=0)
    masked = write_synthetic_dataset(tmp_path / "masked", n_train=12, n_test=4, size=48, seed=0, masks=True)
    assert _digests(masked) == _digests(plain)
    assert _digests(masked)[1] == SEED0_PIXELS
    assert not (plain / "masks").exists()
    drawn = 0  # at 48 px a pinhole can be smaller than a pixel: its mask, like its photo, then shows nothing
    for sample in list_split(masked, "test") + list_split(masked, "train"):
        mask_file = mask_path(masked, sample.path)
        assert mask_file.is_file() == bool(sample.label), sample.path
        if sample.label:
            mask = cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE)
            assert mask.shape == (48, 48) and set(np.unique(mask)) <= {0, 255}
            drawn += int((mask == 255).any())
    assert drawn >= 4
    with pytest.raises(ValueError, match="castings only"):
        write_synthetic_dataset(tmp_path / "p", n_train=1, n_test=0, products=["turned"], masks=True)


@pytest.mark.parametrize("kind", ALL_DEFECT_KINDS)
def test_mask_covers_what_the_defect_changed(kind):
    """The mask is where the defect was drawn: the photo differs from the same part without it mostly there."""
    for seed in range(5):
        photo, mask = synth_casting_with_mask(np.random.default_rng(seed), 96, kind)
        assert np.array_equal(photo, synth_casting(np.random.default_rng(seed), 96, kind))
        clean = synth_casting(np.random.default_rng(seed), 96).astype(int)
        changed = np.abs(photo.astype(int) - clean) > 12
        near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert mask.any() and changed[near].sum() >= 0.8 * changed.sum(), (kind, seed)


def test_dataset_json_marks_generated_data_synthetic(tmp_path):
    root = write_synthetic_dataset(tmp_path, n_train=6, n_test=2, size=32, seed=4)
    manifest = json.loads((root / "dataset.json").read_text())
    assert manifest["synthetic"] is True and manifest["seed"] == 4 and manifest["size"] == 32
    assert manifest["generator"] == "inspection.data.write_synthetic_dataset"
    assert sum(manifest["counts"].values()) == 8 and manifest["masks"] is None
    samples = list_split(root, "train")
    fingerprint = dataset_fingerprint(samples)
    assert fingerprint["synthetic"] is True and fingerprint["dataset"]["seed"] == 4
    assert fingerprint["n_images"] == 6  # dataset.json is no photo
    (root / "dataset.json").unlink()
    again = dataset_fingerprint(samples)
    assert again["synthetic"] is False and "dataset" not in again
    assert again["sha256"] == fingerprint["sha256"]  # the hash covers the photos only


def test_opt_in_kinds_go_to_kind_folders(tmp_path):
    root = write_synthetic_dataset(
        tmp_path, n_train=10, n_test=0, size=48, seed=1, kinds=("scratch", "crack"), kind_folders=True
    )
    folders = {p.name for p in (root / "train").iterdir()}
    assert folders <= {"def_scratch", "def_crack", "ok_front"} and "def_front" not in folders
    kinds = {s.kind for s in list_split(root, "train") if s.label}
    assert kinds <= {"scratch", "crack"} and kinds
    with pytest.raises(ValueError, match="unknown defect kind"):
        write_synthetic_dataset(tmp_path / "x", n_train=1, n_test=0, kinds=("dent",))


def test_new_kinds_draw_something_visible():
    clean = synth_casting(np.random.default_rng(3), 96)
    for kind in ("scratch", "inclusion"):
        img = synth_casting(np.random.default_rng(3), 96, kind)
        assert img.shape == (96, 96) and np.abs(img.astype(int) - clean).max() > 30


@pytest.mark.parametrize(
    ("name", "kinds_only", "kind"),
    [
        ("def_crack", False, "crack"),
        ("NG-burr", False, "burr"),
        ("def_front", False, ""),
        ("def_unknown", False, ""),
        ("defective", False, ""),
        ("ok_front", False, ""),
        ("crack", True, "crack"),
        ("def_crack", True, "crack"),
    ],
)
def test_folder_kind(name, kinds_only, kind):
    assert folder_kind(name, kinds_only=kinds_only) == kind


def _photo(path: Path, h: int = 40, w: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w), 128, np.uint8))


def test_kinds_from_folders_and_kinds_only(tmp_path):
    for cls in ("ok", "def_crack", "def_blowhole"):
        _photo(tmp_path / "train" / cls / "a.png")
    samples = list_split(tmp_path, "train")
    assert [(s.class_name, s.label, s.kind) for s in samples] == [
        ("def_blowhole", 1, "blowhole"),
        ("def_crack", 1, "crack"),
        ("ok", 0, ""),
    ]
    only = tmp_path / "only"
    for cls in ("crack", "break"):
        _photo(only / "train" / cls / "a.png")
    with pytest.raises(DatasetError, match="--kinds-only"):
        list_split(only, "train")
    assert [(s.label, s.kind) for s in list_split(only, "train", kinds_only=True)] == [
        (1, "break"),
        (1, "crack"),
    ]


def test_labels_csv_splits_by_path_and_reads_kinds(tmp_path):
    for rel in ("train/x/1.png", "train/x/2.png", "train/x/3.png", "test/x/4.png"):
        _photo(tmp_path / rel)
    (tmp_path / "labels.csv").write_text(
        "path,label,kind\n"
        "train/x/1.png,ok,\n"
        "train/x/2.png,defective,crack\n"
        "train/x/3.png,defective,\n"
        "test/x/4.png,defective,burr\n"
    )
    train = list_split(tmp_path, "train", labels=tmp_path / "labels.csv")
    assert {(s.path.name, s.label, s.kind, s.class_name) for s in train} == {
        ("1.png", 0, "", "ok"),
        ("2.png", 1, "crack", "def_crack"),
        ("3.png", 1, "", "defective"),
    }
    test = list_split(tmp_path, "test", labels=tmp_path / "labels.csv")
    assert [(s.path.name, s.kind) for s in test] == [("4.png", "burr")]
    (tmp_path / "bad.csv").write_text("path,label\ntrain/x/1.png,maybe\n")
    with pytest.raises(DatasetError, match="neither ok nor defective"):
        list_split(tmp_path, "train", labels=tmp_path / "bad.csv")
    (tmp_path / "gone.csv").write_text("path,label\ntrain/x/9.png,ok\ntrain/x/2.png,defective\n")
    with pytest.raises(DatasetError, match="do not exist"):
        list_split(tmp_path, "train", labels=tmp_path / "gone.csv")


def test_photos_of_mixed_sizes_are_kept_as_they_are(tmp_path):
    _photo(tmp_path / "train" / "def_a" / "wide.png", 40, 90)
    _photo(tmp_path / "train" / "ok" / "tall.png", 70, 36)
    (tmp_path / "train" / "ok" / "broken.png").write_bytes(b"not a png")
    samples = list_split(tmp_path, "train")
    photos, kept, rejected = read_photos(samples)
    assert [p.shape for p in photos] == [(40, 90), (70, 36)]
    assert [r.path.name for r in rejected] == ["broken.png"] and rejected[0].reason
    assert all(isinstance(s, Sample) for s in kept) and len(kept) == 2
    assert [p.shape for p in read_photos(kept, 45)[0]] == [(20, 45), (45, 23)]
    with pytest.raises(DatasetError, match="different sizes"):
        load_images(kept)
