"""Speed benchmark: the routed pipeline against a reference-equivalent configuration, in one run.

The reference-equivalent configuration is what the reference study (arXiv 2404.10664) runs per part:
VGG16 at 224x224 on the spectrum, its autoencoder at 256x256 on every photo, VGG16 at 224x224 for defects.
Its weights are untrained here: only its cost matters.

With a backend other than torch (``--backend onnxruntime|openvino``) the bundle's export is timed, and the same
photos are judged by the torch backend too: the parity report (:func:`parity_report`) counts the photos routed
and judged alike and the largest differences in noise probabilities, defect probabilities and OOD scores.

Each stage's share of its compute bound: the machine's float32 peak is measured in the same run with a matrix
product (:func:`measure_peak_gflops`, same threads and device as the pipeline); each stage's FLOPs per part
(:func:`stage_gflop`: the models' counted by ``torch.utils.flop_counter`` at their actual input sizes, the rest
estimated) over that peak is the least time the stage could take, ``stage_bound_ms``; ``stage_share`` is that
bound over the measured time, per batch size. A share near 1 is a stage that runs at the machine's peak; a
share near 0 is one bound by something else (memory, Python, the GIL, transfers).
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections import Counter
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
from inspection.summary import largest_batch

STAGES = ("decode", "noise", "denoise", "defect")


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


def encode_png(photos: Sequence[np.ndarray]) -> list[bytes]:
    """The photos as PNG files in memory, so that the pipeline's decode stage is timed too."""
    return [cv2.imencode(".png", p)[1].tobytes() for p in photos]


def time_pipeline(
    pipe: InspectionPipeline, photos: Sequence[Any], batch: int, *, stream: bool = False
) -> dict[str, Any]:
    """Throughput over all photos, and latency: a part waits for its whole batch, so that is its latency.

    ``photos`` are arrays or encoded files; ``denoisers`` counts the routes the judged photos took. ``stream``
    judges them with ``pipe.inspect_stream`` (the next batch decoding while this one is judged), where a
    batch's latency runs from its hand-over to its results.
    """
    pipe.inspect_batch(list(photos[: min(batch, 4)]))  # warm-up: allocator, oneDNN primitives, CUDA kernels
    latencies, stages = [], dict.fromkeys(STAGES, 0.0)
    routes: Counter[str] = Counter()
    chunks = [list(photos[i : i + batch]) for i in range(0, len(photos), batch)]
    handed_over: list[float] = []

    def hand_over() -> Any:
        for chunk in chunks:
            handed_over.append(time.perf_counter())
            yield chunk

    t_all = time.perf_counter()
    judged = pipe.inspect_stream(hand_over()) if stream else map(pipe.inspect_batch, hand_over())
    batch_ms = []
    for n_batch, results in enumerate(judged):
        batch_ms.append((time.perf_counter() - handed_over[n_batch]) * 1e3)
        latencies += [batch_ms[-1]] * len(chunks[n_batch])
        for r in results:
            if isinstance(r, InspectionResult):
                routes[r.denoiser] += 1
                for k in stages:
                    stages[k] += r.timings_ms[k]
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
        "denoisers": dict(routes),
        "batch_ms": [round(t, 1) for t in batch_ms],
    }


def time_denoisers(
    pipe: InspectionPipeline, photos: Sequence[np.ndarray], repeats: int = 3
) -> dict[str, Any]:
    """Each denoiser alone on the photos the pipeline routes to it among ``photos`` (arrays): ms a photo, best of
    ``repeats`` after a warm-up, as the pipeline runs it (batched on a GPU, on the workers otherwise)."""
    routes = pipe.route(pipe.classify_noise(photos), photos)
    groups: dict[str, list[int]] = {}
    for i, (_, denoiser, _) in enumerate(routes):
        if denoiser.name != "identity":
            groups.setdefault(denoiser.name, []).append(i)
    out = {}
    for name, idx in groups.items():
        grays, denoisers = [photos[i] for i in idx], [routes[i][1] for i in idx]
        best = math.inf
        for _ in range(repeats + 1):
            _synchronise(pipe.device)
            t0 = time.perf_counter()
            pipe.denoise(grays, denoisers)
            _synchronise(pipe.device)
            best = min(best, time.perf_counter() - t0)
        out[name] = {"photos": len(idx), "ms_per_photo": 1e3 * best / len(idx)}
    return out


def _synchronise(device: str) -> None:
    if device != "cpu":
        torch.cuda.synchronize()


