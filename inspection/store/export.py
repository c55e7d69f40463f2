"""Training data from labelled records: :func:`export_dataset` writes the ``train|test/<class>/`` layout.

The contract, which ``docs/retraining.md`` (section "Export") explains to engineers:

* **Source.** Every record with a label, under its newest label, and the photo the record kept; for a record that
  kept none (``inspection score`` without ``--photos``), the file it was scored from, if it is still there with
  the same bytes.
* **One file per photo**, named ``<sha256>.<ext>`` after the SHA-256 of its bytes, written with the original
  bytes; the extension comes from the bytes. When several records share one photo, the newest label wins, and
  records whose labels disagree are reported (a record relabelled by an engineer is a correction, not a
  disagreement: its newest label simply holds).
* **Classes.** ``ok``; for defective parts ``def_<kind>`` when any defective label names a kind, with the
  defects that name none under ``def_unknown`` (reported, so someone can give them their kind); and a single
  ``def_front`` when no label names a kind. Kinds are lowercased, and characters other than letters, digits,
  ``.``, ``_`` and ``-`` become ``_``.
* **The golden test set** is ``test/``: the photos whose hashes are in the store's ``golden_photos``. It grows
  only when asked (``golden_add`` or ``golden_fraction``), by a seeded draw stratified by class, and a golden
  photo is never written under ``train/``.
* **Nothing crashes on one photo.** A record without a kept photo, a photo missing from the photo store or
  unreadable, bytes that are no image or do not match the record's hash: each is skipped and listed with its
  reason in the report and in ``dataset.json``.
* The export is written beside ``out`` and swapped in at the end, so a failed export leaves the previous one
  whole. ``out`` must be missing, empty, or a previous export (its ``dataset.json`` has ``source`` and
  ``fingerprint``; a generated dataset's has neither).
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import json
import math
import random
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from inspection.store.models import utcnow
from inspection.store.photos import KEY_RE, PhotoNotFound, PhotoStore, sha256_hex, sniff_extension
from inspection.store.records import LabelledPhoto, RecordStore

FORMAT_VERSION = 1
OK_CLASS = "ok"
NO_KINDS_CLASS = "def_front"  # the name the trainer reads as "defective, no kinds" (docs/retraining.md)
UNKNOWN_KIND = "unknown"
SPLITS = ("train", "test")
KIND_CHARS = re.compile(r"[^a-z0-9._-]+")


class ExportError(ValueError):
    """The export cannot start (the output folder holds something else); the message says what to do."""


@dataclass(frozen=True)
class Skipped:
    """A labelled record whose photo was not exported, and why.

    Attributes:
        inspection_id: the record.
        sha256: the photo's hash when known.
        reason: ``no_photo``, ``photo_missing``, ``photo_unreadable``, ``not_an_image`` or ``hash_mismatch``.
        message: a sentence saying what was found.
    """

    inspection_id: int
    sha256: str | None
    reason: str
    message: str


@dataclass(frozen=True)
class Disagreement:
    """Records of one photo whose newest labels disagree; ``kept`` is the label exported (the newest)."""

    sha256: str
    kept: str
    labels: tuple[tuple[int, str], ...]  # (inspection id, "ok" | "defective" | "defective/<kind>")


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_dataset` wrote and what it left out."""

    out: Path
    counts: dict[str, dict[str, int]]  # split -> class -> photos
    fingerprint: str
    golden_in_store: int
    golden_added: int
    skipped: tuple[Skipped, ...] = ()
    disagreements: tuple[Disagreement, ...] = ()
    golden_relabelled: tuple[str, ...] = ()  # golden hashes whose label changed since they were frozen
    unkinded_defects: int = 0  # defective photos under def_unknown
    meta: dict[str, Any] = field(default_factory=dict)  # dataset.json as written

    @property
    def exported(self) -> int:
        return sum(n for classes in self.counts.values() for n in classes.values())


