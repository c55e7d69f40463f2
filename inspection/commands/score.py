"""``inspection score PATH... --out results.csv``: batch scoring that never stops on a bad file.

Every file becomes one CSV row. With a records store (the default) each file goes through the one ingestion path
(:mod:`inspection.ingest`) as a ``batch`` submission: its part id (the file name without its extension) is
checked, and a rerun finds the records of the first run instead of adding new ones. When the stores cannot take
a record, its row says ``status=unrecorded`` with the reason, the run carries on and exits with code 3; running
the same command again records those rows. With ``--no-db`` the files are only scored, under the same part-id
rule and the same scoring fallback.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from inspection.commands._backend import (
    add_backend_flag,
    add_device_flag,
    add_worker_processes_flag,
    backend_of,
    device_of,
)
from inspection.commands._config import positive_int
from inspection.results import InspectionResult, Rejection

if (
    TYPE_CHECKING
):  # the ingestion path loads the store and OpenCV: imported when the command runs, not for --help
    from inspection.ingest import Ingested, Ingestor, Submission
    from inspection.ingest.core import BatchPipeline

HELP = (
    "Score photo files and folders; bad files become 'rejected' rows with the reason, the batch carries on."
)
COLUMNS = [
    "path",
    "status",
    "verdict",
    "kind",
    "review_reason",
    "ood",
    "ood_score",
    "defect_probability",
    "threshold",
    "noise_type",
    "noise_probability",
    "denoiser",
    "conversion",
    "reason",
    "message",
    "sha256",
    "ms_total",
    "backend",
    "model_versions",
]
RECORD_COLUMNS = [*COLUMNS, "record_id"]
OOD_CHECKED, OOD_FLAGGED = "ood:checked", "ood:flagged"  # counts of scored photos with a known flag, flagged
STATUS_UNRECORDED = "unrecorded"  # scored or refused, but the stores could not take the record: rerun
EXIT_BAD_SETUP = 2
EXIT_UNRECORDED = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        help="photo files or folders, searched recursively (hidden files and folders, and the --out CSV, left out)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results.csv"), help="CSV to write (default: results.csv)"
    )
    parser.add_argument(
        "--models", default=None, help="the models root to score with (default: the shipped models)"
    )
    parser.add_argument(
        "--db", default=None, help="records store URL (default: $INSPECTION_DB or SQLite in the data dir)"
    )
    parser.add_argument(
        "--no-db", action="store_true", help="write the CSV only, no records (part ids are still checked)"
    )
    parser.add_argument(
        "--photos",
        default=None,
        help="also keep a copy of each photo in this photo store: a folder, 'db' (the records database) or an "
        "fsspec URL (default: no copy; records point at the files where they are, and dataset export reads them "
        "there while their bytes are unchanged)",
    )
    parser.add_argument("--station", default="batch", help="station id the records carry (default: batch)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="photos scored together in one call (default 32)"
    )
    add_backend_flag(parser)
    add_device_flag(parser)
    add_worker_processes_flag(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def expand(paths: list[Path], skip: Path | None = None) -> Iterator[Path]:
    """Files as given, folders recursively: hidden files and folders left out, and ``skip`` (the output CSV)."""
    skipped = skip.resolve() if skip else None
    for p in paths:
        if not p.is_dir():
            yield p
            continue
        for f in sorted(p.rglob("*")):
            hidden = any(part.startswith(".") for part in f.relative_to(p).parts)
            if f.is_file() and not hidden and f.resolve() != skipped:
                yield f


def submission(path: Path, station: str) -> Submission:
    """The ingestion submission of one file; a file that cannot be read carries its refusal (``unreadable``,
    ``too_large``), to be recorded like any other."""
    from inspection.ingest import Submission
    from inspection.ingest.files import read_photo

    data: bytes | None = None
    refused: Rejection | None = None
    try:
        data = read_photo(path, follow_symlinks=True)  # the operator named these files: links are theirs
    except Rejection as e:
        refused = e
    except OSError as e:
        refused = Rejection("unreadable", f"cannot read {path}: {e.strerror or e}")
    return Submission(station, path.stem, data, "batch", path=str(path.resolve()), refused=refused)


def judge_without_store(
    pipeline: BatchPipeline, submissions: Sequence[Submission]
) -> list[InspectionResult | Rejection]:
    """Score submissions with no store (``--no-db``): a refusal or a bad part id stands in for the result,
    the rest are scored in one batch by :func:`inspection.ingest.score_photos`."""
    from inspection.ingest import score_photos

    refusals = [sub.refused or _part_id_refusal(sub.part_id) for sub in submissions]
    photos = [sub.data or b"" for sub, refusal in zip(submissions, refusals, strict=True) if refusal is None]
    scored = iter(score_photos(pipeline, photos) if photos else [])
    return [refusal if refusal is not None else next(scored) for refusal in refusals]


def _part_id_refusal(part_id: str | None) -> Rejection | None:
    from inspection.ingest import check_part_id

    try:
        check_part_id(part_id)
    except Rejection as e:
        return e
    return None


def _fields(outcome: Ingested | InspectionResult | Rejection) -> dict[str, Any]:
    """An outcome under the records' field names: the stored record, or what a record would hold."""
    if isinstance(outcome, InspectionResult):
        from inspection.store.records import ood_fields

        ood, ood_score = ood_fields(outcome)  # unknown, as in a record, without an OOD model
        return {"status": "ok", **outcome.to_dict(), "ood": ood, "ood_score": ood_score}
    if isinstance(outcome, Rejection):
        return {"status": STATUS_UNRECORDED if outcome.retryable else "rejected", **outcome.to_dict()}
    return dict(outcome.record)


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def _flag(value: Any) -> str:
    """``true``, ``false``, or empty when not known."""
    return "" if value is None else str(bool(value)).lower()


