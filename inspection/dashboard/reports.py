"""Evaluation reports as the dashboard reads them (``docs/report-format.md``, schema_version 1).

Readers tolerate extra keys and missing optional sections: a table built from a section that is absent
comes back empty, and the page shows an empty state instead of failing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from inspection import NOISE_TYPES

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
NOISY_TYPES: tuple[str, ...] = tuple(t for t in NOISE_TYPES if t != "clean")
LEVEL_BINS: tuple[str, ...] = ("low", "mid", "high")
CONDITION_LABELS: dict[str, str] = {
    "clean": "Clean photos",
    "noisy_none": "Noisy, no denoising",
    "noisy_routed": "Noisy, routed denoising",
    "noisy_oracle": "Noisy, oracle routing",
}
HEADLINE_CONDITIONS: tuple[str, ...] = ("clean", "noisy_none", "noisy_routed")
# The study this design grew from; shown beside our own gain when a report lacks its "reference" block.
DEFAULT_REFERENCE: dict[str, Any] = {
    "source": "arXiv 2404.10664",
    "model": "VGG16",
    "noisy_before": 0.946,
    "noisy_after": 0.970,
}
FILL_HINT = "Write one with `inspection demo` (quick) or `inspection evaluate` (full protocol)."


class ReportError(ValueError):
    """A report folder that cannot be read."""


@dataclass(frozen=True)
class ReportRef:
    """One report folder: its id (sortable by time) and where it lives."""

    id: str
    path: Path

    @property
    def label(self) -> str:
        return self.id


@dataclass(frozen=True)
class GalleryEntry:
    """Example photos for one noise type; any path may be None when the report lacks it."""

    noise_type: str
    noisy: Path | None
    denoised: Path | None
    clean: Path | None
    spectrum: Path | None
    heat: Path | None = None  # the defect model's heat map over the denoised photo (reports since 2026-11-27)
    p_defective: float | None = None  # the defect model's P(defective) on the denoised photo


def list_reports(root: str | Path) -> list[ReportRef]:
    """Report folders under ``root`` that hold a ``report.json``, newest first.

    The folder name is the report id, ``YYYYMMDDTHHMMSSZ-<dataset>``, so names sort by time.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    refs = [ReportRef(p.name, p) for p in root.iterdir() if (p / "report.json").is_file()]
    return sorted(refs, key=lambda r: r.id, reverse=True)


def load_report(path: str | Path) -> dict[str, Any]:
    """Read ``report.json`` from a report folder and check its schema version.

    Raises:
        ReportError: the file is missing, is not JSON, or has an unknown schema version.
    """
    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    try:
        report = json.loads(file.read_text())
    except FileNotFoundError as e:
        raise ReportError(f"{file} does not exist; {FILL_HINT}") from e
    except json.JSONDecodeError as e:
        raise ReportError(f"{file} is not valid JSON ({e}); rerun the evaluation that wrote it") from e
    if not isinstance(report, dict):
        raise ReportError(f"{file} should hold a JSON object, got {type(report).__name__}")
    version = report.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ReportError(
            f"{file} has schema_version {version!r}; this dashboard reads version {SCHEMA_VERSION}. "
            "Upgrade inspection or rerun the evaluation."
        )
    report.setdefault("id", file.parent.name)
    return report


def _metric(block: dict[str, Any] | None, key: str) -> float | None:
    if not block or block.get(key) is None:
        return None
    return float(block[key])


def headline_table(report: dict[str, Any]) -> pd.DataFrame:
    """Defect accuracy, sensitivity and specificity per condition: clean, noisy, noisy + routed denoising.

    Falls back to ``defect_accuracy`` (accuracy only) when ``defect.conditions`` is missing.
    """
    conditions = (report.get("defect") or {}).get("conditions") or {}
    flat = report.get("defect_accuracy") or {}
    rows = []
    for cond in HEADLINE_CONDITIONS:
        block = conditions.get(cond)
        acc = _metric(block, "accuracy")
        if acc is None and isinstance(flat.get(cond), (int, float)):
            acc = float(flat[cond])
        if acc is None and block is None:
            continue
        rows.append(
            {
                "condition": cond,
                "label": CONDITION_LABELS[cond],
                "accuracy": acc,
                "sensitivity": _metric(block, "sensitivity"),
                "specificity": _metric(block, "specificity"),
                "n": int(block["n"]) if block and block.get("n") is not None else None,
            }
        )
    return pd.DataFrame(rows, columns=["condition", "label", "accuracy", "sensitivity", "specificity", "n"])


