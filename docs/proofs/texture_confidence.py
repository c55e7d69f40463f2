"""How sure the noise model is when it takes clean texture for periodic interference, against real interference:
the false ``periodic`` rate on clean textured parts and the periodic recall, at several confidence floors
(a photo whose top probability is below the floor would take the safe path, ``PipelineConfig.min_confidence``).

Generated parts only (validation seed 31, neither a training seed nor the reported texture set's 2027).

Usage: python docs/proofs/texture_confidence.py [--bundle models/bundles/synthetic-v6] [--sizes 128 160]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from inspection import NOISE_TYPES
from inspection.bundle import load_bundle
from inspection.noise import apply_spec, protocol_rng, sample_spec
from inspection.pipeline import InspectionPipeline
from inspection.products import PRODUCTS, TEXTURED_PRODUCTS, synth_part

FLOORS = (0.0, 0.6, 0.7, 0.8, 0.9, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("models/bundles/synthetic-v6"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 160])
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args()
    pipe = InspectionPipeline.from_bundle(load_bundle(args.bundle))
    periodic = NOISE_TYPES.index("periodic")
    rng = np.random.default_rng(args.seed)
    for size in args.sizes:
        textures = [synth_part(rng, size, p) for p in TEXTURED_PRODUCTS for _ in range(100)]
        p_texture = pipe.classify_noise(textures)
        parts = [synth_part(rng, size, p) for p in PRODUCTS for _ in range(40)]
        noisy = [
            apply_spec(
                im, sample_spec("periodic", protocol_rng(args.seed, j, 3)), protocol_rng(args.seed, j, 103)
            )
            for j, im in enumerate(parts)
        ]
        p_periodic = pipe.classify_noise(noisy)
        wrong = p_texture.argmax(1) == periodic
        print(f"{size} px: p(periodic) of the {int(wrong.sum())} clean textured parts called periodic:")
        print("  " + " ".join(f"{v:.3f}" for v in np.sort(p_texture[wrong, periodic])))
        for floor in FLOORS:
            false = (wrong & (p_texture[:, periodic] >= floor)).mean()
            hits = ((p_periodic.argmax(1) == periodic) & (p_periodic[:, periodic] >= floor)).mean()
            print(
                f"  floor {floor:.2f}: textured parts called periodic {false:.2%}, periodic recall {hits:.2%}"
            )
    pipe.close()


if __name__ == "__main__":
    main()
