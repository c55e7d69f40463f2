"""The defect model's judgement as a loss for the denoiser: task-driven denoising (``--task-model``).

An autoencoder trained on pixel error alone is rewarded for flat output, and a one-pixel crack is a few dozen
pixels of a photo, so it is smoothed away with the noise (docs/results.md, "Where the Gaussian gap is"). Weighting
the pixel error by edges or by the drawn defect kept more of each defect, but noise with it, which the defect
model then took for defects. Here the denoiser's loss adds the frozen defect model's cross-entropy on the
denoised whole photo, so it is paid for keeping what tells a defective part from a good one, and for leaving
nothing that looks like a defect on a good one (what that bought on generated castings: docs/results.md, "The
defect model's judgement as the denoiser's loss").

Paper: Liu et al. 2018, "When Image Denoising Meets High-Level Vision Tasks" (arXiv 1706.04284).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from inspection.models import Checkpoint
from inspection.transforms import DefectTransform, area_weights


def resize_tensor(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``x`` ``(n, c, h, w)`` resized: by area when shrinking, as OpenCV's ``INTER_AREA`` does; bilinearly when
    enlarging (an approximation there: OpenCV then differs by method)."""
    h, w = x.shape[-2:]
    if height > h or width > w:
        return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    rows, cols = area_weights(h, height).to(x.device), area_weights(w, width).to(x.device)
    return rows @ x @ cols.T


def fit_tensor(transform: DefectTransform, x: torch.Tensor) -> torch.Tensor:
    """:class:`DefectTransform`'s input for ``x``, photos ``(n, 1, h, w)`` on the 0..1 scale, differentiably.

    The same resize and pad as the pipeline's, without its rounding to whole gray levels after resizing, when the
    photo is shrunk on both sides; enlarged on either side, both sides are interpolated bilinearly instead.
    """
    s, (h, w) = transform.size, x.shape[-2:]
    if (h, w) != (s, s):
        if transform.resize == "stretch" or h == w:
            scale_h, scale_w = s / h, s / w
        else:
            scale_h = scale_w = (max if transform.resize == "crop" else min)(s / h, s / w)
        nh, nw = max(1, round(h * scale_h)), max(1, round(w * scale_w))
        x = resize_tensor(x, nh, nw)
        top, left = (nh - s) // 2, (nw - s) // 2
        if nh >= s and nw >= s:
            x = x[..., top : top + s, left : left + s]
        else:
            top, left = (s - nh) // 2, (s - nw) // 2
            x = F.pad(x, (left, s - nw - left, top, s - nh - top), mode="replicate")
    return (x - transform.mean) / transform.std


class TaskLoss:
    """The defect model's training loss, frozen, on denoised photos: weighted binary cross-entropy of its logit.

    The saved model's output 0 has the ``log(pos_weight)`` shift of its class weighting taken out, and its
    calibrated logit is that over the temperature; as in a fine-tune of it (``logit_adjustment`` in
    :mod:`inspection.train`), the shift is added back inside the loss, so the loss is least where the denoised
    photo gets the probability the defect model would give it, not one pulled towards "defective". ``pos_weight``
    (good over defective training photos) makes the defective photos weigh as much as the good ones.
    """

    def __init__(self, checkpoint: Checkpoint, pos_weight: float, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = checkpoint.model.eval().to(self.device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.meta, self.path = checkpoint.meta, checkpoint.path.resolve()
        self.transform = DefectTransform.from_meta(checkpoint.meta)
        self.temperature = float(checkpoint.meta.get("calibration", {}).get("temperature", 1.0))
        self.pos_weight = float(pos_weight)

    def logits(self, denoised: torch.Tensor) -> torch.Tensor:
        """The calibrated defect logit of each denoised photo ``(n, 1, h, w)``, 0..1, on :attr:`device`."""
        return self.model(fit_tensor(self.transform, denoised))[:, 0] / self.temperature

    def loss_of_logits(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The weighted cross-entropy of calibrated ``logits`` against ``labels`` (1 = defective)."""
        weight = torch.tensor(self.pos_weight, dtype=logits.dtype, device=logits.device)
        return F.binary_cross_entropy_with_logits(
            logits + math.log(self.pos_weight), labels, pos_weight=weight
        )

    def __call__(self, denoised: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_of_logits(self.logits(denoised), labels)

    def provenance(self) -> dict[str, Any]:
        """What ``meta["task_model"]`` records: which defect model the denoiser learned to serve."""
        return {
            "version": self.meta.get("version"),
            "architecture": self.meta["architecture"],
            "weights_sha256": self.meta["weights_sha256"],
            "path": str(self.path),
            "pos_weight": self.pos_weight,
        }
