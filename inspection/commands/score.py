"""``inspection score PATH... --out results.csv``: batch scoring that never stops on a bad file."""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from inspection.imageio import MAX_FILE_BYTES
from inspection.results import InspectionResult, Rejection

if TYPE_CHECKING:
    from inspection.store import RecordStore

HELP = (
    "Score photo files and folders; bad files become 'rejected' rows with the reason, the batch carries on."
)
COLUMNS = [
    "path",
    "status",
    "verdict",
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
    "model_versions",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="photo files or folders (searched recursively)")
    parser.add_argument(
        "--out", type=Path, default=Path("results.csv"), help="CSV to write (default: results.csv)"
    )
    parser.add_argument("--models", default=None, help="models root (default: the shipped models)")
    parser.add_argument(
        "--db", default=None, help="records store URL (default: $INSPECTION_DB or SQLite in the data dir)"
    )
    parser.add_argument("--no-db", action="store_true", help="write the CSV only, no records")
    parser.add_argument("--station", default="batch", help="station id the records carry (default: batch)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def expand(paths: list[Path]) -> Iterator[Path]:
    """Files as given, folders recursively (hidden files skipped); a missing path is still yielded."""
    for p in paths:
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        else:
            yield p


def read_bytes(path: Path) -> tuple[bytes | None, Rejection | None]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, Rejection("too_large", f"{size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
        return path.read_bytes(), None
    except OSError as e:
        return None, Rejection("unreadable", f"cannot read {path}: {e.strerror or e}")


def row(path: Path, data: bytes | None, result: InspectionResult | Rejection) -> dict[str, object]:
    base: dict[str, object] = {
        "path": str(path),
        "sha256": hashlib.sha256(data).hexdigest() if data is not None else "",
    }
    if isinstance(result, Rejection):
        return {
            **base,
            "status": "rejected",
            "verdict": "rejected",
            "reason": result.reason,
            "message": result.message,
        }
    return {
        **base,
        "status": "ok",
        "verdict": result.verdict,
        "defect_probability": f"{result.defect_probability:.4f}",
        "threshold": f"{result.threshold:.4f}",
        "noise_type": result.noise_type,
        "noise_probability": f"{result.noise_probability:.4f}",
        "denoiser": result.denoiser,
        "conversion": result.conversion,
        "ms_total": result.timings_ms.get("total"),
        "model_versions": ";".join(f"{k}={v}" for k, v in sorted(result.model_versions.items())),
    }


def store_row(
    store: RecordStore, station: str, path: Path, data: bytes | None, result: InspectionResult | Rejection
) -> None:
    rejected = isinstance(result, Rejection)
    store.save_inspection(
        station_id=station,
        part_id=path.stem,
        image_sha256=hashlib.sha256(data).hexdigest() if data is not None else None,
        image_path=str(path.resolve()),
        source="batch",
        image_bytes=len(data) if data is not None else None,
        result=None if isinstance(result, Rejection) else result,
        status="rejected" if rejected else "ok",
        reason=result.reason if isinstance(result, Rejection) else None,
        message=result.message if isinstance(result, Rejection) else None,
        conversion=None if isinstance(result, Rejection) else result.conversion,
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from inspection.pipeline import InspectionPipeline
    from inspection.store import RecordStore

    pipe = InspectionPipeline.from_dir(args.models)
    store = None if args.no_db else RecordStore(args.db)
    if store is not None:
        store.register_models(pipe)
    files = list(expand(args.paths))
    if not files:
        print("no files found under the given paths", file=sys.stderr)
        return 2
    counts = {"ok": 0, "defective": 0, "rejected": 0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for start in tqdm(
            range(0, len(files), args.batch_size), desc="score", disable=args.quiet, unit="batch"
        ):
            batch = files[start : start + args.batch_size]
            loaded = [read_bytes(p) for p in batch]
            readable = [(i, d) for i, (d, rej) in enumerate(loaded) if rej is None and d is not None]
            scored = dict(
                zip([i for i, _ in readable], pipe.inspect_batch([d for _, d in readable]), strict=True)
            )
            for i, path in enumerate(batch):
                result = loaded[i][1] or scored[i]
                assert result is not None
                writer.writerow(row(path, loaded[i][0], result))
                if store is not None:
                    store_row(store, args.station, path, loaded[i][0], result)
                counts[result.verdict] += 1
            f.flush()
    print(
        f"scored {len(files)} files: {counts['ok']} ok, {counts['defective']} defective, "
        f"{counts['rejected']} rejected -> {args.out}" + (f"; records in {store.url}" if store else "")
    )
    return 0
