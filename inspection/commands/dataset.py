"""``inspection dataset export --db URL --out DIR [--photos SPEC] [--golden-add N | --golden-fraction F]``.

Turns engineers' labels on stored records into a training dataset (``inspection.store.export``). Exit codes:
0 when at least one photo was exported (skipped photos are reported, not fatal), 1 when none could be,
2 when the stores or the output folder cannot be used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inspection.store.export import ExportReport

HELP = "Build training data from labelled records: export writes train|test/<class>/ with a frozen golden test set."
SHOWN = 10  # skipped photos and disagreements listed one per line; the rest are in dataset.json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = sub.add_parser(
        "export",
        help="write labelled photos to DIR/train|test/<class>/ with labels.csv and dataset.json",
        description="Write every labelled record's photo, once per SHA-256 under its newest label, to "
        "DIR/train/<class>/ or, for the golden test set, DIR/test/<class>/.",
    )
    export.add_argument(
        "--db",
        default="",
        metavar="URL",
        help="SQLAlchemy URL of the records store (default: SQLite in the data dir)",
    )
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the dataset folder to write; it must be missing, empty, or a previous export, which is replaced",
    )
    export.add_argument(
        "--photos",
        default="",
        metavar="SPEC",
        help="where the records' photos are kept: a folder, 'db' for the records database, or an fsspec URL "
        "(default: $INSPECTION_PHOTOS, else photos/ in the data dir)",
    )
    golden = export.add_mutually_exclusive_group()
    golden.add_argument(
        "--golden-add",
        type=int,
        default=0,
        metavar="N",
        help="first add N labelled photos, not yet golden, to the frozen golden test set, drawn per class",
    )
    golden.add_argument(
        "--golden-fraction",
        type=float,
        default=None,
        metavar="F",
        help="first grow the golden test set until it holds fraction F of the exported photos (e.g. 0.2); "
        "it never shrinks",
    )
    export.add_argument(
        "--seed", type=int, default=0, help="seed of the draw of new golden photos (default: 0)"
    )
    export.add_argument("--quiet", action="store_true", help="show no progress bar while photos are copied")


def run(args: argparse.Namespace) -> int:
    from inspection.commands._stores import StoreOpenError, open_stores
    from inspection.paths import default_photos
    from inspection.store.export import ExportError, check_out_dir, export_dataset
    from inspection.store.photos import open_photo_store

    out = args.out.expanduser()
    try:
        check_out_dir(out)  # before the store is opened or the golden set grows
        store, _ = open_stores(args.db or None, None)
    except (ExportError, StoreOpenError) as e:
        print(f"inspection dataset export: {e}", file=sys.stderr)
        return 2
    with store:
        try:
            photos = open_photo_store(args.photos or default_photos(), engine=store.engine)
            report = export_dataset(
                store,
                photos,
                out,
                golden_add=args.golden_add,
                golden_fraction=args.golden_fraction,
                seed=args.seed,
                progress=not args.quiet,
            )
        except ValueError as e:  # ExportError too: a bad --out, --golden-* or --photos
            print(f"inspection dataset export: {e}", file=sys.stderr)
            return 2
    warn_about(report)
    if not report.exported:
        print(
            f"inspection dataset export: nothing to export ({len(report.skipped)} labelled record(s) skipped); "
            f"{report.out} was left as it was",
            file=sys.stderr,
        )
        return 1
    counts = "; ".join(
        f"{split}: " + ", ".join(f"{name} {n}" for name, n in classes.items())
        for split, classes in report.counts.items()
        if classes
    )
    print(
        f"exported {report.exported} photo(s) to {report.out} ({counts}); golden set {report.golden_in_store} "
        f"(+{report.golden_added}), {len(report.skipped)} skipped, fingerprint {report.fingerprint[:16]}"
    )
    return 0


def warn_about(report: ExportReport) -> None:
    """On stderr: the records skipped and the labels that disagreed (the first few of each), defective photos
    without a kind, and golden photos relabelled since they were frozen."""
    for skip in report.skipped[:SHOWN]:
        print(f"skipped record {skip.inspection_id} ({skip.reason}): {skip.message}", file=sys.stderr)
    for d in report.disagreements[:SHOWN]:
        labels = ", ".join(f"record {rid}: {text}" for rid, text in d.labels)
        print(
            f"labels disagree on photo {d.sha256[:12]} ({labels}); kept the newest, {d.kept}", file=sys.stderr
        )
    hidden = max(0, len(report.skipped) - SHOWN) + max(0, len(report.disagreements) - SHOWN)
    if hidden:
        print(f"... and {hidden} more, listed in dataset.json", file=sys.stderr)
    if report.unkinded_defects:
        print(
            f"{report.unkinded_defects} defective photo(s) have no kind while others do: they are under "
            "def_unknown; label their kind to train it",
            file=sys.stderr,
        )
    if report.golden_relabelled:
        print(
            f"{len(report.golden_relabelled)} golden photo(s) were relabelled since they were frozen; "
            "test/ uses the newest label",
            file=sys.stderr,
        )
