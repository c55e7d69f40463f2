"""Defect accuracy of bundles under protocol and realistic camera noise, routed and without denoising.

Reads every photo under ``DATA/<class>/`` (``def*`` folders are defective), puts each under the three protocol
noise types and the four realistic kinds (seeded per photo and kind, as ``inspection evaluate`` draws the
realistic ones), and prints, per bundle, one JSON line: clean accuracy, and for each noise [no denoising, routed].
Used for the synthetic-v2 -> synthetic-v3 comparison in docs/results.md, on validation photos from
``inspection synth --out /tmp/val --n-train 0 --n-test 600 --seed 11``.

Usage: python docs/proofs/camera_noise.py /tmp/val/test models/bundles/synthetic-v2 models/bundles/synthetic-v3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from inspection import NOISE_TYPES
from inspection.noise import REALISTIC_KINDS, add_noise, add_realistic_noise, protocol_rng
from inspection.pipeline import InspectionPipeline

BATCH = 64


def accuracy(pipe: InspectionPipeline, photos: list[np.ndarray], labels: np.ndarray) -> float:
    p = np.concatenate([pipe.defect_probability(photos[i : i + BATCH]) for i in range(0, len(photos), BATCH)])
    return round(100 * float(((p >= pipe.threshold) == labels).mean()), 2)


def routed(pipe: InspectionPipeline, noisy: list[np.ndarray]) -> list[np.ndarray]:
    probs = np.concatenate([pipe.classify_noise(noisy[i : i + BATCH]) for i in range(0, len(noisy), BATCH)])
    return pipe.denoise(noisy, [d for _, d, _ in pipe.route(probs, noisy)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder of <class>/ photo folders")
    parser.add_argument("bundles", nargs="+", help="bundles or models roots to compare")
    a = parser.parse_args()
    files = sorted(f for f in a.data.glob("*/*") if f.is_file())
    labels = np.array([f.parent.name.startswith("def") for f in files])
    clean = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
    noises = {
        kind: (lambda im, j, k=k, kind=kind: add_noise(im, kind, rng=protocol_rng(0, j, k + 1)))
        for k, kind in enumerate(NOISE_TYPES[1:])
    }
    noises |= {
        kind: (lambda im, j, k=k, kind=kind: add_realistic_noise(im, kind, protocol_rng(0, j, 200 + k)))
        for k, kind in enumerate(REALISTIC_KINDS)
    }
    for bundle in a.bundles:
        pipe = InspectionPipeline.from_dir(bundle)
        result: dict[str, object] = {"clean": accuracy(pipe, clean, labels)}
        for name, noise in noises.items():
            noisy = [noise(im, j) for j, im in enumerate(clean)]
            result[name] = [accuracy(pipe, noisy, labels), accuracy(pipe, routed(pipe, noisy), labels)]
        print(bundle, json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
