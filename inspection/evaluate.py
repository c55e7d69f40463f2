"""The evaluation protocol and its report.

Every test photo is corrupted with every noise type under the standard protocol (seeded per photo and
type, at full resolution), then judged four ways: clean, noisy without denoising, noisy with routed
denoising and noisy with oracle routing (the true type). The report is JSON plus Markdown; its format
is documented in docs/report-format.md.

Photos may be of any size. Every condition reports balanced accuracy beside accuracy. When the test photos name
defect kinds (``def_<kind>/`` folders, ``--kinds-only`` or a labels CSV), ``report["kinds"]`` holds, for the
clean and the noisy-routed photos, a confusion matrix of true kind x predicted kind (the model's kinds, or
"defective" for a model without kinds, plus "ok" for a missed defect), each kind's recall of "defective" and,
for a model with kinds, its kind accuracy. A photo that cannot be read is not judged: it is listed under
``dataset.rejected`` with the reason.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from inspection import NOISE_TYPES
from inspection.bundle import load_bundle, resolve_checkpoint_dir, routing_settings
from inspection.configs import EvalConfig
from inspection.data import RejectedPhoto, Sample, dataset_fingerprint, list_split, read_photos
from inspection.denoise import AutoencoderDenoiser
from inspection.imageio import read_image
from inspection.metrics import binary_scores, confusion, psnr, reliability, ssim
from inspection.models import load_checkpoint
from inspection.noise import (
    LEVEL_BINS,
    LEVEL_RANGES,
    REALISTIC_KINDS,
    add_realistic_noise,
    apply_spec,
    protocol_rng,
    sample_spec,
)
from inspection.paths import reports_dir
from inspection.pipeline import InspectionPipeline, PipelineConfig
from inspection.results import percent_text
from inspection.spectrum import log_spectrum_full

log = logging.getLogger(__name__)
NOISY_TYPES = ("gaussian", "salt_pepper", "periodic")
REFERENCE: dict[str, Any] = {
    "source": "arXiv 2404.10664",
    "model": "VGG16",
    "noisy_before": 0.946,
    "noisy_after": 0.970,
    "inception_v3_before": 0.847,
    "inception_v3_after": 0.900,
}


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Evaluation:
    """Accumulates per-photo outcomes, then summarises them into the report."""

    def __init__(self, cfg: EvalConfig) -> None:
        self.cfg = cfg
        bundle = load_bundle(cfg.models or None)
        config = PipelineConfig(**bundle.routing)  # the bundle's own routing, as stations run it
        if cfg.min_confidence >= 0:
            config = replace(config, min_confidence=cfg.min_confidence)
        self.pipe = InspectionPipeline.from_bundle(bundle, config, backend=cfg.backend)
        self.blind = (
            AutoencoderDenoiser(
                load_checkpoint(resolve_checkpoint_dir(Path(cfg.blind_denoiser))).model, version="blind"
            )
            if cfg.blind_denoiser
            else None
        )
        self.aug = (
            InspectionPipeline(
                self.pipe.noise,
                load_checkpoint(resolve_checkpoint_dir(Path(cfg.defect_aug))),
                None,
                PipelineConfig(routes={"clean": "identity"}),
            )
            if cfg.defect_aug
            else None
        )
        self.methods = self._methods()
        self.pred: dict[str, list[bool]] = defaultdict(list)  # condition -> verdicts
        self.truth: dict[str, list[bool]] = defaultdict(list)
        self.meta: dict[str, list[tuple[str, str]]] = defaultdict(list)  # condition -> (type, level bin)
        self.noise_true: list[int] = []
        self.noise_pred: list[int] = []
        self.noise_bins: list[str] = []
        self.noise_confidence: list[float] = []  # the top noise probability, for the reliability diagram
        self.p_defect: list[float] = []  # P(defective) on clean and routed noisy photos, and their labels
        self.p_defect_labels: list[bool] = []
        self.samples: list[dict[str, Any]] = []
        self.timing: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.realistic: dict[str, dict[str, Any]] = {}
        self.erased: list[bool] = []
        self.kind_true: dict[str, list[str]] = defaultdict(list)  # condition -> true kind ("" for none)
        self.kind_pred: dict[str, list[str]] = defaultdict(list)  # condition -> kind, "defective" or "ok"

    def _methods(self) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
        table: dict[str, Callable[[np.ndarray], np.ndarray]] = dict(self.pipe.router.denoisers)
        if self.blind is not None:
            table["blind"] = self.blind
        try:
            import bm3d

            table["bm3d"] = lambda im: np.clip(
                np.rint(bm3d.bm3d(im / 255.0, sigma_psd=_sigma(im) / 255.0) * 255), 0, 255
            ).astype(np.uint8)
        except ImportError:
            pass
        missing = [m for m in self.cfg.methods if m not in table]
        if missing:
            log.warning("denoising methods %s are not available here and are skipped", missing)
        return {m: table[m] for m in self.cfg.methods if m in table}

    def record(
        self, condition: str, pred: np.ndarray, labels: np.ndarray, kind: str, bins: list[str]
    ) -> None:
        self.pred[condition].extend(bool(p) for p in pred)
        self.truth[condition].extend(bool(v) for v in labels)
        self.meta[condition].extend((kind, b) for b in bins)

    def verdicts(self, pipe: InspectionPipeline, grays: list[np.ndarray]) -> np.ndarray:
        return pipe.defect_probability(grays) >= pipe.threshold

    def judge(
        self, pipe: InspectionPipeline, grays: list[np.ndarray], labels: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """Verdicts, and what each photo was called: its kind (``defective`` without kinds) or ``ok``. With
        ``labels``, P(defective) and the labels are kept for the calibration section."""
        p_defect, p_kinds = pipe.defect_outputs(grays)
        if labels is not None:
            self.p_defect.extend(float(p) for p in p_defect)
            self.p_defect_labels.extend(bool(y) for y in labels)
        pred = p_defect >= pipe.threshold
        names = [
            ("ok" if not d else pipe.kinds[int(np.argmax(pk))] if pipe.kinds else "defective")
            for d, pk in zip(pred, p_kinds, strict=True)
        ]
        return pred, names

    def record_kinds(self, condition: str, true: list[str], pred: list[str]) -> None:
        self.kind_true[condition].extend(true)
        self.kind_pred[condition].extend(pred)

    def run_chunk(
        self, start: int, clean: list[np.ndarray], labels: np.ndarray, kinds: list[str] | None = None
    ) -> None:
        """Judge one chunk of clean photos (the ``start``-th onwards), then each under every protocol noise type
        and, with ``realistic``, every realistic kind; each photo's noise is seeded by its place in the split."""
        kinds = kinds if kinds is not None else [""] * len(clean)
        clean_pred, clean_names = self.judge(self.pipe, clean, labels)
        self.record("clean", clean_pred, labels, "clean", ["none"] * len(clean))
        self.record_kinds("clean", kinds, clean_names)
        if self.aug is not None:
            self.record("aug_clean", self.verdicts(self.aug, clean), labels, "clean", ["none"] * len(clean))
        for k, kind in enumerate(NOISE_TYPES):
            self.run_noise_type(start, k, kind, clean, labels, kinds, clean_pred)
        if self.cfg.realistic:
            self.run_realistic(start, clean, labels)

    def run_noise_type(
        self,
        start: int,
        k: int,
        kind: str,
        clean: list[np.ndarray],
        labels: np.ndarray,
        kinds: list[str],
        clean_pred: np.ndarray,
    ) -> None:
        """One protocol noise type on a chunk: the noise classifier, the routed, unrouted and oracle verdicts, the
        optional blind and augmented models, and each denoising method's quality and time."""
        pipe, seed = self.pipe, self.cfg.seed
        specs = [sample_spec(kind, protocol_rng(seed, start + j, k)) for j in range(len(clean))]
        noisy = [
            apply_spec(im, s, protocol_rng(seed, start + j, 100 + k))
            for j, (im, s) in enumerate(zip(clean, specs, strict=True))
        ]
        bins = [s.level_bin for s in specs]
        probs = pipe.classify_noise(noisy)
        self.noise_true.extend([k] * len(noisy))
        self.noise_pred.extend(int(i) for i in probs.argmax(1))
        self.noise_confidence.extend(float(c) for c in probs.max(1))
        self.noise_bins.extend(bins)
        routed = pipe.denoise(noisy, [d for _, d, _ in pipe.route(probs, noisy)])
        routed_pred, routed_names = self.judge(pipe, routed, labels if kind != "clean" else None)
        if kind == "clean":
            self.record("clean_routed", routed_pred, labels, kind, bins)
            return
        self.record_kinds("noisy_routed", kinds, routed_names)
        oracle = pipe.denoise(noisy, [pipe.router.denoiser_for_photo(kind, p) for p in noisy])
        self.record("noisy_none", self.verdicts(pipe, noisy), labels, kind, bins)
        self.record("noisy_routed", routed_pred, labels, kind, bins)
        self.record("noisy_oracle", self.verdicts(pipe, oracle), labels, kind, bins)
        self.erased.extend(
            bool(c and not r) for c, r, y in zip(clean_pred, routed_pred, labels, strict=True) if y
        )
        if self.blind is not None:
            self.record(
                "noisy_blind", self.verdicts(pipe, self.blind.denoise_batch(noisy)), labels, kind, bins
            )
        if self.aug is not None:
            self.record("aug_noisy_none", self.verdicts(self.aug, noisy), labels, kind, bins)
            self.record("aug_noisy_routed", self.verdicts(self.aug, routed), labels, kind, bins)
        for j, (c, n, r) in enumerate(zip(clean, noisy, routed, strict=True)):
            self.add_sample(kind, "routed", bins[j], c, r)
            self.add_sample(kind, "none", bins[j], c, n)
            for name, fn in self.methods.items():
                t0 = time.perf_counter()
                d = fn(n)
                self.timing[(kind, name)].append((time.perf_counter() - t0) * 1e3)
                self.add_sample(kind, name, bins[j], c, d)

    def add_sample(self, kind: str, method: str, level_bin: str, clean: np.ndarray, out: np.ndarray) -> None:
        self.samples.append(
            {
                "noise_type": kind,
                "method": method,
                "level_bin": level_bin,
                "psnr": psnr(clean, out),
                "ssim": ssim(clean, out),
            }
        )

    def run_realistic(self, start: int, clean: list[np.ndarray], labels: np.ndarray) -> None:
        """Each realistic noise kind (never trained on) on a chunk: routes taken and verdicts routed and unrouted."""
        pipe = self.pipe
        for k, kind in enumerate(REALISTIC_KINDS):
            noisy = [
                add_realistic_noise(im, kind, protocol_rng(self.cfg.seed, start + j, 200 + k))
                for j, im in enumerate(clean)
            ]
            probs = pipe.classify_noise(noisy)
            routes = pipe.route(probs, noisy)
            routed = pipe.denoise(noisy, [d for _, d, _ in routes])
            entry = self.realistic.setdefault(
                kind, {"routes": defaultdict(int), "none": [], "routed": [], "labels": [], "safe": 0}
            )
            for t, den, unsure in routes:
                entry["routes"][f"{t}->{den.name}"] += 1
                entry["safe"] += int(unsure)
            entry["none"].extend(self.verdicts(pipe, noisy))
            entry["routed"].extend(self.verdicts(pipe, routed))
            entry["labels"].extend(labels)

    def summary(self) -> dict[str, Any]:
        """The report's measured sections: noise classifier, calibration, denoising, defects, realistic, kinds."""
        report: dict[str, Any] = {**self.noise_summary(), **self.denoise_summary(), **self.defect_summary()}
        if self.realistic:
            report["realistic"] = {kind: realistic_summary(e) for kind, e in self.realistic.items()}
        if any(any(k for k in true) for true in self.kind_true.values()):
            report["kinds"] = {
                cond: kind_summary(self.kind_true[cond], self.kind_pred[cond], self.pipe.kinds)
                for cond in ("clean", "noisy_routed")
                if cond in self.kind_true
            }
        return report

    def noise_summary(self) -> dict[str, Any]:
        """The noise classifier's accuracy, recall, confusion and accuracy by level; both models' calibration."""
        t, p = np.array(self.noise_true), np.array(self.noise_pred)
        bins = np.array(self.noise_bins)
        classifier = {
            "accuracy": float((t == p).mean()),
            "recall": {n: float((p[t == k] == k).mean()) for k, n in enumerate(NOISE_TYPES)},
            "confusion": {"labels": list(NOISE_TYPES), "matrix": confusion(t, p, len(NOISE_TYPES)).tolist()},
            "accuracy_by_level": {
                n: {
                    b: float((p[(t == k) & (bins == b)] == k).mean())
                    for b in LEVEL_BINS
                    if ((t == k) & (bins == b)).any()
                }
                for k, n in enumerate(NOISE_TYPES)
                if n in LEVEL_RANGES
            },
        }
        calibration = {
            "noise": reliability(np.array(self.noise_confidence), t == p),
            "defect": reliability(np.array(self.p_defect), np.array(self.p_defect_labels)),
        }
        return {"noise_classifier": classifier, "calibration": calibration}

    def denoise_summary(self) -> dict[str, Any]:
        """PSNR, SSIM and time of each (noise type, method), and the routed and oracle PSNR per noise type."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for s in self.samples:
            groups[(s["noise_type"], s["method"])].append(s)
        summary = []
        for (kind, method), rows in sorted(groups.items()):
            times = self.timing.get((kind, method))
            summary.append(
                {
                    "noise_type": kind,
                    "method": method,
                    "n": len(rows),
                    "psnr": float(np.mean([r["psnr"] for r in rows])),
                    "ssim": float(np.mean([r["ssim"] for r in rows])),
                    "ms_per_image": float(np.mean(times)) if times else None,
                }
            )
        by = {(r["noise_type"], r["method"]): r for r in summary}
        routes = self.pipe.config.routes
        return {
            "denoise": {"summary": summary, "samples": self.samples},
            "denoise_psnr": {k: by[(k, "routed")]["psnr"] for k in NOISY_TYPES if (k, "routed") in by},
            "denoise_psnr_oracle": {
                k: by[(k, routes[k])]["psnr"] for k in NOISY_TYPES if (k, routes[k]) in by
            },
        }

    def defect_summary(self) -> dict[str, Any]:
        """Defect scores per condition, per noise type and per level; headline accuracies; defect erasure."""
        conditions, per_type, by_level = {}, {}, {}
        for cond in self.pred:
            pred, truth = np.array(self.pred[cond]), np.array(self.truth[cond])
            kinds = np.array([m[0] for m in self.meta[cond]])
            lbins = np.array([m[1] for m in self.meta[cond]])
            conditions[cond] = binary_scores(pred, truth)
            if cond.startswith(("noisy", "aug_noisy")):
                per_type[cond] = {k: binary_scores(pred[kinds == k], truth[kinds == k]) for k in NOISY_TYPES}
                by_level[cond] = {
                    k: {
                        b: float((pred[sel] == truth[sel]).mean())
                        for b in LEVEL_BINS
                        if (sel := (kinds == k) & (lbins == b)).any()
                    }
                    for k in NOISY_TYPES
                }
        return {
            "defect": {"conditions": conditions, "per_type": per_type, "by_level": by_level},
            "defect_accuracy": {
                **{
                    c: conditions[c]["accuracy"]
                    for c in ("clean", "noisy_none", "noisy_routed", "noisy_oracle")
                },
                "noisy_routed_per_type": {k: per_type["noisy_routed"][k]["accuracy"] for k in NOISY_TYPES},
            },
            "defect_erasure": float(np.mean(self.erased)) if self.erased else 0.0,
        }


def realistic_summary(entry: dict[str, Any]) -> dict[str, Any]:
    """One realistic noise kind: routes taken, photos sent down the safe path, accuracy unrouted and routed."""
    y = np.array(entry["labels"], bool)
    return {
        "routes": dict(entry["routes"]),
        "safe_path": entry["safe"],
        "accuracy_none": binary_scores(np.array(entry["none"]), y)["accuracy"],
        "accuracy_routed": binary_scores(np.array(entry["routed"]), y)["accuracy"],
        "n": len(y),
    }


def kind_summary(true: list[str], pred: list[str], model_kinds: list[str]) -> dict[str, Any]:
    """Per true kind: counts of what the photos were called, recall of "defective" and kind accuracy.

    Columns are the model's kinds (``defective`` for a model without kinds) and ``ok`` (a missed defect); rows
    the true kinds, the model's in its order first, then kinds it never learned. Photos without a kind are left
    out.
    """
    present = {k for k in true if k}
    rows = [k for k in model_kinds if k in present] + sorted(present - set(model_kinds))
    columns = [*(model_kinds or ["defective"]), "ok"]
    matrix = [[0] * len(columns) for _ in rows]
    for t, p in zip(true, pred, strict=True):
        if t:
            matrix[rows.index(t)][columns.index(p)] += 1
    n = {k: sum(row) for k, row in zip(rows, matrix, strict=True)}
    recall = {k: 1.0 - row[-1] / n[k] for k, row in zip(rows, matrix, strict=True)}
    accuracy: dict[str, float | None] = {
        k: (row[columns.index(k)] / n[k] if k in model_kinds else None)
        for k, row in zip(rows, matrix, strict=True)
    }
    return {
        "true": rows,
        "predicted": columns,
        "matrix": matrix,
        "n": n,
        "recall_defective": recall,
        "kind_accuracy": accuracy,
    }


def _sigma(im: np.ndarray) -> float:
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(im))


def _spectrum_png(gray: np.ndarray) -> np.ndarray:
    s = log_spectrum_full(gray)
    return np.clip((s - s.min()) / (s.max() - s.min() + 1e-6) * 255, 0, 255).astype(np.uint8)


def write_gallery(
    ev: Evaluation, clean: np.ndarray, out: Path, seed: int, index: int
) -> list[dict[str, str]]:
    """One example per noise type: noisy, routed-denoised, clean, the noisy photo's spectrum, and the defect
    model's heat map (LayerCAM, :mod:`inspection.explain`) over the denoised photo it judged."""
    from inspection.explain import Explainer, overlay  # torch hooks; only the gallery needs them

    out.mkdir(parents=True, exist_ok=True)
    explainer = Explainer.from_checkpoint(ev.pipe.defect)
    entries = []
    for k, kind in enumerate(NOISE_TYPES):
        noisy = apply_spec(
            clean, sample_spec(kind, protocol_rng(seed, index, k)), protocol_rng(seed, index, 100 + k)
        )
        probs = ev.pipe.classify_noise([noisy])
        denoised = ev.pipe.denoise([noisy], [ev.pipe.route(probs, [noisy])[0][1]])[0]
        [heat] = explainer([denoised])
        files = {
            "noisy": noisy,
            "denoised": denoised,
            "clean": clean,
            "spectrum": _spectrum_png(noisy),
            "heat": cv2.cvtColor(overlay(denoised, heat.heat), cv2.COLOR_RGB2BGR),
        }
        entry: dict[str, Any] = {"noise_type": kind, "predicted": NOISE_TYPES[int(probs.argmax())]}
        for role, img in files.items():
            cv2.imwrite(str(out / f"{kind}_{role}.png"), img)
            entry[role] = f"gallery/{kind}_{role}.png"
        entry["p_defective"] = round(heat.p_defective, 4)
        entries.append(entry)
    return entries


