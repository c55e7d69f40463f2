"""How far a photo lies from what the defect model was trained on: an out-of-distribution (OOD) score.

A bundle may hold ``ood.safetensors``: statistics of the defect model's penultimate features, and of its input
(:func:`input_statistics`), over its training photos (:class:`OodModel`) and a threshold on their score. The threshold is the ``QUANTILE`` of the scores of
training-distribution photos held out of the fit, so about 1% of photos like the training data are flagged; a
photo beyond it is flagged ``ood``. ``ood_score`` is the score over the threshold: above 1 is out of range.

A flagged photo is still denoised and judged; under a policy with ``review_ood`` its verdict is ``review``
(reason ``ood``). :func:`station_warning` turns a station's share of flagged photos into the warning that
``score``, the service and the dashboard show.

Paper: Lee et al. 2018, "A Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial
Attacks" (arXiv 1807.03888): Mahalanobis distance on a classifier's features.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch loads only where features are taken: the store and the dashboard need none of it
    import torch
    from torch import nn

OOD_FILE = "ood.safetensors"
QUANTILE = 0.99
HOLDOUT = 0.2
PHOTOS_PER_DIRECTION = 80  # chosen on generated products as the out-of-range validation set (docs/results.md)
INPUT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
WARN_SHARE = 0.2  # a station with more flagged photos than this, among ...
WARN_MIN_PHOTOS = 20  # ... at least this many recent ones, is warned about
WARN_WINDOW = 200  # the recent photos a station's share is taken over


@contextmanager
def penultimate(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the input of the defect model's output layer (its features) on every forward pass inside."""
    from inspection.models.zoo import defect_head

    captured: list[torch.Tensor] = []
    _, head = defect_head(model)
    handle = head.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0].detach()))
    try:
        yield captured
    finally:
        handle.remove()


@dataclass(frozen=True)
class OodModel:
    """Feature statistics of the training photos and the score beyond which a photo is out of range.

    Features are centred on the training mean and split into the top ``k`` principal directions and what is
    left. The raw score is the mean squared whitened coordinate along those directions (the Mahalanobis
    distance in the subspace, over ``k``) plus the squared residual over its training mean: each about 1 for
    photos like the training ones, and the residual grows for features the training photos never had.
    """

    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,): each feature's standard deviation over the fitted photos
    components: np.ndarray  # (k, d), orthonormal rows
    variances: np.ndarray  # (k,)
    residual_scale: float  # mean squared residual over the fitted photos
    threshold: float  # on the raw score
    meta: dict[str, Any] = field(default_factory=dict)

    def raw_score(self, features: np.ndarray) -> np.ndarray:
        centred = (np.asarray(features, np.float64) - self.mean) / self.scale
        coords = centred @ self.components.T
        residual = centred - coords @ self.components
        whitened = (coords**2 / self.variances).mean(1)
        return whitened + (residual**2).sum(1) / self.residual_scale

    def score(self, features: np.ndarray) -> np.ndarray:
        """Raw score over the threshold: above 1 is out of distribution."""
        return self.raw_score(features) / self.threshold

    def save(self, path: str | Path) -> None:
        from safetensors.numpy import save_file

        tensors = {
            "mean": self.mean,
            "scale": self.scale,
            "components": self.components,
            "variances": self.variances,
        }
        header = {"residual_scale": self.residual_scale, "threshold": self.threshold, "meta": self.meta}
        save_file(
            {k: np.ascontiguousarray(v, np.float64) for k, v in tensors.items()},
            str(path),
            {"ood": json.dumps(header)},
        )

    @classmethod
    def load(cls, path: str | Path) -> OodModel:
        from safetensors import safe_open
        from safetensors.numpy import load_file

        with safe_open(str(path), framework="numpy") as f:
            header = json.loads((f.metadata() or {})["ood"])
        t = load_file(str(path))
        return cls(
            t["mean"],
            t["scale"],
            t["components"],
            t["variances"],
            float(header["residual_scale"]),
            float(header["threshold"]),
            header.get("meta", {}),
        )


