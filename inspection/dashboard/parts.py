"""Part lookup: find records by part id or by station and time, and rebuild what the pipeline saw.

Texts meant for Markdown-rendering calls (notes, captions, the rejection line) come out escaped with
:func:`inspection.dashboard.text.escape_markdown`: station and part ids, reasons, messages and file names
are sent by callers of the service and must show as text, never as links or images.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Engine, Table, func, select

from inspection import NOISE_TYPES
from inspection.dashboard.images import decode_photo, read_photo
from inspection.dashboard.text import escape_markdown
from inspection.imageio import ImageRejected
from inspection.store.models import Inspection
from inspection.store.photos import PhotoNotFound, PhotoStore

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
    "ood",
)
MAX_ROWS = 500
SHOWN_ROWS = 200  # the newest matching records listed on the page; the count and the export cover them all
EXPORT_COLUMNS = (
    *LIST_COLUMNS, "kind", "noise_probability", "denoiser", "threshold", "ood_score", "reason", "message",
)  # fmt: skip
OOD_CHOICES = {"any": None, "yes": True, "no": False, "not checked": "unknown"}


@dataclass(frozen=True)
class DenoisedView:
    """The denoised photo when it could be rebuilt, else None and a sentence saying why not."""

    image: np.ndarray | None
    note: str


@dataclass(frozen=True)
class Photo:
    """A record's photo as 8-bit gray, or None and a Markdown-safe sentence saying why it is not shown."""

    gray: np.ndarray | None
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
        conds.append(_part_id_condition(part_id))
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


@dataclass(frozen=True)
class PartQuery:
    """What the Part lookup page searches for; every field left empty matches everything.

    ``part_id`` matches exactly, or as a prefix when it ends with ``*``; ``record_id`` picks one record (a
    deep link) and the other fields are then ignored. ``ood`` is True, False or ``"unknown"`` (no OOD check).
    """

    part_id: str | None = None
    record_id: int | None = None
    stations: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    noise_types: tuple[str, ...] = ()
    ood: bool | str | None = None
    start: datetime | None = None
    end: datetime | None = None


def _part_id_condition(part_id: str) -> ColumnElement[bool]:
    part_id = part_id.strip()
    if part_id.endswith("*"):
        prefix = part_id[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return T.c.part_id.like(prefix + "%", escape="\\")
    return T.c.part_id == part_id


def query_conditions(query: PartQuery) -> list[ColumnElement[bool]]:
    """The SQL conditions for ``query``: the record alone for a record id, else every filter that is set."""
    if query.record_id is not None:
        return [T.c.id == int(query.record_id)]
    conds: list[ColumnElement[bool]] = []
    if query.part_id:
        conds.append(_part_id_condition(query.part_id))
    for column, values in (("station_id", query.stations), ("verdict", query.verdicts),
                           ("kind", query.kinds), ("noise_type", query.noise_types)):  # fmt: skip
        if values:
            conds.append(T.c[column].in_(values))
    if query.ood == "unknown":
        conds.append(T.c.ood.is_(None))
    elif query.ood is not None:
        conds.append(T.c.ood.is_(bool(query.ood)))
    if query.start is not None:
        conds.append(T.c.created_at >= query.start)
    if query.end is not None:
        conds.append(T.c.created_at <= query.end)
    return conds


def count_parts(engine: Engine, query: PartQuery) -> int:
    """How many records match ``query``: the exact count, however many the page lists."""
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(T).where(*query_conditions(query))).scalar_one()
        )


def query_parts(
    engine: Engine,
    query: PartQuery,
    *,
    limit: int | None = SHOWN_ROWS,
    columns: tuple[str, ...] = LIST_COLUMNS,
) -> pd.DataFrame:
    """Records matching ``query``, newest first: at most ``limit`` of them, or all with ``limit=None``."""
    stmt = select(*(T.c[c] for c in columns)).where(*query_conditions(query))
    stmt = stmt.order_by(T.c.created_at.desc(), T.c.id.desc())
    if limit is not None:
        stmt = stmt.limit(max(1, limit))
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(stmt).mappings().all(), columns=list(columns))
    if not frame.empty:
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def export_csv(frame: pd.DataFrame) -> bytes:
    """The records as CSV (UTF-8, a header row, times in ISO 8601 UTC)."""
    return frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ").encode("utf-8")