def _per_type_accuracy(report: dict[str, Any], condition: str) -> dict[str, float]:
    per_type = ((report.get("defect") or {}).get("per_type") or {}).get(condition) or {}
    out = {
        t: float(v["accuracy"])
        for t, v in per_type.items()
        if isinstance(v, dict) and v.get("accuracy") is not None
    }
    if not out and condition == "noisy_routed":
        flat = (report.get("defect_accuracy") or {}).get("noisy_routed_per_type") or {}
        out = {t: float(v) for t, v in flat.items()}
    return out


def gain_per_type(report: dict[str, Any]) -> pd.DataFrame:
    """Defect accuracy per noise type without and with routed denoising, and the gain in points of accuracy.

    Returns columns ``noise_type, without, with_denoising, gain``; ``without`` and ``gain`` are NaN when the
    report lacks ``defect.per_type.noisy_none``.
    """
    without = _per_type_accuracy(report, "noisy_none")
    routed = _per_type_accuracy(report, "noisy_routed")
    rows = []
    for t in NOISY_TYPES:
        if t not in routed and t not in without:
            continue
        w, r = without.get(t, float("nan")), routed.get(t, float("nan"))
        rows.append({"noise_type": t, "without": w, "with_denoising": r, "gain": r - w})
    return pd.DataFrame(rows, columns=["noise_type", "without", "with_denoising", "gain"])


def overall_gain(report: dict[str, Any]) -> float | None:
    """Accuracy on noisy photos with routed denoising minus without; None when either is missing."""
    table = headline_table(report).set_index("condition")
    try:
        before, after = table.loc["noisy_none", "accuracy"], table.loc["noisy_routed", "accuracy"]
    except KeyError:
        return None
    if pd.isna(before) or pd.isna(after):
        return None
    return float(after) - float(before)


def reference_figures(report: dict[str, Any] | None = None) -> dict[str, Any]:
    """The reference study's before/after defect accuracy (from the report, else the design's figures)."""
    ref = dict(DEFAULT_REFERENCE)
    if report and isinstance(report.get("reference"), dict):
        ref.update({k: v for k, v in report["reference"].items() if v is not None})
    ref["gain"] = float(ref["noisy_after"]) - float(ref["noisy_before"])
    return ref


def gain_comparison_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Long-form rows for the gain chart: ours per noise type, ours overall, and the reference study.

    Columns ``series, noise_type, stage, accuracy`` with stage ``without`` / ``with denoising``.
    """
    rows: list[dict[str, Any]] = []
    for _, r in gain_per_type(report).iterrows():
        for stage, col in (("without", "without"), ("with denoising", "with_denoising")):
            if not pd.isna(r[col]):
                rows.append(
                    {
                        "series": "this report",
                        "noise_type": r["noise_type"],
                        "stage": stage,
                        "accuracy": r[col],
                    }
                )
    table = headline_table(report).set_index("condition")
    for stage, cond in (("without", "noisy_none"), ("with denoising", "noisy_routed")):
        if cond in table.index and not pd.isna(table.loc[cond, "accuracy"]):
            rows.append(
                {
                    "series": "this report",
                    "noise_type": "all noisy",
                    "stage": stage,
                    "accuracy": table.loc[cond, "accuracy"],
                }
            )
    ref = reference_figures(report)
    label = f"reference ({ref['model']})"
    rows.append(
        {
            "series": label,
            "noise_type": "all noisy",
            "stage": "without",
            "accuracy": float(ref["noisy_before"]),
        }
    )
    rows.append(
        {
            "series": label,
            "noise_type": "all noisy",
            "stage": "with denoising",
            "accuracy": float(ref["noisy_after"]),
        }
    )
    return pd.DataFrame(rows, columns=["series", "noise_type", "stage", "accuracy"])


def compare_reports(latest: dict[str, Any], earlier: dict[str, Any]) -> pd.DataFrame:
    """Headline metrics and per-type gains of two reports side by side, with the change.

    Returns columns ``metric, latest, earlier, change``; one row per condition metric and per-type gain.
    """
    rows: list[dict[str, Any]] = []
    a, b = headline_table(latest).set_index("condition"), headline_table(earlier).set_index("condition")
    for cond in HEADLINE_CONDITIONS:
        for metric in ("accuracy", "sensitivity", "specificity"):
            va = a.loc[cond, metric] if cond in a.index else None
            vb = b.loc[cond, metric] if cond in b.index else None
            if (va is None or pd.isna(va)) and (vb is None or pd.isna(vb)):
                continue
            rows.append({"metric": f"{CONDITION_LABELS[cond]}: {metric}", "latest": va, "earlier": vb})
    ga, gb = gain_per_type(latest).set_index("noise_type"), gain_per_type(earlier).set_index("noise_type")
    for t in NOISY_TYPES:
        va = ga.loc[t, "gain"] if t in ga.index else None
        vb = gb.loc[t, "gain"] if t in gb.index else None
        if va is None and vb is None:
            continue
        rows.append({"metric": f"gain from denoising: {t}", "latest": va, "earlier": vb})
    frame = pd.DataFrame(rows, columns=["metric", "latest", "earlier"]).astype(
        {"latest": float, "earlier": float}
    )
    frame["change"] = frame["latest"] - frame["earlier"]
    return frame


def confusion_frame(report: dict[str, Any]) -> pd.DataFrame:
    """The noise classifier's confusion matrix in long form: ``true, predicted, count, share``.

    ``share`` is the count over its row total (the recall of the true class on the diagonal).
    """
    conf = (report.get("noise_classifier") or {}).get("confusion") or {}
    labels, matrix = conf.get("labels") or [], conf.get("matrix") or []
    rows = []
    for i, true in enumerate(labels[: len(matrix)]):
        total = sum(matrix[i]) or 1
        for j, pred in enumerate(labels[: len(matrix[i])]):
            rows.append(
                {"true": true, "predicted": pred, "count": int(matrix[i][j]), "share": matrix[i][j] / total}
            )
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "share"])


def noise_accuracy(report: dict[str, Any]) -> float | None:
    """The noise classifier's overall accuracy, or None."""
    value = (report.get("noise_classifier") or {}).get("accuracy")
    return None if value is None else float(value)


