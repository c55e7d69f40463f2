"""Train a defect model that sees only Gaussian noise: the best a Gaussian-route-specific defect model could do.

The shipped defect model learns every routed noise type at once; a model for the Gaussian route alone would only
ever see Gaussian photos. This script trains one with ``inspection train defect``'s own code and flags, except
that the noise augmentation draws Gaussian noise only (``augmentation_noises`` replaced for this run). Judged
afterwards with ``docs/proofs/gaussian_by_sigma.py`` and ``inspection demo --models``, it bounds what the route's
own model (a bundle-format change, not built) could gain (docs/results.md, "How far Gaussian noise can be judged").

Usage: python docs/proofs/gaussian_specialist.py ARGS...   (the arguments of ``inspection train defect``)
"""

from __future__ import annotations

import sys

import inspection.train
from inspection.cli import main

if __name__ == "__main__":
    inspection.train.augmentation_noises = lambda noise_types: ("gaussian",)
    sys.exit(main(["train", "defect", *sys.argv[1:]]))