def evaluate(cfg: EvalConfig) -> tuple[dict[str, Any], Path]:
    """Run the protocol on ``cfg.data``'s split and write the report folder; returns (report, folder).

    ``cfg.backend`` runs the bundle's models as ``inspection score --backend`` does (its export, for onnxruntime
    or openvino), so the autoencoder's time per photo is the one a station on that runtime pays; the other
    denoisers are the same code on every backend.
    """
    t_start = time.monotonic()
    root = cfg.data or str(Path(cfg.labels).parent)
    listed = list_split(root, cfg.split, kinds_only=cfg.kinds_only, labels=cfg.labels or None)
    if cfg.max_images and cfg.max_images < len(listed):
        listed = [listed[i] for i in np.linspace(0, len(listed) - 1, cfg.max_images).round().astype(int)]
    ev, samples, rejected = _run_protocol(cfg, listed)
    labels = np.array([s.label for s in samples])
    name = cfg.name or Path(root).resolve().name
    created = datetime.now(UTC)
    report_id = f"{created:%Y%m%dT%H%M%SZ}-{name}"
    folder = Path(cfg.reports or reports_dir()) / report_id
    gallery_idx = int(np.flatnonzero(labels == 1)[0]) if labels.any() else 0
    report: dict[str, Any] = {
        "schema_version": 1,
        "id": report_id,
        "created": created.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "dataset": _dataset_section(cfg, root, name, samples, rejected),
        "protocol": {
            "name": "standard",
            "seed": cfg.seed,
            "levels": {k: list(v) for k, v in LEVEL_RANGES.items()},
            "periodic_radius_cycles": [6, 60],
            "periodic_two_wave_share": 0.3,
        },
        "models": _models_section(ev.pipe),
        "backend": cfg.backend,
        "routes": dict(ev.pipe.config.routes),
        "routing": routing_settings(ev.pipe.config),
        "config": json.loads(json.dumps(asdict(cfg))),
        **ev.summary(),
        "reference": REFERENCE,
        "gallery": write_gallery(
            ev, read_image(samples[gallery_idx].path).gray, folder / "gallery", cfg.seed, gallery_idx
        ),
        "seconds": round(time.monotonic() - t_start, 1),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(_finite(report), indent=1, allow_nan=False) + "\n")
    (folder / "report.md").write_text(render_markdown(report))
    return report, folder