def row(path: Path, sub: Submission, outcome: Ingested | InspectionResult | Rejection) -> dict[str, object]:
    """The CSV row of one file."""
    from inspection.store.photos import sha256_hex

    f = _fields(outcome)
    status = f["status"]
    out: dict[str, object] = {
        "path": str(path),
        "status": status,
        "verdict": f.get("verdict") if status == "ok" else ("rejected" if status == "rejected" else ""),
        "reason": f.get("reason") or "",
        "message": f.get("message") or "",
        "sha256": sha256_hex(sub.data) if sub.data is not None else "",
    }
    if status == "ok":
        out |= {
            "kind": f.get("kind") or "",
            "review_reason": f.get("review_reason") or "",
            "ood": _flag(f.get("ood")),
            "ood_score": _number(f.get("ood_score")),
            "defect_probability": _number(f.get("defect_probability")),
            "threshold": _number(f.get("threshold")),
            "noise_type": f.get("noise_type"),
            "noise_probability": _number(f.get("noise_probability")),
            "denoiser": f.get("denoiser"),
            "conversion": f.get("conversion"),
            "ms_total": (f.get("timings_ms") or {}).get("total"),
            "backend": (f.get("model_versions") or {}).get("backend", ""),
            "model_versions": ";".join(
                f"{k}={v}" for k, v in sorted((f.get("model_versions") or {}).items())
            ),
        }
    if "id" in f:  # a stored record
        out["record_id"] = f["id"]
    return out


def _open_ingestor(args: argparse.Namespace) -> Ingestor:
    """The ingestion path on the store of ``--db`` (and the photo store of ``--photos``, if given)."""
    from inspection.commands._stores import open_stores
    from inspection.ingest import Ingestor

    store, photos = open_stores(args.db, args.photos)
    return Ingestor(store, photos)


def _write_rows(
    fh: TextIO, files: list[Path], args: argparse.Namespace, pipe: BatchPipeline, ingestor: Ingestor | None
) -> Counter[str]:
    """Score ``files`` batch by batch and write one row each; returns the count of each verdict or status."""
    from tqdm import tqdm

    counts: Counter[str] = Counter()
    writer = csv.DictWriter(fh, RECORD_COLUMNS if ingestor else COLUMNS)
    writer.writeheader()
    for start in tqdm(range(0, len(files), args.batch_size), desc="score", disable=args.quiet, unit="batch"):
        batch = files[start : start + args.batch_size]
        subs = [submission(path, args.station) for path in batch]
        outcomes = ingestor.ingest_batch(pipe, subs) if ingestor else judge_without_store(pipe, subs)
        for path, sub, outcome in zip(batch, subs, outcomes, strict=True):
            line = row(path, sub, outcome)
            writer.writerow(line)
            counts[str(line["verdict"] or line["status"])] += 1
            if line.get("ood"):  # scored, and the OOD flag is known
                counts[OOD_CHECKED] += 1
                counts[OOD_FLAGGED] += int(line["ood"] == "true")
            if line["status"] == STATUS_UNRECORDED:
                counts[f"reason:{line['reason']}"] += 1
        fh.flush()
    return counts