@dataclass(frozen=True)
class _Photo:
    """One photo to export: the winning label of its records, and its class folder."""

    sha256: str
    label: LabelledPhoto
    kind: str  # normalised; "" for ok parts and defects without a kind
    class_name: str


@dataclass(frozen=True)
class _Row:
    """A photo written: its split and its path relative to the dataset folder."""

    split: str
    path: str
    photo: _Photo


def normalise_kind(kind: str | None) -> str:
    """A defect kind as a folder-safe lowercase name (``"Cold Shut"`` -> ``cold_shut``); ``""`` for none."""
    return KIND_CHARS.sub("_", (kind or "").strip().lower()).lstrip("._-")


def label_text(verdict: str, kind: str) -> str:
    return f"{verdict}/{kind}" if verdict == "defective" and kind else verdict


def _sha_of(item: LabelledPhoto) -> str | None:
    if item.image_sha256:
        return item.image_sha256.lower()
    if item.image_key and KEY_RE.fullmatch(item.image_key):
        return item.image_key.split("/", 1)[1].split(".", 1)[0]
    return None


def check_out_dir(out: Path) -> None:
    """Refuse an output folder that holds something other than a previous export.

    Raises:
        ExportError: ``out`` is a file, or a non-empty folder without an export's ``dataset.json``.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"{out} is a file; --out must name a folder (missing, empty or a previous export)")
    if any(out.iterdir()) and not _is_export(out / "dataset.json"):
        raise ExportError(
            f"{out} is not empty and holds no dataset.json written by 'inspection dataset export' (a generated "
            "dataset's is not one), so it is not a previous export; name a new or empty folder (a previous export "
            "is replaced whole)"
        )


def _is_export(path: Path) -> bool:
    """Whether ``path`` is a ``dataset.json`` this module wrote: ``inspection synth`` writes one too."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(meta, dict) and "source" in meta and "fingerprint" in meta
    )  # every export's, none of synth's


def pick_golden(photos: list[_Photo], n: int, seed: int) -> list[_Photo]:
    """``n`` photos drawn with ``seed``, stratified by class: in proportion to the classes' sizes (largest
    remainder), and at least one of every class when ``n`` allows, so a rare kind is measured too."""
    by_class: dict[str, list[_Photo]] = defaultdict(list)
    for photo in sorted(photos, key=lambda p: p.sha256):
        by_class[photo.class_name].append(photo)
    rng = random.Random(seed)
    for name in sorted(by_class):
        rng.shuffle(by_class[name])
    n, total = min(n, len(photos)), len(photos)
    if not n:
        return []
    shares = {name: n * len(items) / total for name, items in sorted(by_class.items())}
    quota = {name: math.floor(share) for name, share in shares.items()}
    by_remainder = sorted(shares, key=lambda c: (quota[c] - shares[c], c))
    for name in by_remainder[: n - sum(quota.values())]:
        quota[name] += 1
    if n >= len(quota):
        for name in [c for c, q in quota.items() if q == 0]:
            quota[max(quota, key=lambda c: (quota[c], c))] -= 1  # the largest class can spare one
            quota[name] = 1
    return [photo for name in sorted(by_class) for photo in by_class[name][: quota[name]]]


def who_exports() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        user = "unknown"
    return f"dataset export ({user})"[:64]