def _run_protocol(
    cfg: EvalConfig, listed: list[Sample]
) -> tuple[Evaluation, list[Sample], list[RejectedPhoto]]:
    """Run every readable photo through the protocol, a batch at a time; the photos that could not be read are
    returned with their reasons.

    Raises:
        FileNotFoundError: no photo could be read.
    """
    ev = Evaluation(cfg)
    samples: list[Sample] = []
    rejected: list[RejectedPhoto] = []
    for start in tqdm(range(0, len(listed), cfg.batch_size), desc="evaluate", disable=cfg.quiet):
        photos, chunk, bad = read_photos(listed[start : start + cfg.batch_size])
        rejected += bad
        if chunk:
            # Seeds follow the photo's place in the kept list, so a rejected photo does not shift the rest.
            ev.run_chunk(len(samples), photos, np.array([s.label for s in chunk]), [s.kind for s in chunk])
            samples += chunk
    if not samples:
        raise FileNotFoundError(f"none of the {len(listed)} photos of split {cfg.split!r} could be read")
    return ev, samples, rejected


def _dataset_section(
    cfg: EvalConfig, root: str, name: str, samples: list[Sample], rejected: list[RejectedPhoto]
) -> dict[str, Any]:
    """The report's ``dataset``: where the photos came from, their fingerprint, and each rejected photo."""
    return {
        "name": name,
        "root": str(Path(root).resolve()),
        "split": cfg.split,
        "n_images": len(samples),
        "sha256": dataset_fingerprint(samples)["sha256"],
        "rejected": [{"path": str(r.path), "reason": r.reason, "message": r.message} for r in rejected],
        **({"labels_csv": str(Path(cfg.labels).resolve())} if cfg.labels else {}),
    }


