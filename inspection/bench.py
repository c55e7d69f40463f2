"""Speed benchmark: the routed pipeline against a reference-equivalent configuration, in one run.

The reference-equivalent configuration is what the reference study (arXiv 2404.10664) runs per part:
VGG16 at 224x224 on the spectrum, its autoencoder at 256x256 on every photo, VGG16 at 224x224 for defects.
Its weights are untrained here: only its cost matters.

With a backend other than torch (``--backend onnxruntime|openvino``) the bundle's export is timed, and the same
photos are judged by the torch backend too: the parity report (:func:`parity_report`) counts the photos routed
and judged alike and the largest differences in noise probabilities, defect probabilities and OOD scores.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from inspection import NOISE_TYPES
from inspection.configs import BenchConfig
from inspection.data import list_split, load_images, synth_casting
from inspection.models import create_model
from inspection.noise import add_noise
from inspection.pipeline import InspectionPipeline
from inspection.results import InspectionResult, Rejection
from inspection.spectrum import log_spectrum


def noisy_mix(cfg: BenchConfig) -> list[np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    if cfg.data:
        samples = list_split(cfg.data, "test")
        pick = rng.permutation(len(samples))[: cfg.n]
        clean = list(load_images([samples[i] for i in pick]))
    else:
        clean = [
            synth_casting(rng, cfg.size, None if rng.random() < 0.5 else "blowhole") for _ in range(cfg.n)
        ]
    return [add_noise(im, NOISE_TYPES[i % 4], rng=rng) for i, im in enumerate(clean)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_pipeline(pipe: InspectionPipeline, photos: Sequence[np.ndarray], batch: int) -> dict[str, Any]:
    """Throughput over all photos, and latency: a part waits for its whole batch, so that is its latency."""
    pipe.inspect_batch(list(photos[: min(batch, 4)]))  # warm-up: allocator, oneDNN primitives
    latencies, stages = [], {k: 0.0 for k in ("decode", "noise", "denoise", "defect")}
    t_all = time.perf_counter()
    for i in range(0, len(photos), batch):
        chunk = photos[i : i + batch]
        t0 = time.perf_counter()
        results = pipe.inspect_batch(list(chunk))
        latencies += [(time.perf_counter() - t0) * 1e3] * len(chunk)
        for r in results:
            for k in stages:
                stages[k] += r.timings_ms[k]  # type: ignore[union-attr]
    wall = time.perf_counter() - t_all
    lat = np.array(latencies)
    return {
        "batch": batch,
        "n": len(photos),
        "ms_per_part": 1e3 * wall / len(photos),
        "parts_per_s": len(photos) / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "stage_ms": {k: v / len(photos) for k, v in stages.items()},
    }


@torch.inference_mode()
def time_reference(photos: Sequence[np.ndarray], batch: int = 32) -> dict[str, Any]:
    """The reference-equivalent configuration, warmed up like the pipeline, on the same photos."""
    torch.manual_seed(0)
    noise_net = create_model("freq_vgg16").eval()
    ae = create_model("ae_reference").eval()
    defect_net = create_model("defect_vgg16").eval()

    def run(chunk: Sequence[np.ndarray]) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        noise_net(torch.from_numpy(np.stack([log_spectrum(p, 224) for p in chunk]))[:, None])
        t1 = time.perf_counter()
        x = torch.from_numpy(np.stack([cv2.resize(p, (256, 256)) for p in chunk])).float()[:, None] / 255
        y = ae(x)
        t2 = time.perf_counter()
        defect_net(torch.nn.functional.interpolate(y, size=(224, 224), mode="bilinear"))
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    run(photos[:2])  # warm-up
    stages = {"spectrum+noise": 0.0, "denoise": 0.0, "defect": 0.0}
    t_all = time.perf_counter()
    for i in range(0, len(photos), batch):
        for k, dt in zip(stages, run(photos[i : i + batch]), strict=True):
            stages[k] += dt * 1e3
    wall = time.perf_counter() - t_all
    return {
        "batch": batch,
        "n": len(photos),
        "ms_per_part": 1e3 * wall / len(photos),
        "parts_per_s": len(photos) / wall,
        "stage_ms": {k: v / len(photos) for k, v in stages.items()},
    }


def judge_all(pipe: InspectionPipeline, photos: Sequence[np.ndarray], batch: int = 32) -> list[Any]:
    """``pipe.inspect_batch`` over all photos, ``batch`` at a time."""
    return [r for i in range(0, len(photos), batch) for r in pipe.inspect_batch(list(photos[i : i + batch]))]


def _route(r: InspectionResult) -> tuple[str, str, bool]:
    return r.noise_type, r.denoiser, r.safe_path


def parity_report(
    reference: Sequence[InspectionResult | Rejection], candidate: Sequence[InspectionResult | Rejection]
) -> dict[str, Any]:
    """How alike two backends judged the same photos: agreement of routes (noise type, denoiser, safe path) and
    verdicts, and the largest ``|delta|`` of noise probabilities, defect probabilities and OOD scores.

    A photo one backend rejects and the other judges counts against both agreements.
    """
    both = [
        (a, b)
        for a, b in zip(reference, candidate, strict=True)
        if isinstance(a, InspectionResult) and isinstance(b, InspectionResult)
    ]
    rejected = sum(
        isinstance(a, Rejection) and isinstance(b, Rejection)
        for a, b in zip(reference, candidate, strict=True)
    )
    noise = [abs(a.noise_probabilities[t] - b.noise_probabilities[t]) for a, b in both for t in NOISE_TYPES]
    ood = [
        abs(a.ood_score - b.ood_score) for a, b in both if a.ood_score is not None and b.ood_score is not None
    ]
    return {
        "n": len(reference),
        "judged": len(both),
        "rejected_by_both": int(rejected),
        "routes_agree": sum(_route(a) == _route(b) for a, b in both),
        "verdicts_agree": sum(a.verdict == b.verdict for a, b in both),
        "ood_flags_agree": sum(a.ood == b.ood for a, b in both),
        "max_delta_noise_p": float(max(noise, default=0.0)),
        "max_delta_defect_p": float(
            max((abs(a.defect_probability - b.defect_probability) for a, b in both), default=0.0)
        ),
        "max_delta_ood_score": float(max(ood)) if ood else None,
    }


def model_parity(
    reference: InspectionPipeline,
    candidate: InspectionPipeline,
    photos: Sequence[np.ndarray],
    batch: int = 32,
) -> dict[str, Any]:
    """Each model of ``candidate`` on the very inputs ``reference`` gives its own: the noise model on the photos,
    the denoisers on the photos as ``reference`` routes them, the defect model and OOD check on ``reference``'s
    denoised photos. End to end, a denoised pixel that lands a hair either side of a rounding boundary becomes
    one gray level apart; this keeps what the export changes apart from what that rounding then carries on."""
    out = {"max_delta_noise_p": 0.0, "max_delta_defect_p": 0.0, "max_delta_ood_score": 0.0}
    out |= {"denoised_photos_differing": 0, "denoised_pixels_differing": 0, "denoised_max_gray_delta": 0}
    own = dict(candidate.router.denoisers)
    for i in range(0, len(photos), batch):
        grays = list(photos[i : i + batch])
        probs = reference.classify_noise(grays)
        delta = np.abs(probs - candidate.classify_noise(grays)).max()
        out["max_delta_noise_p"] = max(out["max_delta_noise_p"], float(delta))
        routed = [d for _, d, _ in reference.route(probs, grays)]
        clean = reference.denoise(grays, routed)
        for a, b in zip(clean, candidate.denoise(grays, [own[d.name] for d in routed]), strict=True):
            differ = a != b
            out["denoised_photos_differing"] += int(differ.any())
            out["denoised_pixels_differing"] += int(differ.sum())
            gray_delta = int(np.abs(a.astype(int) - b).max())
            out["denoised_max_gray_delta"] = max(out["denoised_max_gray_delta"], gray_delta)
        p_ref, _, ood_ref = reference.defect_and_ood(clean)
        p_new, _, ood_new = candidate.defect_and_ood(clean)
        out["max_delta_defect_p"] = max(out["max_delta_defect_p"], float(np.abs(p_ref - p_new).max()))
        if ood_ref is not None and ood_new is not None:
            ood_delta = float(np.abs(ood_ref - ood_new).max())
            out["max_delta_ood_score"] = max(out["max_delta_ood_score"], ood_delta)
    return out


def run_bench(cfg: BenchConfig, backend: str = "torch") -> dict[str, Any]:
    """Time the pipeline on ``backend`` (and the reference-equivalent configuration); with a backend other than
    torch, also the parity report against torch on the same photos."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    photos = noisy_mix(cfg)
    pipe = InspectionPipeline.from_dir(cfg.models or None, workers=cfg.workers, backend=backend)
    out: dict[str, Any] = {
        "photos": {
            "n": len(photos),
            "shape": list(photos[0].shape),
            "source": cfg.data or f"synthetic {cfg.size}px",
        },
        "threads": torch.get_num_threads(),
        "workers": pipe.workers,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "models": pipe.model_versions,
        "backend": backend,
        "pipeline": {},
    }
    for b in cfg.batch_sizes:
        out["pipeline"][f"b{b}"] = time_pipeline(pipe, photos, b)
    out["peak_rss_mb_pipeline"] = peak_rss_mb()
    if cfg.reference_n:
        ref = time_reference(photos[: cfg.reference_n], 32)
        out["reference"] = ref
        largest = f"b{max(cfg.batch_sizes)}"
        out["speedup_vs_reference"] = ref["ms_per_part"] / out["pipeline"][largest]["ms_per_part"]
        out["speedup_batch"] = max(cfg.batch_sizes)
        out["peak_rss_mb_with_reference"] = peak_rss_mb()
    if backend != "torch":
        reference = InspectionPipeline.from_dir(cfg.models or None, workers=cfg.workers)
        out["parity"] = parity_report(judge_all(reference, photos), judge_all(pipe, photos))
        out["parity"]["models"] = model_parity(reference, pipe, photos)
        reference.close()
    pipe.close()
    return out