def _report(
    counts: Counter[str], n_files: int, args: argparse.Namespace, store_url: str | None, card: dict[str, Any]
) -> int:
    """Print the summary, and the out-of-distribution warning when the batch earns one (stderr); exit code 3
    when some rows could not be recorded."""
    from inspection.ood import station_warning

    unrecorded = counts[STATUS_UNRECORDED]
    print(
        f"scored {n_files} files: {counts['ok']} ok, {counts['defective']} defective, {counts['review']} review, "
        f"{counts['rejected']} rejected"
        + (f", {unrecorded} not recorded" if unrecorded else "")
        + f" -> {args.out}"
        + (f"; records in {store_url}" if store_url else "")
    )
    warning = station_warning(counts[OOD_FLAGGED], counts[OOD_CHECKED], card)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if not unrecorded:
        return 0
    reasons = ", ".join(sorted(k.split(":", 1)[1] for k in counts if k.startswith("reason:")))
    print(
        f"inspection score: {unrecorded} row(s) were not recorded because the stores were unavailable "
        f"({reasons}); their CSV rows say status={STATUS_UNRECORDED}. Run the same command again to record "
        "them (rows already recorded are found, not added twice).",
        file=sys.stderr,
    )
    return EXIT_UNRECORDED


def run(args: argparse.Namespace) -> int:
    from inspection.bundle import BundleError, load_bundle
    from inspection.commands._stores import StoreOpenError, register_models
    from inspection.ingest.ids import STATION_ID_RULE, valid_station_id
    from inspection.models.checkpoint import CheckpointError
    from inspection.pipeline import InspectionPipeline
    from inspection.runtimes import BackendError

    if not valid_station_id(args.station):
        print(
            f"inspection score: station id {args.station!r} is not valid; {STATION_ID_RULE}",
            file=sys.stderr,
        )
        return EXIT_BAD_SETUP
    if args.no_db and args.photos:
        print(
            "inspection score: --photos keeps photos for the records; drop --no-db or --photos",
            file=sys.stderr,
        )
        return EXIT_BAD_SETUP
    missing = [str(p) for p in args.paths if not p.exists()]
    if len(missing) == len(args.paths):
        print(f"inspection score: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_BAD_SETUP
    if missing:  # recorded like any file that cannot be read, so the rest carries on; said here too
        print(
            f"inspection score: warning: no such file or folder: {', '.join(missing)} (recorded as rejected, "
            "reason unreadable)",
            file=sys.stderr,
        )
    files = list(expand(args.paths, skip=args.out))
    if not files:
        print("no files found under the given paths", file=sys.stderr)
        return EXIT_BAD_SETUP
    try:
        ingestor = None if args.no_db else _open_ingestor(args)
        bundle = load_bundle(args.models)  # LIVE read once: the card is that of the models that score
        pipe = InspectionPipeline.from_bundle(
            bundle,
            backend=backend_of(args),
            device=device_of(args),
            worker_processes=args.worker_processes,
        )
        if ingestor is not None:
            register_models(ingestor.store, pipe)
    except (StoreOpenError, BackendError, BundleError, CheckpointError) as e:
        print(f"inspection score: {e}", file=sys.stderr)
        return EXIT_BAD_SETUP
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(args.out, "w", newline="") as fh:
            counts = _write_rows(fh, files, args, pipe, ingestor)
    finally:
        pipe.close()
    url = ingestor.store.engine.url.render_as_string(hide_password=True) if ingestor else None
    return _report(counts, len(files), args, url, bundle.card)
