"""Validation of a noise-model checkpoint on generated parts only (never the casting photos): the share of clean
textured parts called ``periodic`` at several sizes, and protocol accuracy on each product at 160 and 300 px.

Used to choose the synthetic-v4 noise model over v2/v3's (docs/results.md, "The router off its training data").
The checkpoint is put into a copy of a bundle (``--bundle``, the shipped one by default), since the pipeline's
calibrated noise probabilities are what the router uses. Seed 31 is neither a training seed (0, 1, 2) nor the
reported texture set's (2027).

Usage: python docs/proofs/noise_model_validation.py CHECKPOINT [--bundle BUNDLE] [--seed 31]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from inspection.bundle import load_bundle
from inspection.generalisation import protocol_scores, texture_false_periodic
from inspection.pipeline import InspectionPipeline
from inspection.products import PRODUCTS, synth_part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a noise checkpoint folder (meta.json + weights)")
    parser.add_argument("--bundle", type=Path, default=Path("models/bundles/synthetic-v4"))
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        shutil.copytree(args.bundle, bundle)
        shutil.rmtree(bundle / "noise")
        shutil.copytree(args.checkpoint, bundle / "noise")
        pipe = InspectionPipeline.from_bundle(load_bundle(bundle))
        out: dict[str, float] = {}
        for size in (128, 160, 224, 320):
            out[f"texture_periodic_{size}"] = texture_false_periodic(
                pipe.classify_noise, 100, size, args.seed
            )["rate"]
        rng = np.random.default_rng(args.seed)
        for product in PRODUCTS:
            for size in (160, 300):
                photos = [synth_part(rng, size, product) for _ in range(60)]
                scores = protocol_scores(pipe.classify_noise, photos, seed=args.seed)
                out[f"{product}_{size}_accuracy"] = scores.accuracy
                out[f"{product}_{size}_clean_recall"] = scores.recall["clean"]
        pipe.close()
    print(json.dumps({k: round(v, 4) for k, v in out.items()}, indent=1))


if __name__ == "__main__":
    main()