def _models_section(pipe: InspectionPipeline) -> dict[str, dict[str, str]]:
    """The report's ``models``: version and architecture of the noise, defect and (where one runs) denoiser
    models."""
    models = {
        task: {"version": ck.version, "architecture": ck.meta["architecture"]}
        for task, ck in (("noise", pipe.noise), ("defect", pipe.defect))
    }
    if "denoiser" in pipe.model_versions:
        models["denoiser"] = {
            "version": pipe.model_versions["denoiser"],
            "architecture": pipe.architectures["denoiser"],
        }
    return models


def _finite(o: Any) -> Any:
    """NaN (a metric over an empty subset, e.g. sensitivity with no defective photo) becomes JSON null."""
    if isinstance(o, float):
        return None if o != o else o
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def accuracy_table(report: dict[str, Any]) -> str:
    """The headline: defect accuracy with and without denoising, per noise type."""
    cond = report["defect"]["conditions"]
    per = report["defect"]["per_type"]
    names = [
        ("noisy_none", "noisy, no denoising"),
        ("noisy_routed", "noisy, routed denoising"),
        ("noisy_oracle", "noisy, oracle routing"),
        ("noisy_blind", "noisy, one blind denoiser"),
        ("aug_noisy_none", "noise-augmented classifier, no denoising"),
        ("aug_noisy_routed", "noise-augmented classifier, routed denoising"),
    ]
    lines = [
        "| photos | accuracy | balanced accuracy | sensitivity | specificity | F1 | gaussian | salt_pepper "
        "| periodic |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    c = cond["clean"]
    lines.append(
        f"| clean | {percent_text(c['accuracy'])} | {percent_text(c.get('balanced_accuracy'))} | {percent_text(c['sensitivity'])} | "
        f"{percent_text(c['specificity'])} | {percent_text(c['f1'])} | | | |"
    )
    for key, label in names:
        if key in cond:
            c = cond[key]
            types = " | ".join(percent_text(per[key][k]["accuracy"]) for k in NOISY_TYPES)
            lines.append(
                f"| {label} | {percent_text(c['accuracy'])} | {percent_text(c.get('balanced_accuracy'))} | "
                f"{percent_text(c['sensitivity'])} | {percent_text(c['specificity'])} | {percent_text(c['f1'])} | {types} |"
            )
    return "\n".join(lines)


def kinds_table(report: dict[str, Any]) -> str:
    """Per-kind confusion matrices (true kind x what the part was called), clean and noisy-routed."""
    out: list[str] = []
    titles = {"clean": "clean photos", "noisy_routed": "noisy photos, routed denoising"}
    for cond, k in report.get("kinds", {}).items():
        cols = k["predicted"]
        out += [
            f"Defect kinds, {titles.get(cond, cond)}:",
            "",
            "| true kind \\ called | "
            + " | ".join(cols)
            + " | photos | recall (defective) | kind accuracy |",
            "|---" * (len(cols) + 4) + "|",
        ]
        for name, row in zip(k["true"], k["matrix"], strict=True):
            out.append(
                f"| {name} | " + " | ".join(str(v) for v in row) + f" | {k['n'][name]} | "
                f"{percent_text(k['recall_defective'][name])} | {percent_text(k['kind_accuracy'][name])} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n" if out else ""


def render_markdown(report: dict[str, Any]) -> str:
    nc = report["noise_classifier"]
    out = [
        f"# Evaluation {report['id']}",
        "",
        f"Dataset `{report['dataset']['name']}` ({report['dataset']['n_images']} photos, split "
        f"`{report['dataset']['split']}`), commit `{report['commit']}`, seed {report['protocol']['seed']}.",
        "",
        "## Defect classification",
        "",
        accuracy_table(report),
        "",
        f"Defect erasure (defective on the clean photo, ok after noise + routed denoising): "
        f"{percent_text(report['defect_erasure'])}. Reference study (VGG16): noisy {percent_text(REFERENCE['noisy_before'])} -> "
        f"denoised {percent_text(REFERENCE['noisy_after'])}.",
        "",
        *(["## Defect kinds", "", kinds_table(report)] if report.get("kinds") else []),
        "## Noise classifier",
        "",
        f"Accuracy {percent_text(nc['accuracy'])}.",
        "",
        "| true \\ predicted | " + " | ".join(NOISE_TYPES) + " | recall |",
        "|---" * (len(NOISE_TYPES) + 2) + "|",
    ]
    for name, row in zip(NOISE_TYPES, nc["confusion"]["matrix"], strict=True):
        out.append(
            f"| {name} | " + " | ".join(str(v) for v in row) + f" | {percent_text(nc['recall'][name])} |"
        )
    out += [
        "",
        "## Denoising (PSNR dB / SSIM / ms per image)",
        "",
        f"The bundle's models run by {report.get('backend', 'torch')} (a blind denoiser, an augmented defect "
        "model and the gallery's explanations by torch); each method's time is one photo at a time.",
        "",
        "| noise | method | PSNR | SSIM | ms |",
        "|---|---|---|---|---|",
    ]
    for r in report["denoise"]["summary"]:
        ms = "-" if r["ms_per_image"] is None else f"{r['ms_per_image']:.1f}"
        out.append(f"| {r['noise_type']} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {ms} |")
    if "realistic" in report:
        out += [
            "",
            "## Realistic noise (never trained on)",
            "",
            "| noise | accuracy, no denoising | accuracy, routed | safe path | routes |",
            "|---|---|---|---|---|",
        ]
        for kind, r in report["realistic"].items():
            routes = ", ".join(f"{k}: {v}" for k, v in sorted(r["routes"].items()))
            out.append(
                f"| {kind} | {percent_text(r['accuracy_none'])} | {percent_text(r['accuracy_routed'])} | {r['safe_path']} "
                f"| {routes} |"
            )
    return "\n".join(out) + "\n"
