"""Where the defect model looks: heat maps, and the pointing game that checks them where the truth is known.

**Heat map.** LayerCAM on a conv block of the defect model, taken with plain torch hooks: the gradient of the
defect logit (output 0, before calibration) with respect to the block's feature maps, kept where positive, weighs
each feature map *at each position*; their sum, rectified, is the heat map. It is taken on the photo the model
judged (the routed, denoised photo), upsampled to the model's input and mapped back through the defect model's own
preprocessing (pad, crop or stretch) to the photo's pixels, scaled to 0..1. It runs on the checkpoint's model
(not the folded inference copy).

**Which block.** The last conv block whose output keeps at least 1/8 of the input's side (``MAX_STRIDE``): 16 x 16
for ``defect_cnn_small``'s 128 px input. The very last block (8 x 8, each cell 20 px of a 160 px photo) points
at the defect far less often: on the shipped model, Grad-CAM there scored about 27% in the pointing game and
LayerCAM about 29%, against about 96% for LayerCAM one block earlier (``docs/results.json``, ``explain``).
``method="gradcam"`` with ``block=last_conv_block(model)`` gives the classic Grad-CAM for comparison.

Paper: LayerCAM: Exploring Hierarchical Class Activation Maps for Localization (Jiang et al., 2021).

**Pointing game.** On generated photos whose defect masks are known (``inspection synth --masks``), a correctly
flagged defective photo is a *hit* when the heat map's maximum lies inside its drawn defect mask dilated by
``DILATION_PX`` pixels. The hit rate over those photos is what ``inspection explain`` reports. Photos whose mask
is empty (a pinhole smaller than a pixel draws nothing) are counted apart, not as misses.

Paper: Top-down Neural Attention by Excitation Backprop (Zhang et al., 2016), the pointing game.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch
from torch import nn

from inspection.transforms import DefectTransform

DILATION_PX = 8  # the pointing game's tolerance: a maximum within 8 px of the drawn defect is a hit
# The heat map's block keeps at least 1/MAX_STRIDE of the input's side; coarser maps missed the defect (docstring).
MAX_STRIDE = 8
METHODS = ("layercam", "gradcam")
# Hooks sit on a shared model (the dashboard's cached pipeline): one heat map at a time, or a hook would catch
# another thread's forward pass.
_HOOK_LOCK = threading.Lock()
log = logging.getLogger(__name__)


class HeatMap(NamedTuple):
    """One photo's heat map.

    Attributes:
        heat: float32 ``(h, w)`` in 0..1, the photo's size; all zeros when nothing raised the defect logit.
        peak: ``(row, col)`` of the heat map's maximum in the photo.
        p_defective: the calibrated P(defective) of the same forward pass.
    """

    heat: np.ndarray
    peak: tuple[int, int]
    p_defective: float


def last_conv_block(model: nn.Module) -> nn.Module:
    """The block whose feature maps Grad-CAM weighs: ``model.features[-1]`` (``CompactVGG``, timm VGG), else the
    module holding the last ``nn.Conv2d``.

    Raises:
        ValueError: the model has no convolution.
    """
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential) and len(features):
        return features[-1]
    last: nn.Module | None = None
    for module in model.modules():
        if any(isinstance(c, nn.Conv2d) for c in module.children()):
            last = module
    if last is None:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d, so it has no conv block for a heat map")
    return last


def explain_block(model: nn.Module, input_size: int, max_stride: int = MAX_STRIDE) -> nn.Module:
    """The last conv block (a child of ``model.features`` holding an ``nn.Conv2d``) whose output side is at least
    ``input_size / max_stride``; :func:`last_conv_block` for a model without such ``features``.
    """
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        return last_conv_block(model)
    sides: dict[int, int] = {}
    hooks = [
        child.register_forward_hook(lambda _m, _i, out, k=k: sides.__setitem__(k, int(out.shape[-1])))
        for k, child in enumerate(features)
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            first = next(model.parameters())
            in_chans = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
            model(torch.zeros(1, in_chans, input_size, input_size, dtype=first.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    blocks = [
        k
        for k, child in enumerate(features)
        if any(isinstance(m, nn.Conv2d) for m in child.modules())
        and sides.get(k, 0) * max_stride >= input_size
    ]
    return features[blocks[-1]] if blocks else last_conv_block(model)


@contextlib.contextmanager
def _capture(block: nn.Module) -> Iterator[list[torch.Tensor]]:
    """The block's outputs of the forward passes made inside the ``with``, still in the autograd graph."""
    found: list[torch.Tensor] = []
    handle = block.register_forward_hook(lambda _module, _inputs, output: found.append(output))
    try:
        yield found
    finally:
        handle.remove()


