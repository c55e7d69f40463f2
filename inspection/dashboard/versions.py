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
COLUMNS = ["task", "version", "architecture", "in_use", "source", "bundles", "created", "metrics", "path"]
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
    """``(task folder, checkpoint folder)`` pairs: ``<task>/meta.json`` directly, ``<task>/<version>/meta.json``, or a
    bundle's ``bundles/<bundle>/<task>/meta.json``."""
    root = Path(models_dir)
    found = []
    for task in TASK_DIRS:
        base = root / task
        if not base.is_dir():
            continue
        if (base / "meta.json").is_file():
            found.append((task, base))
        found.extend((task, sub) for sub in sorted(base.iterdir()) if (sub / "meta.json").is_file())
    bundles = root / "bundles"
    if bundles.is_dir():
        for bundle in sorted(b for b in bundles.iterdir() if b.is_dir() and not b.name.startswith(".")):
            found.extend(
                (task, bundle / task) for task in TASK_DIRS if (bundle / task / "meta.json").is_file()
            )
    return found


def _live_bundle(models_dir: Path) -> str | None:
    try:
        return (models_dir / "LIVE").read_text().strip() or None
    except OSError:
        return None


def checkpoints_frame(models_dir: str | Path) -> pd.DataFrame:
    """One row per checkpoint folder under ``models_dir`` with its version, architecture and metrics.

    A bundle's checkpoint is in use when its bundle is the live one (``LIVE``). In the layout before bundles, a
    ``meta.json`` directly in the task folder, or the task's only checkpoint, is the one the pipeline loads and is
    marked ``in_use``. The same model in several bundles gives one row per bundle here; :func:`merge_versions`
    makes them one.
    """
    rows = []
    root = Path(models_dir)
    live = _live_bundle(root)
    folders = checkpoint_folders(models_dir)
    for task, folder in folders:
        meta = _read_meta(folder)
        if meta is None:
            continue
        in_bundle = folder.parent.parent.name == "bundles"
        siblings = [f for t, f in folders if t == task and f.parent.parent.name != "bundles"]
        rows.append(
            {
                "task": str(meta.get("task") or task),
                "version": str(meta.get("version") or folder.name),
                "architecture": meta.get("architecture"),
                "in_use": folder.parent.name == live
                if in_bundle
                else (folder.name == task or len(siblings) == 1),
                "source": "checkpoint",
                "bundles": folder.parent.name if in_bundle else "",
                "created": meta.get("created"),
                "metrics": _headline_metrics(meta.get("metrics")),
                "path": str(folder),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _joined(values: pd.Series) -> str:
    seen = []
    for value in values:
        for part in str(value or "").split(", "):
            if part and part not in seen:
                seen.append(part)
    return ", ".join(seen)


def _first(values: pd.Series) -> Any:
    present = [v for v in values if v is not None and not (isinstance(v, float) and pd.isna(v)) and v != ""]
    return present[0] if present else None


def merge_versions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ``(task, version)``: a model found on disk (in one or several bundles) and in the store's
    ``model_versions`` is one model, so it is listed once, with every source and bundle that holds it.

    ``in_use`` is the store's flag where the store knows the version (what the stations score with), else the
    checkpoint's.
    """
    if frame.empty:
        return frame.reindex(columns=COLUMNS)
    rows = []
    for (task, version), group in frame.groupby(["task", "version"], sort=False):
        store = group[group["source"] == "store"]
        in_use = (
            bool(store["in_use"].astype(bool).any())
            if not store.empty
            else bool(group["in_use"].astype(bool).any())
        )
        rows.append(
            {
                "task": task,
                "version": version,
                "architecture": _first(group["architecture"]),
                "in_use": in_use,
                "source": _joined(group["source"]),
                "bundles": _joined(group["bundles"]),
                "created": _first(group["created"]),
                "metrics": _first(group["metrics"]) or "",
                "path": _first(group["path"]),
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
                "bundles": "",
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
    in_use = frame[frame["in_use"].astype(bool)]
    for from_store in (False, True):
        sub = in_use[in_use["source"].astype(str).str.contains("store") == from_store]
        out.update(dict(zip(sub["task"], sub["version"], strict=True)))
    return out
