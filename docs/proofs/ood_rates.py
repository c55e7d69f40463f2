"""How often a bundle's out-of-distribution check fires, on photos like its training ones and on others.

Generated synthetic castings (seed 5, none of them training photos), clean and under each protocol noise
type; the same castings drawn at 300 px; 300 real casting test photos (where ../shared is at hand); and 100
clean parts of each textured product. Prints, per set: the share flagged ``ood``, the median ``ood_score``,
and how many photos were judged of how many given (the rest were refused, e.g. ``not_a_part``).

Usage: python docs/proofs/ood_rates.py [--models ROOT_OR_BUNDLE] [--casting ../shared/data/casting]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from inspection.data import synth_casting
from inspection.generalisation import read_split
from inspection.noise import add_noise
from inspection.pipeline import InspectionPipeline
from inspection.products import TEXTURED_PRODUCTS, synth_part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="bundle or models root (default: the shipped models)")
    parser.add_argument(
        "--casting", type=Path, default=Path("../shared/data/casting"), help="casting dataset root"
    )
    args = parser.parse_args()
    pipe = InspectionPipeline.from_dir(args.models or None)

    def rate(name: str, photos: list[np.ndarray]) -> None:
        results = [r for i in range(0, len(photos), 64) for r in pipe.inspect_batch(photos[i : i + 64])]
        judged = [r for r in results if hasattr(r, "ood")]
        flagged = np.mean([r.ood for r in judged])
        median = np.median([r.ood_score for r in judged])
        print(
            f"{name:28s} flagged {flagged:6.1%}  median score {median:5.2f}  judged {len(judged)}/{len(photos)}"
        )

    rng = np.random.default_rng(5)
    castings = [synth_casting(rng, 160, None if rng.random() < 0.5 else "crack") for _ in range(300)]
    rate("synthetic castings, clean", castings)
    for kind in ("gaussian", "salt_pepper", "periodic"):
        rate(f"synthetic castings, {kind}", [add_noise(p, kind, rng=rng) for p in castings])
    rate("synthetic castings, 300 px", [synth_casting(rng, 300) for _ in range(100)])
    if args.casting.is_dir():
        rate("real casting test photos", read_split(args.casting, "test", 300))
    for product in TEXTURED_PRODUCTS:
        rate(f"{product} parts, clean", [synth_part(rng, 160, product) for _ in range(100)])
    pipe.close()


if __name__ == "__main__":
    main()