def accuracy_by_level_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Noise classification accuracy per type and level bin: ``noise_type, level_bin, level_order, accuracy``."""
    by_level = (report.get("noise_classifier") or {}).get("accuracy_by_level") or {}
    rows = []
    for t, bins in by_level.items():
        for b, acc in (bins or {}).items():
            if acc is None:
                continue
            order = LEVEL_BINS.index(b) if b in LEVEL_BINS else len(LEVEL_BINS)
            rows.append({"noise_type": t, "level_bin": b, "level_order": order, "accuracy": float(acc)})
    frame = pd.DataFrame(rows, columns=["noise_type", "level_bin", "level_order", "accuracy"])
    return frame.sort_values(["noise_type", "level_order"]).reset_index(drop=True)


def defect_by_level_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Defect accuracy per condition, noise type and level bin: ``condition, noise_type, level_bin, accuracy``."""
    by_level = (report.get("defect") or {}).get("by_level") or {}
    rows = []
    for cond, types in by_level.items():
        for t, bins in (types or {}).items():
            for b, acc in (bins or {}).items():
                if acc is not None:
                    rows.append({"condition": cond, "noise_type": t, "level_bin": b, "accuracy": float(acc)})
    return pd.DataFrame(rows, columns=["condition", "noise_type", "level_bin", "accuracy"])


def denoise_summary_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Mean PSNR/SSIM and speed per noise type and method: ``noise_type, method, psnr, ssim, ms_per_image, n``."""
    cols = ["noise_type", "method", "psnr", "ssim", "ms_per_image", "n"]
    rows = (report.get("denoise") or {}).get("summary") or []
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)


def denoise_samples_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Per-image PSNR/SSIM: ``noise_type, method, level_bin, psnr, ssim`` (for distributions)."""
    cols = ["noise_type", "method", "level_bin", "psnr", "ssim"]
    rows = (report.get("denoise") or {}).get("samples") or []
    frame = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    return frame.astype({"psnr": float, "ssim": float})


def _probability(value: Any) -> float | None:
    try:
        p = float(value)
    except (TypeError, ValueError):
        return None
    return p if 0.0 <= p <= 1.0 else None


def gallery_entries(report: dict[str, Any], report_dir: str | Path) -> list[GalleryEntry]:
    """The report's example photos with absolute paths; files that do not exist come back as None."""
    report_dir = Path(report_dir)

    def resolve(rel: Any) -> Path | None:
        if not rel:
            return None
        p = (report_dir / str(rel)).resolve()
        # A report must not point outside its own folder.
        if report_dir.resolve() not in p.parents or not p.is_file():
            return None
        return p

    entries = []
    for item in report.get("gallery") or []:
        if not isinstance(item, dict) or "noise_type" not in item:
            continue
        entries.append(
            GalleryEntry(
                noise_type=str(item["noise_type"]),
                noisy=resolve(item.get("noisy")),
                denoised=resolve(item.get("denoised")),
                clean=resolve(item.get("clean")),
                spectrum=resolve(item.get("spectrum")),
                heat=resolve(item.get("heat")),
                p_defective=_probability(item.get("p_defective")),
            )
        )
    order = {t: i for i, t in enumerate(NOISE_TYPES)}
    return sorted(entries, key=lambda e: order.get(e.noise_type, len(order)))


