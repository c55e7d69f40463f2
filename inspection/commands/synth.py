"""``inspection synth --out DIR``: write the procedural synthetic casting dataset, its ``dataset.json`` and,
with ``--masks``, its defect masks."""

from __future__ import annotations

import argparse
from pathlib import Path

from inspection.products import PRODUCTS

HELP = "Write synthetic impeller-like castings (with defects) in the train|test/<class>/ layout."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset root to create")
    parser.add_argument(
        "--n-train",
        type=int,
        default=1600,
        help="training photos to draw, about half defective (default: 1600)",
    )
    parser.add_argument(
        "--n-test", type=int, default=400, help="test photos to draw, about half defective (default: 400)"
    )
    parser.add_argument("--size", type=int, default=160, help="photo side in pixels (default: 160)")
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
        raise SystemExit(f"inspection synth: {e}") from e
    masks = " with defect masks under masks/" if args.masks else ""
    print(
        f"wrote {args.n_train} train and {args.n_test} test photos to {root}{masks} (described in dataset.json)"
    )
    return 0