def render(result: dict[str, Any]) -> str:
    lines = [
        f"photos: {result['photos']['n']} x {result['photos']['shape']} ({result['photos']['source']}), "
        f"noisy mix of {', '.join(NOISE_TYPES)}; torch threads {result['threads']}, "
        f"pipeline workers {result.get('workers', 1)}; backend {result.get('backend', 'torch')}",
        "",
        "| config | batch | ms/part | parts/s | p50 latency ms | p99 latency ms | decode | noise | denoise | defect |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    backend = result.get("backend", "torch")
    label = "" if backend == "torch" else f" ({backend})"
    for r in result["pipeline"].values():
        s = r["stage_ms"]
        lines.append(
            f"| routed pipeline{label} | {r['batch']} | {r['ms_per_part']:.2f} | {r['parts_per_s']:.1f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {s['decode']:.2f} | {s['noise']:.2f} | "
            f"{s['denoise']:.2f} | {s['defect']:.2f} |"
        )
    if "reference" in result:
        r = result["reference"]
        s = r["stage_ms"]
        lines.append(
            f"| reference-equivalent | {r['batch']} | {r['ms_per_part']:.1f} | {r['parts_per_s']:.2f} | - | - "
            f"| - | {s['spectrum+noise']:.1f} | {s['denoise']:.1f} | {s['defect']:.1f} |"
        )
        lines += [
            "",
            f"speedup at batch {result['speedup_batch']}: {result['speedup_vs_reference']:.1f}x "
            "(reference-equivalent at batch 32, same photos)",
        ]
    lines.append(
        f"peak RSS: {result['peak_rss_mb_pipeline']:.0f} MB (pipeline)"
        + (
            f", {result['peak_rss_mb_with_reference']:.0f} MB after the reference run"
            if "peak_rss_mb_with_reference" in result
            else ""
        )
    )
    if "parity" in result:
        lines += ["", render_parity(result["parity"], result["backend"])]
    return "\n".join(lines)


def render_parity(p: dict[str, Any], backend: str) -> str:
    """The parity report as one paragraph."""
    ood = "n/a (no OOD model)" if p["max_delta_ood_score"] is None else f"{p['max_delta_ood_score']:.2e}"
    lines = [
        f"parity of {backend} against torch on the same {p['n']} photos ({p['judged']} judged by both, "
        f"{p['rejected_by_both']} rejected by both):",
        f"- end to end: routes agree {p['routes_agree']}/{p['judged']}, verdicts {p['verdicts_agree']}/"
        f"{p['judged']}, OOD flags {p.get('ood_flags_agree', '?')}/{p['judged']}; max |delta p| noise "
        f"{p['max_delta_noise_p']:.2e}, defect {p['max_delta_defect_p']:.2e}; max |delta OOD score| {ood}",
    ]
    if "models" in p:
        m = p["models"]
        lines.append(
            f"- each model on torch's inputs: max |delta p| noise {m['max_delta_noise_p']:.2e}, defect "
            f"{m['max_delta_defect_p']:.2e}; max |delta OOD score| {m['max_delta_ood_score']:.2e}; denoised "
            f"photos differing {m['denoised_photos_differing']}/{p['n']} ({m['denoised_pixels_differing']} "
            f"pixels, at most {m['denoised_max_gray_delta']} gray level(s))"
        )
    return "\n".join(lines)


def save(result: dict[str, Any], path: str | Path) -> None:
    import json

    Path(path).write_text(json.dumps(result, indent=1) + "\n")
