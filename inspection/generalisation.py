"""Does the noise router hold off its training data? Products it never saw, real texture, calibration.

``inspection router-check`` measures a bundle's noise classifier the way a plant meets it on day one:

- **An unseen product** (``--data``, e.g. the real casting photos for a model trained without them): every
  photo of the split under each protocol noise type (``inspection.noise.sample_spec``, seeded per photo and
  type, as ``inspection evaluate`` draws them). Accuracy, recall per type, and the top-label expected
  calibration error (ECE) of the noise probabilities the pipeline uses.
- **Camera shift** (``--camera-shift``): the same photos re-framed by :func:`inspection.camera.camera_shift`
  (part smaller in the frame, brighter exposure, uneven light, sharpening): the defect accuracy against the
  unshifted photos', and the share flagged out of distribution (``ood``).
- **Real texture is not noise**: clean generated parts with periodic texture (``inspection.products``),
  none of them noised. The share called ``periodic`` (and so sent through the notch filter) should be ~0.

The numbers go to the ``generalisation`` section of a results file (``--results docs/results.json``), merged
so the file's other sections stay as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inspection import NOISE_TYPES
from inspection.camera import camera_shift
from inspection.data import list_split, read_photos
from inspection.metrics import top_label_ece
from inspection.noise import apply_spec, protocol_rng, sample_spec
from inspection.results import InspectionResult

if TYPE_CHECKING:
    from inspection.pipeline import InspectionPipeline

log = logging.getLogger(__name__)
Classify = Callable[[Sequence[np.ndarray]], np.ndarray]  # photos -> (n, len(NOISE_TYPES)) probabilities
TEXTURE_SEED = 2027  # not a seed any shipped model trained on


@dataclass(frozen=True)
class NoiseScores:
    """A noise classifier on one set of photos, each under each noise type."""

    n_photos: int
    accuracy: float
    recall: dict[str, float]
    ece: float
    clean_called: dict[str, float]  # what clean photos were taken for, share per type

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_photos": self.n_photos,
            "accuracy": self.accuracy,
            "recall": self.recall,
            "ece": self.ece,
            "clean_called": self.clean_called,
        }


def protocol_scores(
    classify: Classify, photos: Sequence[np.ndarray], seed: int = 0, batch: int = 64
) -> NoiseScores:
    """Each photo under each of ``NOISE_TYPES`` (protocol levels, seeded per photo and type), classified."""
    probs, truth = [], []
    for start in range(0, len(photos), batch):
        chunk = photos[start : start + batch]
        for k, kind in enumerate(NOISE_TYPES):
            noisy = [
                apply_spec(
                    im,
                    sample_spec(kind, protocol_rng(seed, start + j, k)),
                    protocol_rng(seed, start + j, 100 + k),
                )
                for j, im in enumerate(chunk)
            ]
            probs.append(classify(noisy))
            truth.extend([k] * len(noisy))
    p, y = np.concatenate(probs), np.array(truth)
    pred = p.argmax(1)
    clean = pred[y == 0]
    return NoiseScores(
        n_photos=len(photos),
        accuracy=float((pred == y).mean()),
        recall={t: float((pred[y == k] == k).mean()) for k, t in enumerate(NOISE_TYPES)},
        ece=top_label_ece(p, y),
        clean_called={t: float((clean == k).mean()) for k, t in enumerate(NOISE_TYPES)},
    )


def texture_false_periodic(
    classify: Classify, per_product: int, size: int = 160, seed: int = TEXTURE_SEED
) -> dict[str, Any]:
    """Clean textured parts, generated: the share of each product called ``periodic``, and over all."""
    from inspection.products import TEXTURED_PRODUCTS, synth_part

    rng = np.random.default_rng(seed)
    periodic = NOISE_TYPES.index("periodic")
    per: dict[str, float] = {}
    for product in TEXTURED_PRODUCTS:
        photos = [synth_part(rng, size, product) for _ in range(per_product)]
        per[product] = float((classify(photos).argmax(1) == periodic).mean())
    return {
        "rate": float(np.mean(list(per.values()))),
        "per_product": per,
        "per_product_n": per_product,
        "size": size,
    }


def read_split(root: str | Path, split: str, max_images: int = 0) -> list[np.ndarray]:
    """The photos of ``root/split`` (every class), at most ``max_images`` taken evenly (0 = all)."""
    return read_labelled_split(root, split, max_images)[0]


def read_labelled_split(
    root: str | Path, split: str, max_images: int = 0
) -> tuple[list[np.ndarray], np.ndarray]:
    """:func:`read_split` and each photo's label (1 defective, 0 ok)."""
    samples = list_split(root, split)
    if max_images and len(samples) > max_images:
        samples = [samples[i] for i in np.linspace(0, len(samples) - 1, max_images).round().astype(int)]
    photos, kept, rejected = read_photos(samples)
    if rejected:
        log.warning("%d photos of %s/%s could not be read and are left out", len(rejected), root, split)
    return photos, np.array([s.label for s in kept], int)


def camera_shift_scores(
    pipe: InspectionPipeline, photos: Sequence[np.ndarray], labels: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """Defect accuracy and the share flagged ``ood``, on the photos as they are and camera-shifted.

    Accuracy is the defect model's decision (P(defective) at the threshold, whatever the review policy says),
    through the whole pipeline (noise routing included); a photo the pipeline refuses counts as a miss.
    """
    shifted = [camera_shift(p, protocol_rng(seed, i, 200)) for i, p in enumerate(photos)]
    out: dict[str, Any] = {"n_photos": len(photos), "seed": seed}
    for name, batch in (("unshifted", photos), ("shifted", shifted)):
        results = [r for i in range(0, len(batch), 64) for r in pipe.inspect_batch(batch[i : i + 64])]
        judged = [r if isinstance(r, InspectionResult) else None for r in results]
        right = [
            r is not None and (r.defect_probability >= r.threshold) == bool(y)
            for r, y in zip(judged, labels, strict=True)
        ]
        ood = [r.ood for r in judged if r is not None]
        out[name] = {
            "accuracy": float(np.mean(right)),
            "ood_rate": float(np.mean(ood)) if ood else 0.0,
            "refused": sum(r is None for r in judged),
            "review": float(np.mean([r is not None and r.verdict == "review" for r in judged])),
        }
    return out
