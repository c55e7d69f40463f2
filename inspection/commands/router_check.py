"""``inspection router-check``: the noise router on a product it never saw, on real texture, and its calibration."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from inspection.pipeline import InspectionPipeline

HELP = (
    "Measure a bundle's noise router off its training data: protocol noise on an unseen product's photos "
    "(accuracy, clean recall, calibration) and clean textured parts taken for periodic interference."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models", default="", help="bundle or models root to check (default: the shipped models)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="dataset root of a product the noise model never trained on (e.g. the real casting photos); "
        "without it only the texture check runs",
    )
    parser.add_argument("--split", default="test", help="which split of --data to use (default: test)")
    parser.add_argument(
        "--max-images",
        type=int,
        default=0,
        help="use at most this many photos of --data, taken evenly (0 = all)",
    )
    parser.add_argument(
        "--texture-n",
        type=int,
        default=200,
        help="clean generated parts per textured product for the false-periodic rate (0 = skip; default: 200)",
    )
    parser.add_argument(
        "--texture-sizes",
        type=int,
        nargs="+",
        default=[160],
        metavar="PX",
        help="sides of the clean textured parts; the first gives texture_false_periodic, every one is reported "
        "under texture_by_size (the rate depends on the size: small parts are the hard case) (default: 160)",
    )
    parser.add_argument(
        "--camera-shift",
        action="store_true",
        help="also judge --data's photos camera-shifted (re-framed, brighter, uneven light, sharpened): defect "
        "accuracy and the share flagged out of distribution, against the photos as they are",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the protocol noise draws (default: 0)")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    parser.add_argument(
        "--results",
        type=Path,
        help="merge the numbers into this results file's 'generalisation' section (e.g. docs/results.json); "
        "its other sections are kept",
    )


def run(args: argparse.Namespace) -> int:
    from inspection.bundle import load_bundle
    from inspection.evaluate import git_commit
    from inspection.generalisation import read_labelled_split
    from inspection.pipeline import InspectionPipeline
    from inspection.summary import merge_sections

    if not args.data and (args.camera_shift or not args.texture_n):
        print(
            "inspection router-check: nothing to check: give --data DIR (an unseen product; --camera-shift needs "
            "it too) or --texture-n above 0",
            file=sys.stderr,
        )
        return 2
    bundle = load_bundle(args.models or None)
    pipe = InspectionPipeline.from_bundle(bundle)
    out: dict = {
        "commit": git_commit(),
        "bundle": bundle.version,
        "noise_model": pipe.model_versions["noise"],
    }
    if args.data:
        photos, labels = read_labelled_split(args.data, args.split, args.max_images)
        out.update(unseen_product(pipe, photos, args))
        if args.camera_shift:
            out.update(camera_shift(pipe, photos, labels, args.seed))
    if args.texture_n:
        out.update(texture(pipe, args.texture_n, args.texture_sizes))
    pipe.close()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    if args.results:
        merge_sections(args.results, {"generalisation": out})
    return 0


def unseen_product(
    pipe: InspectionPipeline, photos: list[np.ndarray], args: argparse.Namespace
) -> dict[str, Any]:
    """Protocol noise on ``photos``: the noise model's accuracy, recall, calibration and clean photos' calls."""
    from inspection.generalisation import protocol_scores

    scores = protocol_scores(pipe.classify_noise, photos, args.seed)
    print(
        f"{args.data} ({args.split}, {scores.n_photos} photos x {len(scores.recall)} noise types): accuracy "
        f"{scores.accuracy:.2%}, ECE {scores.ece:.3f}; recall "
        + ", ".join(f"{t} {r:.2%}" for t, r in scores.recall.items())
        + "; clean photos called "
        + ", ".join(f"{t} {r:.1%}" for t, r in scores.clean_called.items() if r)
    )
    return {
        "unseen_product": {
            "data": str(args.data),
            "split": args.split,
            "seed": args.seed,
            **scores.as_dict(),
        },
        "unseen_product_noise_accuracy": scores.accuracy,
        "unseen_product_clean_recall": scores.recall["clean"],
        "noise_ece": scores.ece,
    }


def camera_shift(
    pipe: InspectionPipeline, photos: list[np.ndarray], labels: Any, seed: int
) -> dict[str, Any]:
    """Defect accuracy and the out-of-distribution rate on ``photos`` as they are and camera-shifted."""
    from inspection.generalisation import camera_shift_scores

    shift = camera_shift_scores(pipe, photos, labels, seed)
    before, after = shift["unshifted"], shift["shifted"]
    print(
        f"camera shift: defect accuracy {before['accuracy']:.2%} -> {after['accuracy']:.2%}; flagged out of "
        f"distribution {before['ood_rate']:.1%} -> {after['ood_rate']:.1%}"
    )
    return {"camera_shift": shift}


def texture(pipe: InspectionPipeline, per_product: int, sizes: list[int]) -> dict[str, Any]:
    """Clean generated textured parts called periodic, at each size (the first gives the headline rate)."""
    from inspection.generalisation import texture_false_periodic

    by_size = {size: texture_false_periodic(pipe.classify_noise, per_product, size) for size in sizes}
    for size, t in by_size.items():
        print(
            f"clean textured parts called periodic at {size} px: {t['rate']:.2%} ("
            + ", ".join(f"{p} {r:.1%}" for p, r in t["per_product"].items())
            + f"; {per_product} each)"
        )
    first = by_size[sizes[0]]
    out: dict[str, Any] = {"texture": first, "texture_false_periodic": first["rate"]}
    if len(by_size) > 1:
        out["texture_by_size"] = {str(size): t["rate"] for size, t in by_size.items()}
    return out
