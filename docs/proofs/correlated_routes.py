"""Spatially correlated noise judged after each of the pipeline's denoisers and a few smoothing filters.

Every photo under ``DATA/<class>/`` (``def*`` folders are defective) gets the realistic ``correlated`` noise, drawn
as ``inspection evaluate`` draws it (seeded per photo), and the bundle's defect model judges it after each
denoiser a route can name (the bundle's: ``identity`` is the photo as it is), after a Gaussian blur and after
OpenCV's non-local means at fixed strengths. Shows why correlated noise is left undenoised (docs/results.md,
"Correlated noise").

Usage: python docs/proofs/correlated_routes.py BUNDLE DATA
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from inspection.noise import REALISTIC_KINDS, add_realistic_noise, protocol_rng
from inspection.pipeline import InspectionPipeline

BATCH = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="a bundle or models root")
    parser.add_argument("data", type=Path, help="folder of <class>/ photo folders")
    a = parser.parse_args()
    pipe = InspectionPipeline.from_dir(a.bundle)
    files = sorted(f for f in a.data.glob("*/*") if f.is_file())
    labels = np.array([f.parent.name.startswith("def") for f in files])
    clean = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
    stream = 200 + REALISTIC_KINDS.index("correlated")  # as inspection.evaluate draws the realistic kinds
    noisy = [add_realistic_noise(im, "correlated", protocol_rng(0, j, stream)) for j, im in enumerate(clean)]

    def accuracy(photos: list[np.ndarray]) -> str:
        p = np.concatenate(
            [pipe.defect_probability(photos[i : i + BATCH]) for i in range(0, len(photos), BATCH)]
        )
        return f"{100 * float(((p >= pipe.threshold) == labels).mean()):.2f}%"

    routes: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        **pipe.router.denoisers,
        **{
            f"gaussian blur {s:g} px": (lambda n, s=s: cv2.GaussianBlur(n, (0, 0), s))
            for s in (1.0, 1.5, 2.0)
        },
        **{
            f"non-local means h={h}": (lambda n, h=h: cv2.fastNlMeansDenoising(n, None, h=h))
            for h in (10, 15, 20)
        },
    }
    print(f"{len(files)} photos; clean: {accuracy(clean)}")
    for name, denoise in routes.items():
        print(f"correlated noise, {name}: {accuracy([denoise(n) for n in noisy])}")


if __name__ == "__main__":
    main()