def class_activation_map(
    model: nn.Module, x: torch.Tensor, *, block: nn.Module | None = None, method: str = "layercam"
) -> tuple[np.ndarray, np.ndarray]:
    """The heat map of output 0 for a batch: ``(cams, logits)``, cams ``(n, H, W)`` at the input's size, each 0..1.

    ``method``: ``layercam`` weighs each position by its positive gradient; ``gradcam`` weighs each feature map by
    its gradient averaged over the map. ``block`` defaults to :func:`explain_block`.

    ``model`` is left as it was: its mode is restored, and no gradient is stored on its parameters.
    """
    if method not in METHODS:
        raise ValueError(f"unknown heat map method {method!r}; expected one of {METHODS}")
    with _HOOK_LOCK:
        block = block or explain_block(model, int(x.shape[-1]))
        return _cam(model, x, block, method)


def _cam(model: nn.Module, x: torch.Tensor, block: nn.Module, method: str) -> tuple[np.ndarray, np.ndarray]:
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), _capture(block) as found:
            logits = model(x.detach().clone().requires_grad_(True))
            act = found[-1]
            (grad,) = torch.autograd.grad(logits[:, 0].sum(), act)
    finally:
        model.train(was_training)
    act = act.detach()
    weights = torch.relu(grad) if method == "layercam" else grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * act).sum(dim=1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    top = cam.flatten(1).amax(dim=1)[:, None, None]
    cam = torch.where(top > 1e-12, cam / top.clamp_min(1e-12), torch.zeros_like(cam))
    return cam.numpy().astype(np.float32), logits.detach().numpy()


def to_photo(cam: np.ndarray, shape: tuple[int, int], transform: DefectTransform) -> np.ndarray:
    """A heat map at the model's input mapped back onto a photo of ``shape``, undoing ``transform.fit``."""
    h, w = shape
    s = transform.size
    if (h, w) == (s, s):
        return cam
    if transform.resize == "stretch" or h == w:
        return cv2.resize(cam, (w, h), interpolation=cv2.INTER_LINEAR)
    scale = (max if transform.resize == "crop" else min)(s / h, s / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if transform.resize == "pad":
        top, left = (s - nh) // 2, (s - nw) // 2
        return cv2.resize(cam[top : top + nh, left : left + nw], (w, h), interpolation=cv2.INTER_LINEAR)
    scaled = np.zeros((nh, nw), np.float32)  # crop: the model saw only the centre; the ends get no heat
    top, left = (nh - s) // 2, (nw - s) // 2
    scaled[top : top + s, left : left + s] = cam
    return cv2.resize(scaled, (w, h), interpolation=cv2.INTER_LINEAR)


class Explainer:
    """Heat maps of one defect model, with its preprocessing and calibration.

    Example:
        >>> explainer = Explainer.from_checkpoint(load_checkpoint("models/bundles/synthetic-v3/defect"))
        >>> [m] = explainer([gray]); m.peak, m.p_defective
    """

    def __init__(
        self,
        model: nn.Module,
        transform: DefectTransform,
        temperature: float = 1.0,
        *,
        method: str = "layercam",
        block: nn.Module | None = None,
    ) -> None:
        self.model = model
        self.transform = transform
        self.temperature = temperature
        self.method = method
        with _HOOK_LOCK:
            self.block = block or explain_block(model, transform.size)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: Any, *, method: str = "layercam", last_block: bool = False
    ) -> Explainer:
        """From a loaded defect :class:`inspection.models.checkpoint.Checkpoint`; ``last_block``: use the very last
        conv block (:func:`last_conv_block`) instead of :func:`explain_block`."""
        meta = checkpoint.meta
        return cls(
            checkpoint.model,
            DefectTransform.from_meta(meta),
            float(meta.get("calibration", {}).get("temperature", 1.0)),
            method=method,
            block=last_conv_block(checkpoint.model) if last_block else None,
        )

    def __call__(self, grays: Sequence[np.ndarray]) -> list[HeatMap]:
        if not len(grays):
            return []
        cams, logits = class_activation_map(
            self.model, self.transform(grays), block=self.block, method=self.method
        )
        p = 1.0 / (1.0 + np.exp(-logits[:, 0] / self.temperature))
        out = []
        for gray, cam, pk in zip(grays, cams, p, strict=True):
            heat = to_photo(cam, gray.shape[:2], self.transform)
            row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
            out.append(HeatMap(heat.astype(np.float32), (int(row), int(col)), float(pk)))
        return out


def overlay(gray: np.ndarray, heat: np.ndarray, *, alpha: float = 0.45) -> np.ndarray:
    """The photo in gray with the heat map over it (jet colours, stronger where hotter), RGB uint8."""
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB).astype(np.float32)
    colours = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB).astype(np.float32)
    weight = alpha * np.clip(heat, 0, 1)[..., None] ** 0.5
    return np.clip(base * (1 - weight) + colours * weight, 0, 255).astype(np.uint8)