def fit_ood(
    features: np.ndarray,
    *,
    seed: int = 0,
    holdout: float = HOLDOUT,
    quantile: float = QUANTILE,
    photos_per_direction: int = PHOTOS_PER_DIRECTION,
    groups: np.ndarray | None = None,
) -> OodModel:
    """Fit on ``1 - holdout`` of ``features``; the threshold is the ``quantile`` of the held-out raw scores.

    ``groups`` (one id per row) keeps the rows of one photo (clean and noised) on the same side of the split.

    ``k`` directions are kept, with at least ``photos_per_direction`` fitted photos each (so the variances are
    estimated well enough that held-out photos score like fitted ones), and at most the feature count less one.
    """
    features = np.asarray(features, np.float64)
    n, d = features.shape
    if n < 20:
        raise ValueError(f"an OOD model needs at least 20 training photos, got {n}")
    groups = np.arange(n) if groups is None else np.asarray(groups)
    ids = np.unique(groups)
    held_ids = np.random.default_rng(seed).permutation(ids)[: max(5, round(holdout * len(ids)))]
    is_held = np.isin(groups, held_ids)
    held, fit = features[is_held], features[~is_held]
    n_held = int(is_held.sum())
    mean, scale = fit.mean(0), fit.std(0) + 1e-6
    centred = (fit - mean) / scale
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    k = int(np.clip(len(fit) // photos_per_direction, 1, d - 1))
    variances = np.maximum(sing[:k] ** 2 / (len(fit) - 1), 1e-12)
    residual = centred - (centred @ vt[:k].T) @ vt[:k]
    residual_scale = float(max((residual**2).sum(1).mean(), 1e-12))
    model = OodModel(mean, scale, vt[:k], variances, residual_scale, 1.0)
    held_raw = model.raw_score(held)
    threshold = float(np.quantile(held_raw, quantile))
    meta = {
        "method": f"defect model penultimate features and input statistics, standardised: whitened distance in "
        f"the top {k} principal directions plus the residual",
        "n_fit": int(len(fit)),
        "n_held_out": int(n_held),
        "quantile": quantile,
        "directions": k,
        "dim": int(d),
        "held_out_flagged": float((held_raw > threshold).mean()),
        "fit_flagged": float((model.raw_score(fit) > threshold).mean()),
        "seed": seed,
    }
    return OodModel(mean, scale, vt[:k], variances, residual_scale, threshold, meta)


def station_warning(n_flagged: int, n_photos: int, card: dict[str, Any] | None = None) -> str | None:
    """The warning for a station whose recent photos are out of the models' range, or None.

    Example: "these models were trained on synthetic data only; 95% of this station's last 200 photos are out
    of their range".
    """
    if n_photos < WARN_MIN_PHOTOS or n_flagged <= WARN_SHARE * n_photos:
        return None
    trained_on = "synthetic data only" if (card or {}).get("synthetic_only") else "other photos"
    return (
        f"these models were trained on {trained_on}; {n_flagged / n_photos:.0%} of this station's last "
        f"{n_photos} photos are out of their range (out of distribution): check the camera and the product, "
        "and retrain on this station's photos before trusting the verdicts"
    )


def input_statistics(x: torch.Tensor) -> np.ndarray:
    """Per photo of a model input batch ``(n, 1, h, w)``: mean, spread, quantiles and edge strength.

    Exposure, contrast, framing and sharpening change these even where the classifier's own features are
    built to ignore them.
    """
    import torch

    flat = x[:, 0].reshape(len(x), -1).float()
    quantiles = torch.quantile(flat, torch.tensor(INPUT_QUANTILES, device=x.device), dim=1).T
    edges = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().float().mean((1, 2, 3))
    return (
        torch.cat([flat.mean(1, keepdim=True), flat.std(1, keepdim=True), quantiles, edges[:, None]], 1)
        .cpu()
        .numpy()
    )


def ood_features(penultimate_features: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """What the OOD check measures of one batch: the defect model's features, then its input's statistics."""
    return np.concatenate([penultimate_features.float().cpu().numpy(), input_statistics(x)], 1)


def features_of(model: nn.Module, batches: Sequence[torch.Tensor]) -> np.ndarray:
    """:func:`ood_features` for each input batch of the defect model, stacked ``(n, d)``."""
    import torch

    out = []
    with torch.inference_mode(), penultimate(model) as captured:
        for x in batches:
            model(x)
            out.append(ood_features(captured.pop(), x))
    return np.concatenate(out)


def fit_bundle_ood(
    bundle_dir: str | Path,
    roots: Sequence[str | Path],
    *,
    max_images: int = 0,
    seed: int = 0,
    review_ood: bool | None = None,
) -> OodModel:
    """Fit a bundle's OOD model on the ``train`` photos of ``roots`` (its defect model's training data).

    Each photo is seen as the pipeline shows it to the defect model, twice: clean, and under a random protocol
    noise type, classified and denoised by the bundle's own router. The model goes to
    ``<bundle>/ood.safetensors``, its summary to ``card.json["ood"]`` (and ``card.md``); ``review_ood``, when
    given, is set in the bundle's verdict policy. Fit it before the bundle is promoted: a bundle in service
    should not change.
    """
    from inspection import NOISE_TYPES
    from inspection.bundle import CARD_FILE, CARD_MARKDOWN, PIPELINE_FILE, load_bundle, render_card
    from inspection.data import list_split, read_photos
    from inspection.fileio import write_text_atomic
    from inspection.noise import add_noise
    from inspection.pipeline import InspectionPipeline

    bundle = load_bundle(bundle_dir)
    samples = [s for root in roots for s in list_split(root, "train")]
    rng = np.random.default_rng(seed)
    if max_images and len(samples) > max_images:
        samples = [samples[i] for i in np.sort(rng.permutation(len(samples))[:max_images])]
    photos, _, _ = read_photos(samples)
    pipe = InspectionPipeline.from_bundle(bundle, with_ood=False)
    feats = []
    for start in range(0, len(photos), 64):
        clean = photos[start : start + 64]
        noisy = [add_noise(p, str(rng.choice(NOISE_TYPES[1:])), rng=rng) for p in clean]
        for chunk in (clean, noisy):
            seen = pipe.denoise(chunk, [d for _, d, _ in pipe.route(pipe.classify_noise(chunk), chunk)])
            feats.append(features_of(pipe.defect_net, [pipe.transform(seen)]))
        feats[-2:] = [np.stack([feats[-2], feats[-1]], 1).reshape(-1, feats[-1].shape[1])]  # photo by photo
    pipe.close()
    model = fit_ood(np.concatenate(feats), seed=seed)
    model = replace(
        model,
        meta={**model.meta, "data": [str(Path(r).resolve()) for r in roots]},
    )
    model.save(bundle.path / OOD_FILE)
    card = {**bundle.card, "ood": model.meta}
    write_text_atomic(bundle.path / CARD_FILE, json.dumps(card, indent=2) + "\n")
    write_text_atomic(bundle.path / CARD_MARKDOWN, render_card(card))
    if review_ood is not None:
        spec = json.loads((bundle.path / PIPELINE_FILE).read_text())
        spec["policy"]["review_ood"] = bool(review_ood)
        write_text_atomic(bundle.path / PIPELINE_FILE, json.dumps(spec, indent=2) + "\n")
    return model
