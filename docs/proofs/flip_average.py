"""Defect accuracy at fixed Gaussian noise levels, one view against the mean logit over flips and turns.

Each photo of ``DATA/test`` is noised once at each sigma (seeded by the sigma), routed as the bundle routes a
Gaussian photo (``Router.gated``: kept as it is below ``min_denoise_sigma``, else its route's denoiser; the
true sigma stands in for the estimate), and judged by the bundle's defect model on the photo alone, on the
mean calibrated logit over 4 flips, and over 8 views (the flips and the quarter turns), at the bundle's
threshold. A trial of test-time augmentation (docs/results.md, "A bigger defect model, and test-time flips").

Usage: python docs/proofs/flip_average.py MODELS_ROOT_OR_BUNDLE DATA
"""

import sys
from pathlib import Path

import cv2
import numpy as np

from inspection.pipeline import InspectionPipeline

VIEWS = (
    lambda g: g,
    lambda g: g[:, ::-1],
    lambda g: g[::-1, :],
    lambda g: g[::-1, ::-1],
    lambda g: g.T,
    lambda g: g.T[:, ::-1],
    lambda g: g.T[::-1, :],
    lambda g: g.T[::-1, ::-1],
)


def main(models: str, data: str) -> None:
    pipe = InspectionPipeline.from_dir(models)
    files = sorted(Path(data, "test").rglob("*.png"))
    labels = np.array([0 if f.parent.name.startswith("ok") else 1 for f in files])
    clean = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
    route = pipe.router.denoiser_for("gaussian")
    cut = np.log(pipe.threshold / (1 - pipe.threshold))  # P(defective) >= threshold, as a logit

    def logits(photos: list[np.ndarray]) -> np.ndarray:
        return pipe.defect_runner(pipe.transform(photos).numpy())[0][:, 0] / pipe.temperature

    def accuracy(z: np.ndarray) -> float:
        return float(np.mean((z >= cut) == labels))

    for sigma in (0, 10, 20, 30, 40, 50):
        rng = np.random.default_rng(sigma)
        noisy = [np.clip(np.rint(c + rng.normal(0, sigma, c.shape)), 0, 255).astype(np.uint8) for c in clean]
        denoiser = pipe.router.gated(route, sigma)
        photos = pipe.denoise(noisy, [denoiser] * len(noisy))
        z = np.stack([logits([np.ascontiguousarray(view(p)) for p in photos]) for view in VIEWS])
        print(
            f"sigma {sigma:>2} ({denoiser.name}): one view {accuracy(z[0]):.3f}"
            f"  4 flips {accuracy(z[:4].mean(0)):.3f}  8 views {accuracy(z.mean(0)):.3f}"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
