"""Part lookup: find records by part id or by station and time, and rebuild what the pipeline saw."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Engine, Table, select

from inspection import NOISE_TYPES
from inspection.store.models import Inspection

log = logging.getLogger(__name__)
T = cast(Table, Inspection.__table__)
LIST_COLUMNS = (
    "id",
    "created_at",
    "station_id",
    "part_id",
    "status",
    "noise_type",
    "verdict",
    "defect_probability",
)
MAX_ROWS = 500


@dataclass(frozen=True)
class DenoisedView:
    """The denoised photo when it could be rebuilt, else None and a sentence saying why not."""

    image: np.ndarray | None
    note: str


def find_parts(
    engine: Engine,
    *,
    part_id: str | None = None,
    stations: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 200,
) -> pd.DataFrame:
    """Records matching the filters, newest first, at most ``limit`` (capped at 500).

    ``part_id`` matches exactly, or as a prefix when it ends with ``*``.
    """
    conds: list[ColumnElement[bool]] = []
    if part_id:
        part_id = part_id.strip()
        if part_id.endswith("*"):
            prefix = part_id[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(T.c.part_id.like(prefix + "%", escape="\\"))
        else:
            conds.append(T.c.part_id == part_id)
    if stations:
        conds.append(T.c.station_id.in_(stations))
    if start is not None:
        conds.append(T.c.created_at >= start)
    if end is not None:
        conds.append(T.c.created_at <= end)
    stmt = (
        select(*(T.c[c] for c in LIST_COLUMNS))
        .where(*conds)
        .order_by(T.c.created_at.desc(), T.c.id.desc())
        .limit(max(1, min(limit, MAX_ROWS)))
    )
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(stmt).mappings().all(), columns=list(LIST_COLUMNS))
    if not frame.empty:
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def get_part(engine: Engine, record_id: int) -> dict[str, Any] | None:
    """Every stored field of one record, or None when there is no such id."""
    with engine.connect() as conn:
        row = conn.execute(select(T).where(T.c.id == int(record_id))).mappings().first()
    if row is None:
        return None
    out = dict(row)
    created = out.get("created_at")
    if isinstance(created, datetime) and created.tzinfo is None:
        out["created_at"] = created.replace(tzinfo=UTC)
    return out


def probabilities_frame(record: dict[str, Any]) -> pd.DataFrame:
    """The noise classifier's probability per type, in the canonical type order: ``noise_type, probability``."""
    probs = record.get("noise_probabilities") or {}
    types = [t for t in NOISE_TYPES if t in probs] + [t for t in probs if t not in NOISE_TYPES]
    return pd.DataFrame({"noise_type": types, "probability": [float(probs[t]) for t in types]})


def versions_frame(record: dict[str, Any]) -> pd.DataFrame:
    """The model versions that judged the part: ``model, version``."""
    versions = record.get("model_versions") or {}
    return pd.DataFrame({"model": list(versions), "version": [str(v) for v in versions.values()]})


def photo_path(record: dict[str, Any]) -> Path | None:
    """Where the stored photo is, when the record kept a path and the file still exists."""
    path = record.get("image_path")
    if not path:
        return None
    p = Path(str(path)).expanduser()
    return p if p.is_file() else None


def denoised_view(gray: np.ndarray, record: dict[str, Any], pipeline: Any | None = None) -> DenoisedView:
    """Run the recorded denoiser on the photo again.

    Median, notch and identity need no model and run directly. The autoencoder needs the loaded pipeline
    (``pipeline.router`` as an :class:`inspection.denoise.Router`); without it the view says so.
    """
    name = record.get("denoiser")
    if not name:
        return DenoisedView(None, "the record names no denoiser (the photo was rejected before scoring)")
    if name == "identity":
        why = "took the safe path" if record.get("safe_path") else "classified clean"
        return DenoisedView(gray, f"{why}: the photo passed through untouched")
    denoiser = None
    router = getattr(pipeline, "router", None) if pipeline is not None else None
    if router is not None:
        denoiser = (getattr(router, "denoisers", None) or {}).get(name)
    if denoiser is None:
        from inspection import denoise

        simple = {"median": denoise.MedianDenoiser, "notch": getattr(denoise, "NotchDenoiser", None)}
        factory = simple.get(name)
        if factory is None:
            why = (
                "the pipeline's models could not be loaded"
                if pipeline is None
                else f"the pipeline has no {name!r}"
            )
            return DenoisedView(
                None, f"the {name} denoiser needs its model, and {why}; showing the stored photo only"
            )
        denoiser = factory()
    try:
        return DenoisedView(
            np.asarray(denoiser(gray), dtype=np.uint8), f"recomputed with the {name} denoiser"
        )
    except Exception as e:  # a denoiser failing on one photo must not take the page down
        log.warning("denoiser %s failed on record %s: %s", name, record.get("id"), e)
        return DenoisedView(None, f"the {name} denoiser failed on this photo: {e}")