def export_dataset(
    store: RecordStore,
    photos: PhotoStore,
    out: str | Path,
    *,
    golden_add: int = 0,
    golden_fraction: float | None = None,
    seed: int = 0,
    added_by: str | None = None,
    progress: bool = False,
) -> ExportReport:
    """Write the labelled records' photos to ``out/train|test/<class>/`` with ``labels.csv`` and
    ``dataset.json`` (see the module docstring for the rules).

    Args:
        store: the records store holding the labels and the golden set.
        photos: the photo store the records kept their photos in.
        out: the dataset folder to write (missing, empty, or a previous export, which is replaced).
        golden_add: add this many labelled photos, not yet golden, to the golden set first.
        golden_fraction: instead, grow the golden set until it holds this fraction of the exported photos.
        seed: seeds the draw of new golden photos.
        added_by: who grows the golden set (default: ``dataset export (<login>)``).
        progress: show a progress bar while photos are copied.

    Returns:
        The report; ``report.exported == 0`` when nothing could be exported, and then ``out`` is untouched.

    Raises:
        ExportError: ``out`` holds something other than a previous export.
        ValueError: a negative ``golden_add``, or a ``golden_fraction`` outside [0, 1).
    """
    out = Path(out)
    if golden_add < 0:
        raise ValueError(f"golden_add must be 0 or more, got {golden_add}")
    if golden_fraction is not None and not 0 <= golden_fraction < 1:
        raise ValueError(f"golden_fraction must be in [0, 1), e.g. 0.2, got {golden_fraction}")
    check_out_dir(out)
    skipped: list[Skipped] = []
    chosen, disagreements = _newest_per_photo(store.labelled_photos(), skipped)
    present = _present(chosen, photos, skipped)
    kinds = sorted({kind for item, kind in present.values() if item.verdict == "defective" and kind})
    candidates = [_as_photo(sha, item, kind, kinds) for sha, (item, kind) in sorted(present.items())]

    golden, added = _grow_golden(store, candidates, golden_add, golden_fraction, seed, added_by)
    relabelled = _relabelled_golden(candidates, store.list_golden())

    out.parent.mkdir(parents=True, exist_ok=True)  # staging sits beside out, so the swap is a rename
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        rows = _write_photos(candidates, golden, photos, staging, skipped, progress)
        meta = _summary(rows, kinds, skipped, disagreements, relabelled)
        meta["source"] = {"db": store.engine.url.render_as_string(hide_password=True), "photos": photos.url}
        meta["golden"] = {
            "in_store": len(golden),
            "exported": sum(meta["counts"]["test"].values()),
            "added": added,
            "seed": seed,
            "relabelled": list(relabelled),
        }
        # Every golden hash in the store, exported or not: training drops any photo with these bytes, from
        # this export or from any replayed one, so the golden set never enters training.
        meta["golden_sha256"] = sorted(golden)
        if rows:
            _write_labels(staging, rows, meta)
            _swap_in(staging, out)
        return ExportReport(
            out=out,
            counts=meta["counts"],
            fingerprint=meta["fingerprint"],
            golden_in_store=len(golden),
            golden_added=added,
            skipped=tuple(skipped),
            disagreements=tuple(disagreements),
            golden_relabelled=relabelled,
            unkinded_defects=meta["unkinded_defects"],
            meta=meta,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _grow_golden(
    store: RecordStore,
    candidates: list[_Photo],
    golden_add: int,
    golden_fraction: float | None,
    seed: int,
    added_by: str | None,
) -> tuple[set[str], int]:
    """Add ``golden_add`` photos, or enough for ``golden_fraction`` of ``candidates``, to the golden set (drawn
    with ``seed`` among those not golden yet); returns the golden hashes afterwards and how many were added."""
    golden = store.golden_hashes()
    n_add = golden_add
    if golden_fraction is not None:
        golden_present = sum(p.sha256 in golden for p in candidates)
        n_add = max(0, math.ceil(golden_fraction * len(candidates)) - golden_present)
    if not n_add:
        return golden, 0
    picked = pick_golden([p for p in candidates if p.sha256 not in golden], n_add, seed)
    items = [
        {
            "sha256": p.sha256,
            "label": p.label.verdict,
            "kind": p.kind or None,
            "inspection_id": p.label.inspection_id,
        }
        for p in picked
    ]
    added = store.add_golden(items, added_by=added_by or who_exports())
    return store.golden_hashes(), added


def _summary(
    rows: list[_Row],
    kinds: list[str],
    skipped: list[Skipped],
    disagreements: list[Disagreement],
    relabelled: tuple[str, ...],
) -> dict[str, Any]:
    """``dataset.json`` but for its source and golden set: counts, fingerprint, and what was left out."""
    counts: dict[str, dict[str, int]] = {split: {} for split in SPLITS}
    for row in sorted(rows, key=lambda r: r.photo.class_name):
        counts[row.split][row.photo.class_name] = counts[row.split].get(row.photo.class_name, 0) + 1
    lines = sorted(f"{r.photo.sha256}\t{r.split}\t{r.photo.label.verdict}\t{r.photo.kind}\n" for r in rows)
    return {
        "format_version": FORMAT_VERSION,
        "created_at": utcnow().isoformat(),
        "fingerprint": hashlib.sha256("".join(lines).encode()).hexdigest(),
        "classes": sorted({c for split in counts.values() for c in split}),
        "kinds": kinds,
        "counts": counts,
        "total": len(rows),
        "unkinded_defects": sum(r.photo.class_name == f"def_{UNKNOWN_KIND}" for r in rows),
        "skipped": dict(sorted(Counter(s.reason for s in skipped).items())),
        "skipped_photos": [asdict(s) for s in skipped],
        "disagreements": [
            {"sha256": d.sha256, "kept": d.kept, "labels": [list(pair) for pair in d.labels]}
            for d in disagreements
        ],
    }


def _newest_per_photo(
    labelled: list[LabelledPhoto], skipped: list[Skipped]
) -> tuple[dict[str, tuple[LabelledPhoto, str, list[LabelledPhoto]]], list[Disagreement]]:
    """The newest label of each photo (by hash) with its records' copies of it, and the photos whose records' labels
    disagree."""
    by_sha: dict[str, list[LabelledPhoto]] = defaultdict(list)
    for item in labelled:
        sha = _sha_of(item)
        if sha is None or not (item.image_key or item.image_path):
            skipped.append(
                Skipped(
                    item.inspection_id,
                    sha,
                    "no_photo",
                    "the record kept no photo and names no file to export",
                )
            )
            continue
        by_sha[sha].append(item)
    chosen: dict[str, tuple[LabelledPhoto, str, list[LabelledPhoto]]] = {}
    disagreements: list[Disagreement] = []
    for sha, items in by_sha.items():
        newest = max(items, key=lambda i: i.label_id)
        kind = normalise_kind(newest.kind) if newest.verdict == "defective" else ""
        # the newest label; the bytes from any record's copy of them, kept photos first, newest first
        copies = sorted(items, key=lambda i: (i.image_key is not None, i.label_id), reverse=True)
        chosen[sha] = (newest, kind, copies)
        texts = [(i.inspection_id, label_text(i.verdict, normalise_kind(i.kind))) for i in items]
        if len({t for _, t in texts}) > 1:
            disagreements.append(Disagreement(sha, label_text(newest.verdict, kind), tuple(texts)))
    return chosen, disagreements


def _present(
    chosen: dict[str, tuple[LabelledPhoto, str, list[LabelledPhoto]]],
    photos: PhotoStore,
    skipped: list[Skipped],
) -> dict[str, tuple[LabelledPhoto, str]]:
    """Each chosen photo's newest label with the first of its copies that is still there (a kept photo asked by
    size, so nothing is read twice; a file by path, whose bytes must still hash to the record's); a photo none of
    whose copies is there is skipped with the last copy's reason."""
    present = {}
    for sha, (newest, kind, copies) in chosen.items():
        for copy in copies:
            problem = _copy_problem(copy, sha, photos)
            if problem is None:
                present[sha] = (replace(newest, image_key=copy.image_key, image_path=copy.image_path), kind)
                break
        else:
            skipped.append(Skipped(copy.inspection_id, sha, *problem))
    return present


def _copy_problem(copy: LabelledPhoto, sha: str, photos: PhotoStore) -> tuple[str, str] | None:
    """Why a record's copy of a photo cannot be exported (reason, message), or None when it can."""
    where = _where(copy, photos)
    try:
        if copy.image_key:
            photos.size(copy.image_key)
        elif sha256_hex(_read(copy, photos)) != sha:
            return "hash_mismatch", f"the bytes of {where} are no longer the record's {sha}"
    except PhotoNotFound:
        return "photo_missing", f"{where} is not there"
    except OSError as e:
        return "photo_unreadable", f"{where}: {e}"
    return None


def _where(item: LabelledPhoto, photos: PhotoStore) -> str:
    """Where a record's photo is, in words: its key in the photo store, or the file it was scored from."""
    return f"photo {item.image_key} in {photos.url}" if item.image_key else f"file {item.image_path}"


def _read(item: LabelledPhoto, photos: PhotoStore) -> bytes:
    """A record's photo bytes: from the photo store, or from the file it was scored from.

    Raises:
        PhotoNotFound: the photo or file is not there.
        OSError: it cannot be read.
    """
    if item.image_key:
        return photos.get(item.image_key)
    try:
        return Path(str(item.image_path)).read_bytes()
    except FileNotFoundError as e:
        raise PhotoNotFound(str(item.image_path)) from e


def _as_photo(sha: str, item: LabelledPhoto, kind: str, kinds: list[str]) -> _Photo:
    if item.verdict != "defective":
        class_name = OK_CLASS
    elif not kinds:
        class_name = NO_KINDS_CLASS
    else:
        class_name = f"def_{kind or UNKNOWN_KIND}"
    return _Photo(sha, item, kind, class_name)


def _relabelled_golden(candidates: list[_Photo], frozen: list[dict[str, Any]]) -> tuple[str, ...]:
    """Golden photos whose newest label is not the one they were frozen with."""
    at_freeze = {
        row["sha256"]: label_text(
            row["label"], normalise_kind(row["kind"]) if row["label"] == "defective" else ""
        )
        for row in frozen
    }
    return tuple(
        p.sha256
        for p in candidates
        if p.sha256 in at_freeze and at_freeze[p.sha256] != label_text(p.label.verdict, p.kind)
    )


def _write_photos(
    candidates: list[_Photo],
    golden: set[str],
    photos: PhotoStore,
    staging: Path,
    skipped: list[Skipped],
    progress: bool,
) -> list[_Row]:
    """Copy each photo's bytes into ``staging/<split>/<class>/``."""
    from tqdm import tqdm

    rows = []
    for photo in tqdm(candidates, desc="export", unit="photo", disable=not progress):
        item, where = photo.label, _where(photo.label, photos)
        try:
            data = _read(item, photos)
        except PhotoNotFound:
            skipped.append(Skipped(item.inspection_id, photo.sha256, "photo_missing", f"{where} vanished"))
            continue
        except OSError as e:
            skipped.append(Skipped(item.inspection_id, photo.sha256, "photo_unreadable", f"{where}: {e}"))
            continue
        if sha256_hex(data) != photo.sha256:
            message = f"the bytes of {where} hash to {sha256_hex(data)}, not the record's {photo.sha256}"
            skipped.append(Skipped(item.inspection_id, photo.sha256, "hash_mismatch", message))
            continue
        ext = sniff_extension(data)
        if ext == "bin":
            message = f"{where} is no known image format"
            skipped.append(Skipped(item.inspection_id, photo.sha256, "not_an_image", message))
            continue
        split = "test" if photo.sha256 in golden else "train"
        relative = f"{split}/{photo.class_name}/{photo.sha256}.{ext}"
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        rows.append(_Row(split, relative, photo))
    return rows


def _write_labels(staging: Path, rows: list[_Row], meta: dict[str, Any]) -> None:
    """``labels.csv`` (path, label, kind) and ``dataset.json`` beside the photos in ``staging``."""
    with open(staging / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "kind"])
        writer.writerows([row.path, row.photo.label.verdict, row.photo.kind] for row in rows)
    (staging / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")


def _swap_in(staging: Path, out: Path) -> None:
    """Put the finished export at ``out``; a previous export there is removed only once the new one is in place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        staging.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    out.rename(old / out.name)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)