def report_summary(report: dict[str, Any]) -> dict[str, Any]:
    """A few facts about the run for a caption: id, created, commit, dataset name and size, model versions."""
    dataset = report.get("dataset") or {}
    models = report.get("models") or {}
    return {
        "id": report.get("id"),
        "created": report.get("created"),
        "commit": report.get("commit", "unknown"),
        "dataset": dataset.get("name"),
        "n_images": dataset.get("n_images"),
        "models": {task: (m or {}).get("version") for task, m in models.items()},
    }


def is_synthetic(report: dict[str, Any]) -> bool:
    """Whether the report's numbers come from synthetic photos rather than photos of real parts.

    A report's ``dataset`` names the folder it was evaluated on: ``inspection demo`` names it ``synthetic``
    and keeps it under ``.../synthetic/``, and ``inspection synth`` writes ``synth_*`` photos. An explicit
    ``dataset.synthetic`` flag, where a report has one, decides alone.
    """
    dataset = report.get("dataset") or {}
    if isinstance(dataset.get("synthetic"), bool):
        return dataset["synthetic"]
    name = str(dataset.get("name") or "").lower()
    parts = [p.lower() for p in Path(str(dataset.get("root") or "")).parts]
    return name.startswith("synth") or any(p.startswith("synth") for p in parts)


def realistic_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Defect accuracy on realistic noise kinds the models never trained on, without and with routing.

    Returns columns ``kind, n, without, with_denoising, gain, safe_path, routes`` (``gain`` in accuracy points,
    ``routes`` as ``type: count`` text); empty when the report has no ``realistic`` block.
    """
    rows = []
    for kind, r in (report.get("realistic") or {}).items():
        without, routed = _metric(r, "accuracy_none"), _metric(r, "accuracy_routed")
        gain = (routed - without) * 100 if without is not None and routed is not None else None
        routes = ", ".join(f"{k}: {v}" for k, v in sorted((r.get("routes") or {}).items()))
        rows.append({"kind": kind, "n": r.get("n"), "without": without, "with_denoising": routed, "gain": gain,
                     "safe_path": r.get("safe_path"), "routes": routes})  # fmt: skip
    return pd.DataFrame(
        rows, columns=["kind", "n", "without", "with_denoising", "gain", "safe_path", "routes"]
    )


CALIBRATED = {"noise": "noise type (top probability)", "defect": "P(defective)"}


def calibration_frame(report: dict[str, Any]) -> pd.DataFrame:
    """The report's reliability diagrams, one row per model and probability bin.

    Returns columns ``model, low, high, n, mean_probability, observed`` (``observed``: how often the top noise
    class was right, or the share of defective photos); empty when the report has no ``calibration`` block
    (reports written before 2026-11-27).
    """
    cols = ["model", "low", "high", "n", "mean_probability", "observed"]
    rows = [
        {"model": CALIBRATED[name], **{c: b.get(c) for c in cols[1:]}}
        for name, block in (report.get("calibration") or {}).items()
        if name in CALIBRATED and isinstance(block, dict)
        for b in block.get("bins") or []
        if isinstance(b, dict)
    ]
    frame = pd.DataFrame(rows, columns=cols)
    return frame.astype({c: float for c in cols[1:]}).astype({"n": int})


def calibration_errors(report: dict[str, Any]) -> dict[str, float | None]:
    """ECE per calibrated model (``noise``, ``defect``), None where the report lacks it."""
    block = report.get("calibration") or {}
    return {name: _metric(block.get(name), "ece") for name in CALIBRATED}


def in_points(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A copy with ``columns`` (differences of two fractions) in accuracy points: 0.265 becomes 26.5."""
    return frame.assign(**{c: frame[c] * 100 for c in columns})


def compare_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`compare_reports` as text: accuracies as ``97.5%``, gains and changes as ``+1.2 pts``."""

    def cell(value: float, gain: bool) -> str:
        if pd.isna(value):
            return "n/a"
        return f"{value * 100:+.1f} pts" if gain else f"{value:.1%}"

    is_gain = table["metric"].str.startswith("gain from denoising")
    return pd.DataFrame({
        "metric": table["metric"],
        "latest": [cell(v, g) for v, g in zip(table["latest"], is_gain, strict=True)],
        "earlier": [cell(v, g) for v, g in zip(table["earlier"], is_gain, strict=True)],
        "change": [cell(v, True) for v in table["change"]],
    })  # fmt: skip
