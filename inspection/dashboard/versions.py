"""Model versions for the Models page: checkpoint folders on disk and the store's ``model_versions`` table."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy import Engine, Table, inspect, select

from inspection.store.models import ModelVersion

log = logging.getLogger(__name__)
TASK_DIRS: tuple[str, ...] = ("noise", "denoiser", "defect")
COLUMNS = ["task", "version", "architecture", "in_use", "source", "created", "metrics", "path"]
FILL_HINT = (
    "Train one with `inspection train ...`; checkpoints are folders with `meta.json` under "
    "`models/<noise|denoiser|defect>/`, or set INSPECTION_MODELS to another models folder."
)


def _headline_metrics(metrics: Any) -> str:
    """A short ``name=value`` summary of a metrics dict, numbers only, at most six."""
    if not isinstance(metrics, dict):
        return ""
    parts = []
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(parts[:6])


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        log.warning("skipping checkpoint %s: %s", folder, e)
        return None
    return meta if isinstance(meta, dict) else None


def checkpoint_folders(models_dir: str | Path) -> list[tuple[str, Path]]:
    """``(task folder, checkpoint folder)`` pairs: ``<task>/meta.json`` directly or ``<task>/<version>/meta.json``."""
    root = Path(models_dir)
    found = []
    for task in TASK_DIRS:
        base = root / task
        if not base.is_dir():
            continue
        if (base / "meta.json").is_file():
            found.append((task, base))
        found.extend((task, sub) for sub in sorted(base.iterdir()) if (sub / "meta.json").is_file())
    return found


def checkpoints_frame(models_dir: str | Path) -> pd.DataFrame:
    """One row per checkpoint folder under ``models_dir`` with its version, architecture and metrics.

    Within a task folder, a ``meta.json`` directly in the folder, or the only checkpoint, is the one the
    pipeline loads by default and is marked ``in_use``.
    """
    rows = []
    folders = checkpoint_folders(models_dir)
    for task, folder in folders:
        meta = _read_meta(folder)
        if meta is None:
            continue
        siblings = [f for t, f in folders if t == task]
        rows.append(
            {
                "task": str(meta.get("task") or task),
                "version": str(meta.get("version") or folder.name),
                "architecture": meta.get("architecture"),
                "in_use": folder.name == task or len(siblings) == 1,
                "source": "checkpoint",
                "created": meta.get("created"),
                "metrics": _headline_metrics(meta.get("metrics")),
                "path": str(folder),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def store_versions_frame(engine: Engine) -> pd.DataFrame:
    """The store's ``model_versions`` rows (empty when the table is missing), newest first."""
    t = cast(Table, ModelVersion.__table__)
    if not inspect(engine).has_table(t.name):
        return pd.DataFrame(columns=COLUMNS)
    stmt = select(t.c.task, t.c.version, t.c.meta, t.c.in_use, t.c.created_at).order_by(t.c.id.desc())
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    out = []
    for r in rows:
        meta = r["meta"] if isinstance(r["meta"], dict) else {}
        out.append(
            {
                "task": r["task"],
                "version": r["version"],
                "architecture": meta.get("architecture"),
                "in_use": bool(r["in_use"]),
                "source": "store",
                "created": str(r["created_at"]) if r["created_at"] is not None else meta.get("created"),
                "metrics": _headline_metrics(meta.get("metrics")),
                "path": meta.get("path"),
            }
        )
    return pd.DataFrame(out, columns=COLUMNS)


def metrics_long_frame(models_dir: str | Path, engine: Engine | None = None) -> pd.DataFrame:
    """Numeric metrics of every known version in long form, for a chart: ``task, version, metric, value``."""
    rows = []
    for task, folder in checkpoint_folders(models_dir):
        meta = _read_meta(folder) or {}
        version = str(meta.get("version") or folder.name)
        for key, value in (meta.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append(
                    {
                        "task": str(meta.get("task") or task),
                        "version": version,
                        "metric": key,
                        "value": float(value),
                    }
                )
    if engine is not None and inspect(engine).has_table(ModelVersion.__tablename__):
        t = cast(Table, ModelVersion.__table__)
        with engine.connect() as conn:
            for task, version, meta in conn.execute(select(t.c.task, t.c.version, t.c.meta)):
                for key, value in ((meta or {}).get("metrics") or {}).items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        rows.append({"task": task, "version": version, "metric": key, "value": float(value)})
    frame = pd.DataFrame(rows, columns=["task", "version", "metric", "value"])
    return frame.drop_duplicates(["task", "version", "metric"]).reset_index(drop=True)


def versions_in_use(frame: pd.DataFrame) -> dict[str, str]:
    """Task to the version marked in use; the store's flag wins over the checkpoint folder default."""
    out: dict[str, str] = {}
    for source in ("checkpoint", "store"):
        sub = frame[(frame["source"] == source) & frame["in_use"].astype(bool)]
        out.update(dict(zip(sub["task"], sub["version"], strict=True)))
    return out
