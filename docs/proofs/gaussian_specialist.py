"""Train a defect model that sees only Gaussian noise: what a defect model for the Gaussian route alone gains.

The shipped defect model learns every routed noise type at once; a model for the Gaussian route alone would only
ever see Gaussian photos. This script trains one with ``inspection train defect``'s own code and flags, except
that the noise augmentation draws Gaussian noise only (``augmentation_noises`` replaced for this run). Judged
afterwards with ``docs/proofs/gaussian_by_sigma.py`` and ``inspection demo --models``, it measures what the route's
own model (a bundle-format change, not built) could gain (docs/results.md, "How far Gaussian noise can be judged").
The checkpoint's meta.json does not know of the replacement: its ``noise_types`` is the flag's, so keep such a
model out of bundles that go live. ``--noise-types`` is refused, as the replacement ignores it.

Usage: python docs/proofs/gaussian_specialist.py ARGS...   (the arguments of ``inspection train defect``)
"""

from __future__ import annotations

import sys

import inspection.train
from inspection.cli import main

if __name__ == "__main__":
    if any(a.startswith("--noise-types") for a in sys.argv[1:]):
        sys.exit(
            "gaussian_specialist.py: --noise-types is not used here (the augmentation draws Gaussian noise only)"
        )
    inspection.train.augmentation_noises = lambda noise_types: ("gaussian",)
    sys.exit(main(["train", "defect", *sys.argv[1:]]))