# --- the pointing game -------------------------------------------------------------------------------------------


def is_hit(peak: tuple[int, int], mask: np.ndarray, dilation_px: int = DILATION_PX) -> bool:
    """Whether ``peak`` lies within ``dilation_px`` pixels of the mask (a disc-shaped dilation)."""
    k = 2 * dilation_px + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    near = cv2.dilate(mask.astype(np.uint8), disc) > 0
    return bool(near[peak])


@dataclass
class PointingGame:
    """The pointing game's tally, overall and per defect kind (module docstring)."""

    dilation_px: int = DILATION_PX
    defective: int = 0
    flagged: int = 0
    hits: int = 0
    empty_masks: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [hits, flagged]

    def add(self, kind: str, flagged: bool, peak: tuple[int, int], mask: np.ndarray) -> None:
        self.defective += 1
        if not flagged:
            return
        if not mask.any():
            self.empty_masks += 1
            return
        hit = is_hit(peak, mask, self.dilation_px)
        self.flagged += 1
        self.hits += int(hit)
        tally = self.by_kind.setdefault(kind, [0, 0])
        tally[0] += int(hit)
        tally[1] += 1

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.flagged if self.flagged else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hit_rate": self.hit_rate,
            "n": self.flagged,
            "hits": self.hits,
            "defective": self.defective,
            "flagged_with_empty_mask": self.empty_masks,
            "dilation_px": self.dilation_px,
            "by_kind": {
                k: {"hit_rate": h / n if n else None, "n": n} for k, (h, n) in sorted(self.by_kind.items())
            },
        }


def play_pointing_game(
    pipeline: Any,
    data: str | Path,
    *,
    split: str = "test",
    batch_size: int = 32,
    progress: bool = False,
    explainers: dict[str, Explainer] | None = None,
) -> dict[str, PointingGame]:
    """The pointing game of ``pipeline``'s defect model on ``data`` (written with ``inspection synth --masks``).

    Each photo goes the pipeline's way: noise type, route, denoiser; the defect model then judges the denoised
    photo, and the heat map is taken on that photo. A photo is flagged when its P(defective) reaches the bundle's
    threshold. ``explainers`` (name to :class:`Explainer`) default to ``{"layercam": Explainer(defect model)}``;
    each gets its own tally of the same photos.

    Raises:
        FileNotFoundError: ``data`` has no ``masks/`` folder (write it with ``inspection synth --masks``).
    """
    from tqdm import tqdm

    from inspection.data import MASKS_DIR, list_split, mask_path, read_photos

    root = Path(data)
    if not (root / MASKS_DIR).is_dir():
        raise FileNotFoundError(
            f"{root} has no {MASKS_DIR}/ folder of defect masks; write the data with "
            f"`inspection synth --out {root} --masks` (castings only)"
        )
    samples = [s for s in list_split(root, split) if s.label]
    explainers = explainers or {"layercam": Explainer.from_checkpoint(pipeline.defect)}
    games = {name: PointingGame() for name in explainers}
    for start in tqdm(range(0, len(samples), batch_size), desc="pointing game", disable=not progress):
        grays, kept, rejected = read_photos(samples[start : start + batch_size])
        for r in rejected:
            log.warning("photo %s not used: %s", r.path, r.message)
        if not grays:
            continue
        routes = pipeline.route(pipeline.classify_noise(grays), grays)
        judged = pipeline.denoise(grays, [d for _, d, _ in routes])
        p_defect = pipeline.defect_probability(judged)
        maps = {name: explainer(judged) for name, explainer in explainers.items()}
        for j, (sample, p) in enumerate(zip(kept, p_defect, strict=True)):
            mask = cv2.imread(str(mask_path(root, sample.path)), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise FileNotFoundError(f"no defect mask for {sample.path} at {mask_path(root, sample.path)}")
            kind = sample.kind or sample.path.stem.split("_", 3)[-1]  # synth_<split>_<i>_<kind>.png
            for name, game in games.items():
                game.add(kind, bool(p >= pipeline.threshold), maps[name][j].peak, mask > 127)
    return games