@torch.inference_mode()
def measure_peak_gflops(device: str = "cpu", n: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 peak as this run sees it: GFLOP/s of an ``n`` x ``n`` float32 matrix product, best
    of ``repeats`` after one warm-up, on ``device`` with torch's current thread count."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(device) for _ in range(2))
    best = math.inf
    for _ in range(repeats + 1):
        _synchronise(device)
        t0 = time.perf_counter()
        torch.matmul(a, b)
        _synchronise(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


@torch.inference_mode()
def count_flops(module: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass of ``module`` on ``x``, as ``torch.utils.flop_counter`` counts them (a
    multiply-add is 2; convolutions and matrix products only: activations, pooling and norms are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    param = next(module.parameters(), None)
    x = x.to(param.device if param is not None else "cpu")
    with FlopCounterMode(display=False) as counter:
        module(x)
    return int(counter.get_total_flops())


def fft_flops(h: int, w: int) -> float:
    """The usual estimate for a complex 2-D FFT of ``h`` x ``w`` points: ``5 N log2 N``."""
    n = h * w
    return 5.0 * n * math.log2(n) if n > 1 else 0.0


# Per-pixel estimates for the work no FLOP counter sees (an add, multiply or comparison is one operation):
# the switching median blurs photo and mask once with a 7-tap separable Gaussian (sigma 0.8; 2 x 2 x 7 x 2) and
# compares, about 60 per pixel; the notch filter's sinusoid fit does 3 rounds of two real (H x W) @ (W x steps)
# products, steps 12 + 9 + 5, about 104 per pixel, plus fitting and subtracting one sinusoid, about 8.
MEDIAN_OPS_PER_PIXEL = 60.0
NOTCH_FIT_OPS_PER_PIXEL = 112.0
# The frame check judges a photo at 64 px: area resizing adds each pixel once, then a 3x3 median and a
# separable Gaussian of sigma 3.5 (23 taps) on the 64 x 64 frame.
FRAME_CHECK_OPS = 64 * 64 * (9 + 2 * 2 * 23)


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


def denoiser_gflop(pipe: InspectionPipeline, shape: tuple[int, int], name: str) -> float:
    """GFLOP one photo of ``shape`` costs the denoiser ``name``: the autoencoder counted, the others estimated."""
    h, w = shape
    if name == "autoencoder":
        ae = pipe.router.denoisers["autoencoder"]
        module = getattr(ae, "model", None)
        if isinstance(module, torch.nn.Module):
            return count_flops(module, torch.zeros(1, 1, h, w)) / 1e9
        return count_flops(pipe.denoiser.model, torch.zeros(1, 1, h, w)) / 1e9  # type: ignore[union-attr]
    if name == "median":
        return MEDIAN_OPS_PER_PIXEL * h * w / 1e9
    if name == "notch":  # a real FFT is half a complex one; one before and one after removing a sinusoid
        return (fft_flops(h, w) + NOTCH_FIT_OPS_PER_PIXEL * h * w) / 1e9
    return 0.0


def stage_gflop(pipe: InspectionPipeline, shape: tuple[int, int], routes: dict[str, int]) -> dict[str, float]:
    """GFLOP per part of each stage for photos of ``shape``, the denoise stage weighted by the ``routes`` mix
    (denoiser name -> photos) the run measured."""
    h, w = shape
    noise_in = torch.zeros(1, pipe.noise_channels, pipe.noise_size, pipe.noise_size)
    defect_in = torch.zeros(1, 1, pipe.transform.size, pipe.transform.size)
    judged = max(1, sum(routes.values()))
    return {
        "decode": (h * w + FRAME_CHECK_OPS) / 1e9,
        "noise": (fft_flops(h, w) + count_flops(pipe.noise_net, noise_in)) / 1e9,
        "denoise": sum(k * denoiser_gflop(pipe, shape, name) for name, k in routes.items()) / judged,
        "defect": count_flops(pipe.defect_net, defect_in) / 1e9,
    }


def compute_bounds(pipe: InspectionPipeline, out: dict[str, Any], peak_gflops: float) -> None:
    """Add ``stage_gflop``, ``stage_bound_ms`` and ``stage_share`` (per batch size) to the bench result ``out``."""
    h, w = out["photos"]["shape"]
    largest = largest_batch(out)
    gflop = stage_gflop(pipe, (h, w), largest["denoisers"])
    bound = {k: 1e3 * v / peak_gflops for k, v in gflop.items()}
    out["peak_gflops"] = peak_gflops
    out["stage_gflop"] = gflop
    out["stage_bound_ms"] = bound
    out["stage_share"] = {
        key: {k: (bound[k] / r["stage_ms"][k] if r["stage_ms"][k] > 0 else None) for k in STAGES}
        for key, r in out["pipeline"].items()
    }


def run_bench(
    cfg: BenchConfig, backend: str = "torch", *, device: str = "cpu", encode: bool = False
) -> dict[str, Any]:
    """Time the pipeline on ``backend`` and ``device`` (and the reference-equivalent configuration, on the CPU);
    with a backend other than torch, also the parity report against torch on the same photos. ``encode`` hands
    the pipeline PNG files, so that decoding is timed too."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    photos = noisy_mix(cfg)
    pipe = InspectionPipeline.from_dir(
        cfg.models or None,
        workers=cfg.workers,
        worker_processes=cfg.worker_processes,
        backend=backend,
        device=device,
    )
    inputs: Sequence[Any] = encode_png(photos) if encode else photos
    out: dict[str, Any] = {
        "photos": {
            "n": len(photos),
            "shape": list(photos[0].shape),
            "source": cfg.data or f"synthetic {cfg.size}px",
        },
        "threads": torch.get_num_threads(),
        "workers": pipe.workers.n,
        "worker_processes": pipe.workers.processes,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "models": pipe.model_versions,
        "backend": backend,
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "photos_as": "png" if encode else "array",
        "stream": cfg.stream,
        "pipeline": {},
    }
    for b in cfg.batch_sizes:
        out["pipeline"][f"b{b}"] = time_pipeline(pipe, inputs, b, stream=cfg.stream)
    with pipe.workers.one_blas_thread():
        out["denoiser_ms"] = time_denoisers(pipe, photos[: max(cfg.batch_sizes)])
    out["peak_rss_mb_pipeline"] = peak_rss_mb()
    compute_bounds(pipe, out, measure_peak_gflops(device))
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
    if pipe.workers.processes:  # joined by close(), so the OS has their peaks now
        out["peak_rss_mb_worker_process"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return out


def render(result: dict[str, Any]) -> str:
    lines = [
        f"photos: {result['photos']['n']} x {result['photos']['shape']} ({result['photos']['source']}), "
        f"noisy mix of {', '.join(NOISE_TYPES)}; torch threads {result['threads']}, "
        f"pipeline workers {result.get('workers', 1)}{' (processes)' if result.get('worker_processes') else ''}; "
        f"backend {result.get('backend', 'torch')} on "
        f"{result.get('device_name', 'cpu')}; photos handed over as {result.get('photos_as', 'array')}"
        + (", streamed (the next batch decoding while one is judged)" if result.get("stream") else ""),
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
            f", and up to {result['peak_rss_mb_worker_process']:.0f} MB in the largest of its "
            f"{result['workers']} worker processes"
            if "peak_rss_mb_worker_process" in result
            else ""
        )
        + (
            f", {result['peak_rss_mb_with_reference']:.0f} MB after the reference run"
            if "peak_rss_mb_with_reference" in result
            else ""
        )
    )
    lines += render_diagnostics(result)
    if "stage_share" in result:
        lines += ["", render_bounds(result)]
    if "parity" in result:
        lines += ["", render_parity(result["parity"], result["backend"])]
    return "\n".join(lines)


def render_diagnostics(result: dict[str, Any]) -> list[str]:
    """Where a batch's time goes beyond the stage averages: the first batch against the rest (allocations, FFT
    plans, kernels chosen on first use), and each denoiser alone on its photos."""
    lines = []
    largest = largest_batch(result)
    times = largest.get("batch_ms", [])
    if len(times) >= 3:
        lines.append(
            f"batch {largest['batch']}: the first took {times[0]:.1f} ms, the others {np.median(times[1:]):.1f} ms "
            f"(median of {len(times) - 1})"
        )
    if result.get("denoiser_ms"):
        alone = ", ".join(
            f"{name} {d['ms_per_photo']:.2f} ({d['photos']} photos)"
            for name, d in result["denoiser_ms"].items()
        )
        lines.append(f"each denoiser alone, ms a photo on the photos routed to it, best of 3: {alone}")
    return [""] + lines if lines else []


def render_bounds(result: dict[str, Any]) -> str:
    """Each stage's FLOPs, compute bound and share of it, as a table."""
    keys = list(result["stage_share"])
    lines = [
        f"float32 peak (2048x2048 matmul, same threads and device): {result['peak_gflops']:.1f} GFLOP/s",
        "",
        "| stage | GFLOP/part | bound ms/part | "
        + " | ".join(f"share at batch {k[1:]}" for k in keys)
        + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    for stage in STAGES:
        shares = [result["stage_share"][k][stage] for k in keys]
        cells = " | ".join("-" if v is None else f"{v:.3f}" for v in shares)
        lines.append(
            f"| {stage} | {result['stage_gflop'][stage]:.4f} | {result['stage_bound_ms'][stage]:.4f} | {cells} |"
        )
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

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=1) + "\n")
