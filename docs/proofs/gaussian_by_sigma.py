"""Defect accuracy at fixed Gaussian noise levels, the autoencoder's output against the photo as it is.

Each photo of ``DATA/test`` is noised once at each sigma (seeded by the sigma) and judged by the bundle's
defect model twice: after the bundle's autoencoder, and undenoised. Used to place the Gaussian route's
``min_denoise_sigma`` gate (docs/results.md, "Weak Gaussian noise is left in").

Usage: python docs/proofs/gaussian_by_sigma.py MODELS_ROOT_OR_BUNDLE DATA [NLM_H ...]

With defect kinds in folders (``inspection synth --kind-folders``) it also prints the share right in each folder.

Each ``NLM_H`` (say 0.9) also judges the photos after OpenCV's non-local means with ``h = NLM_H * sigma`` in the
autoencoder's place, with its time per photo (docs/results.md, "Keeping the cracks").
"""

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from inspection.pipeline import InspectionPipeline


def main(models: str, data: str, *nlm_h: str) -> None:
    pipe = InspectionPipeline.from_dir(models)
    files = sorted(Path(data, "test").rglob("*.png"))
    labels = np.array([0 if f.parent.name.startswith("ok") else 1 for f in files])
    folders = np.array([f.parent.name for f in files])
    clean = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
    autoencoder = pipe.router.denoisers["autoencoder"]

    def report(name: str, photos: list[np.ndarray]) -> None:
        pred = (pipe.defect_probability(photos) >= pipe.threshold).astype(int)
        sens, spec = np.mean(pred[labels == 1] == 1), np.mean(pred[labels == 0] == 0)
        by_folder = "".join(
            f"  {d} {np.mean(pred[folders == d] == labels[folders == d]):.3f}" for d in sorted(set(folders))
        )
        print(
            f"{name:<28} accuracy {np.mean(pred == labels):.3f}  sensitivity {sens:.3f}  specificity {spec:.3f}"
            + (by_folder if len(set(folders)) > 2 else "")
        )

    report("clean", clean)
    for sigma in (10, 20, 30, 40, 50):
        rng = np.random.default_rng(sigma)
        noisy = [np.clip(np.rint(c + rng.normal(0, sigma, c.shape)), 0, 255).astype(np.uint8) for c in clean]
        report(f"sigma {sigma}, autoencoder", pipe.denoise(noisy, [autoencoder] * len(noisy)))
        report(f"sigma {sigma}, as it is", noisy)
        for h in map(float, nlm_h):
            t = time.perf_counter()
            means = [
                cv2.fastNlMeansDenoising(n, None, h=h * sigma, templateWindowSize=7, searchWindowSize=21)
                for n in noisy
            ]
            ms = (time.perf_counter() - t) * 1000 / len(noisy)
            report(f"sigma {sigma}, NLM h={h:g}s {ms:.0f} ms", means)


if __name__ == "__main__":
    main(*sys.argv[1:])