def parquet_available() -> bool:
    """Whether Parquet can be written here (it needs pyarrow)."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def export_parquet(frame: pd.DataFrame) -> bytes:
    """The records as Parquet; needs pyarrow (:func:`parquet_available`)."""
    return frame.to_parquet(index=False)


def count_caption(total: int, shown: int) -> str:
    """``20,000 matching records; the newest 200 are listed`` (or ``3 matching records``), for the page."""
    noun = "record" if total == 1 else "records"
    if shown >= total:
        return f"{total:,} matching {noun}, newest first."
    return f"{total:,} matching {noun}; the newest {shown:,} are listed (export to get them all)."


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


def record_labels(found: pd.DataFrame) -> dict[int, str]:
    """Select-box labels for found records (plain text: option labels are not Markdown), by record id."""
    return {
        int(r.id): f"#{r.id} · {r.part_id} · {r.station_id} · {r.created_at:%Y-%m-%d %H:%M}"
        for r in found.itertuples()
    }


def rejection_note(record: dict[str, Any]) -> str | None:
    """``Rejected (reason): message`` for a rejected record, escaped for Markdown; None for a scored one."""
    if record.get("status") != "rejected":
        return None
    return f"Rejected ({escape_markdown(record.get('reason'))}): {escape_markdown(record.get('message'))}"


def conflict_note(record: dict[str, Any]) -> str | None:
    """A warning when another photo of this part got the opposite verdict; None otherwise."""
    if not record.get("conflict"):
        return None
    return (
        f"Conflict: another photo of part {escape_markdown(record.get('part_id'))} got the opposite verdict. "
        "Search the part id to see every photo of it, and settle which verdict holds."
    )


def ood_value(record: dict[str, Any]) -> str:
    """Whether the photo lay beyond the models' range: ``yes``, ``no``, or ``not checked`` (no OOD model)."""
    ood = record.get("ood")
    return "not checked" if ood is None else ("yes" if ood else "no")


def ood_help(record: dict[str, Any]) -> str:
    """The OOD score behind :func:`ood_value`: ``score 2.41 (above 1 is out of range)``."""
    score = record.get("ood_score")
    if score is None:
        return "no OOD score: the bundle that judged this photo has no out-of-distribution model"
    return f"score {float(score):.2f} (distance over the OOD threshold; above 1 is out of range)"


def ood_note(record: dict[str, Any]) -> str | None:
    """A warning for a photo out of distribution: its verdict rests on models that never saw the like."""
    if not record.get("ood"):
        return None
    score = record.get("ood_score")
    at = f" (score {float(score):.2f}; above 1 is out of range)" if score is not None else ""
    return (
        f"Out of distribution{at}: this photo lies beyond the range of the models' training photos, so its "
        "verdict may not hold. Check the camera and the part, and label it."
    )


def record_caption(record: dict[str, Any]) -> str:
    """``Station S · time UTC · record #id``, escaped for Markdown."""
    created = record.get("created_at")
    when = f"{created:%Y-%m-%d %H:%M:%S} UTC" if isinstance(created, datetime) else "time unknown"
    return f"Station {escape_markdown(record.get('station_id'))} · {when} · record #{int(record['id'])}"


def load_photo(record: dict[str, Any], store: PhotoStore | None, *, store_problem: str = "") -> Photo:
    """The record's photo: from the photo store by ``image_key``, else from ``image_path`` (older records).

    Sizes are checked before anything is decoded: a file over ``inspection.imageio.MAX_FILE_BYTES`` is not
    read, and an image whose header declares more pixels than the pipeline accepts is not decoded (a
    140 KB PNG can declare 12000x12000 pixels, 144 MB of memory). Either comes back as a note instead.
    """
    key = record.get("image_key")
    missing = ""
    if key and store is not None:
        try:
            return _decoded(lambda: decode_photo(str(key), store))
        except PhotoNotFound:
            missing = f"{key} is not in the photo store"
        except OSError as e:
            missing = f"the photo store cannot be read ({e})"
    elif key:
        missing = store_problem or "no photo store is configured"
    path = photo_path(record)
    if path is not None:
        return _decoded(lambda: read_photo(path))
    where = record.get("image_path") or key or "no photo was kept"
    why = f"; {missing}" if missing else ""
    return Photo(None, escape_markdown(f"The photo is not available here ({where}{why})."))


def _decoded(load: Callable[[], np.ndarray]) -> Photo:
    try:
        return Photo(load(), "photo")
    except ImageRejected as e:
        return Photo(None, escape_markdown(f"photo not shown: {e}"))


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
    shown = escape_markdown(name)
    if not name:
        return DenoisedView(None, "the record names no denoiser (the photo was rejected before scoring)")
    if name == "identity":
        noise = record.get("noise_type")
        why = (
            "took the safe path"
            if record.get("safe_path")
            else "classified clean"
            if noise in (None, "clean")
            else f"classified {noise}, its noise too weak to denoise (below the bundle's min_denoise_sigma) "
            "or its route set to identity"
        )
        return DenoisedView(gray, f"{why}: the photo passed through untouched")
    denoiser = None
    router = getattr(pipeline, "router", None) if pipeline is not None else None
    if router is not None:
        denoiser = (getattr(router, "denoisers", None) or {}).get(name)
    if denoiser is None:
        from inspection.denoise import MODEL_FREE

        factory = MODEL_FREE.get(name)
        if factory is None:
            why = (
                "the pipeline's models could not be loaded"
                if pipeline is None
                else f"the pipeline has no {shown}"
            )
            return DenoisedView(
                None, f"the {shown} denoiser needs its model, and {why}; showing the stored photo only"
            )
        denoiser = factory()
    try:
        return DenoisedView(
            np.asarray(denoiser(gray), dtype=np.uint8), f"recomputed with the {shown} denoiser"
        )
    except Exception as e:  # a denoiser failing on one photo must not take the page down
        log.warning("denoiser %s failed on record %s: %s", name, record.get("id"), e)
        return DenoisedView(None, f"the {shown} denoiser failed on this photo: {escape_markdown(e)}")
