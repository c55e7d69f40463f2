"""``inspection synth --out DIR``: write the procedural synthetic casting dataset, its ``dataset.json`` and,
with ``--masks``, its defect masks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inspection.commands._config import non_negative_int
from inspection.products import PRODUCTS

HELP = "Write synthetic impeller-like castings (with defects) in the train|test/<class>/ layout."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, help="dataset root to create (a new or empty folder)"
    )
    parser.add_argument(
        "--n-train",
        type=non_negative_int,
        default=1600,
        help="training photos to draw, about half defective (default: 1600)",
    )
    parser.add_argument(
        "--n-test",
        type=non_negative_int,
        default=400,
        help="test photos to draw, about half defective (default: 400)",
    )
    parser.add_argument(
        "--size", type=int, default=160, help="photo side in pixels, at least 32 (default: 160)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; seed 0 gives the same bytes every time (default: 0)"
    )
    parser.add_argument(
        "--kinds",
        default="",
        help="comma-separated defect kinds to draw from, e.g. blowhole,crack,scratch (default: the six standard "
        "kinds; scratch and inclusion are drawn only when named here)",
    )
    parser.add_argument(
        "--kind-folders",
        action="store_true",
        help="write defective photos to def_<kind>/ folders instead of one def_front/, so a model learns kinds",
    )
    parser.add_argument(
        "--defect-share",
        type=float,
        default=0.5,
        help="share of photos drawn defective; 1 with --kind-folders gives a kinds-only dataset (default: 0.5)",
    )
    parser.add_argument(
        "--products",
        nargs="+",
        choices=PRODUCTS,
        metavar="NAME",
        help="draw these products uniformly, file names carrying the product; textured products (turned, knurled, "
        "brushed, tile) are for training a product-independent noise model and measuring false 'periodic' calls "
        f"on clean textured parts; choices: {', '.join(PRODUCTS)} (default: castings only, the earlier output)",
    )

    parser.add_argument(
        "--masks",
        action="store_true",
        help="also write each defect's mask (255 where it was drawn) to masks/<split>/<class>/<name>.png, to check "
        "where a model looks (inspection explain); castings only; the photos stay the same bytes",
    )


def run(args: argparse.Namespace) -> int:
    from inspection.data import write_synthetic_dataset

    problem = _check(args)
    if problem:
        print(f"inspection synth: {problem}", file=sys.stderr)
        return 2
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    try:
        root = write_synthetic_dataset(
            args.out,
            n_train=args.n_train,
            n_test=args.n_test,
            size=args.size,
            seed=args.seed,
            kinds=kinds or None,
            kind_folders=args.kind_folders,
            defect_share=args.defect_share,
            products=args.products,
            masks=args.masks,
        )
    except ValueError as e:
        print(f"inspection synth: {e}", file=sys.stderr)
        return 2
    masks = " with defect masks under masks/" if args.masks else ""
    print(
        f"wrote {args.n_train} train and {args.n_test} test photos to {root}{masks} (described in dataset.json)"
    )
    return 0


def _check(args: argparse.Namespace) -> str | None:
    """What is wrong with the request, before anything is written: ``None`` when nothing is."""
    from inspection.imageio import MIN_SIDE

    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        return f"{args.out} is not a new or empty folder; name another (two runs' photos would mix in one dataset)"
    if args.size < MIN_SIDE:
        return (
            f"--size {args.size} is below the smallest photo the pipeline judges ({MIN_SIDE} pixels a side)"
        )
    if not 0 <= args.defect_share <= 1:
        return f"--defect-share must be between 0 and 1, got {args.defect_share}"
    return None
