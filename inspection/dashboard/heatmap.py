"""Where the defect model looked, for Part lookup: the LayerCAM heat map (:mod:`inspection.explain`) over the photo
the defect model judged.

The defect model judged the photo after the record's denoiser, so the heat map is taken on that photo, rebuilt as
the page's denoised view rebuilds it; when it cannot be rebuilt, the stored photo stands in and the note says so.
Torch loads only when a heat map is asked for (the page's *Show where the model looked* switch).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspection.dashboard import parts
from inspection.dashboard.text import escape_markdown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeatMapView:
    """The heat map over the judged photo (RGB uint8) when it could be made, else None; and a sentence about it."""

    image: np.ndarray | None
    note: str
    p_defective: float | None = None


def heat_map_view(gray: np.ndarray, record: dict[str, Any], pipeline: Any | None) -> HeatMapView:
    """The defect model's heat map on the photo it judged (the record's denoised photo where it can be rebuilt)."""
    if pipeline is None or getattr(pipeline, "defect", None) is None:
        return HeatMapView(None, "the defect model could not be loaded")
    from inspection.explain import Explainer, overlay

    denoised = parts.denoised_view(gray, record, pipeline)
    if denoised.image is not None:
        judged, which = denoised.image, f"the photo as the defect model judged it ({denoised.note})"
    else:
        judged, which = gray, "the stored photo (its denoised version could not be rebuilt)"
    try:
        [heat] = Explainer.from_checkpoint(pipeline.defect)([judged])
    except (RuntimeError, ValueError) as e:  # a model without a conv block, or a photo it cannot take
        log.warning("no heat map for record %s: %s", record.get("id"), e)
        return HeatMapView(None, f"no heat map: {escape_markdown(e)}")
    version = escape_markdown(getattr(pipeline.defect, "version", "?"))
    if not heat.heat.any():
        return HeatMapView(
            overlay(judged, heat.heat),
            f"nothing in {which} raised the defect score of {version}: no region stands out",
            heat.p_defective,
        )
    return HeatMapView(
        overlay(judged, heat.heat),
        f"LayerCAM of defect model {version} on {which}; red is where the defect score rose most",
        heat.p_defective,
    )
