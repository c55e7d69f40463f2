"""Condense an evaluation report and a bench run into the machine-readable results file (docs/results.json).

Usage: ``python -m inspection.summary REPORT_DIR [BENCH_JSON] --out docs/results.json [--train-seconds FILE]
[--sections NAME ...]`` (without BENCH_JSON, every section but ``bench``); ``python -m inspection.summary --gpu
DIR --out docs/results.json`` writes the ``gpu`` section alone, from a ``docs/proofs/gpu_bench.sh`` run, and
``--train-seconds FILE`` or ``--bench-json FILE`` without a report the ``train_seconds`` or ``bench`` section
alone.

Several commands write ``docs/results.json``, each its own top-level sections (this one: the casting
evaluation's; ``inspection router-check``: ``generalisation``). :func:`merge_sections` replaces only the
sections a command wrote, so regenerating one keeps the others; ``provenance`` names, for each section this
summary wrote, the report and commit it came from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from inspection import NOISE_TYPES
from inspection.fileio import write_text_atomic


def largest_batch(result: dict[str, Any]) -> dict[str, Any]:
    """A bench result's figures at its largest batch size."""
    return result["pipeline"][f"b{max(int(k[1:]) for k in result['pipeline'])}"]


def merge_sections(path: str | Path, sections: dict[str, Any]) -> dict[str, Any]:
    """Write ``sections`` into the JSON object at ``path`` (created if missing), keeping every other section."""
    path = Path(path)
    merged = json.loads(path.read_text()) if path.exists() else {}
    if not isinstance(merged, dict):
        raise ValueError(f"{path} does not hold a JSON object of sections")
    merged.update(sections)
    write_text_atomic(path, json.dumps(merged, indent=1) + "\n")
    return merged


def bench_bounds(bench: dict[str, Any]) -> dict[str, Any]:
    """The float32 peak, each stage's share of its compute bound and (another backend than torch) the parity
    with torch, when the bench run measured them (runs before they were added have none)."""
    return {k: bench[k] for k in ("peak_gflops", "stage_share", "parity") if k in bench}


def bench_section(bench: dict[str, Any]) -> dict[str, Any]:
    """The speed figures of an ``inspection bench --json`` run."""
    return {
        "ms_per_part_b32": bench["pipeline"]["b32"]["ms_per_part"],
        "parts_per_s_b32": bench["pipeline"]["b32"]["parts_per_s"],
        "ms_per_part_b1": bench["pipeline"]["b1"]["ms_per_part"],
        "p99_ms_b1": bench["pipeline"]["b1"]["p99_ms"],
        "reference_ms_per_part": bench["reference"]["ms_per_part"],
        "speedup_vs_reference": bench["speedup_vs_reference"],
        "peak_rss_mb": bench["peak_rss_mb_pipeline"],
        "stage_ms_b32": bench["pipeline"]["b32"]["stage_ms"],
        "backend": bench.get("backend", "torch"),
        "threads": bench["threads"],
        "workers": bench.get("workers", 1),
        "omp_wait_policy": bench.get("omp_wait_policy", ""),
        **bench_bounds(bench),
    }


# docs/proofs/gpu_bench.sh's bench runs, by file name (cpu: the same machine's CPU, in runs before the stream)
GPU_RUNS = ("cuda", "cuda_processes", "cuda_processes_stream", "cpu")


def gpu_section(folder: Path) -> dict[str, Any]:
    """The figures of a ``docs/proofs/gpu_bench.sh`` run folder: for each bench run in it (on the GPU with
    worker threads, with worker processes, streamed, and on the same machine's CPU), parts/s and ms/part at batch 256
    end to end, p99 at batch 1, stage times and the float32 peak; the cuda-against-cpu parity where the folder
    has it."""
    runs = {
        n: json.loads((folder / f"{n}.json").read_text()) for n in GPU_RUNS if (folder / f"{n}.json").exists()
    }
    if "cuda" not in runs:
        raise FileNotFoundError(f"{folder / 'cuda.json'} is missing: is this a gpu_bench.sh output folder?")
    section: dict[str, Any] = {
        "device": runs["cuda"]["device_name"],
        "photos": runs["cuda"]["photos"],
        "photos_as": runs["cuda"]["photos_as"],
    }
    for name, bench in runs.items():
        largest = largest_batch(bench)
        section[name] = {
            "photos": bench["photos"]["n"],
            "batch": largest["batch"],
            "parts_per_s": largest["parts_per_s"],
            "ms_per_part": largest["ms_per_part"],
            "stage_ms": largest["stage_ms"],
            "p99_ms_b1": bench["pipeline"]["b1"]["p99_ms"] if "b1" in bench["pipeline"] else None,
            "workers": bench["workers"],
            "worker_processes": bench.get("worker_processes", False),
            "stream": bench.get("stream", False),
            "threads": bench["threads"],
            "peak_gflops": bench.get("peak_gflops"),
        }
    if (folder / "parity.json").exists():
        section["parity"] = json.loads((folder / "parity.json").read_text())
    return section


def summarise(
    report: dict[str, Any], bench: dict[str, Any] | None, train_seconds: dict[str, float] | None = None
) -> dict:
    """The keys tools check, plus the context that makes them traceable (no ``bench`` without a bench run)."""
    nc = report["noise_classifier"]
    by = {(r["noise_type"], r["method"]): r for r in report["denoise"]["summary"]}
    baselines = {
        kind: {
            m: {"psnr": r["psnr"], "ssim": r["ssim"], "ms_per_image": r["ms_per_image"]}
            for (k, m), r in by.items()
            if k == kind
        }
        for kind in ("gaussian", "salt_pepper", "periodic")
    }
    return {
        "commit": report["commit"],
        "report_id": report["id"],
        "dataset": report["dataset"],
        "noise_classifier": {"accuracy": nc["accuracy"], "recall": {k: nc["recall"][k] for k in NOISE_TYPES}},
        "denoise_psnr": report["denoise_psnr"],
        # the routed denoiser's time per photo, for each noise type (the method its route names)
        "denoise_ms": {
            kind: by[(kind, method)]["ms_per_image"]
            for kind, method in (report.get("routes") or {}).items()
            if (kind, method) in by
        },
        "denoise_methods": baselines,
        "defect_accuracy": report["defect_accuracy"],
        "defect_conditions": report["defect"]["conditions"],
        "defect_erasure": report["defect_erasure"],
        "realistic": report.get("realistic", {}),
        **({"bench": bench_section(bench)} if bench is not None else {}),
        "train_seconds": train_seconds or {},
    }


def merge_alone(out: Path, name: str, section: Any, source: dict[str, str]) -> None:
    """Merge one section into ``out``, its provenance ``source`` (the files it came from)."""
    old = json.loads(out.read_text()).get("provenance", {}) if out.exists() else {}
    merge_sections(out, {name: section, "provenance": {**old, name: source}})


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path, nargs="?", help="report folder (holding report.json)")
    p.add_argument(
        "bench",
        type=Path,
        nargs="?",
        help="JSON written by inspection bench --json (without it: no bench section)",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train-seconds", type=Path, help="JSON {task: seconds}")
    p.add_argument(
        "--sections",
        nargs="+",
        metavar="NAME",
        help="write only these sections (default: all of this summary's)",
    )
    p.add_argument(
        "--bench-json",
        type=Path,
        metavar="FILE",
        help="write only the bench section, from an inspection bench --json run (no report needed)",
    )
    p.add_argument(
        "--gpu",
        type=Path,
        metavar="DIR",
        help="write only the gpu section, from a docs/proofs/gpu_bench.sh output folder (no report needed)",
    )
    return p


def write_one_section(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """``--gpu``, ``--bench-json`` or ``--train-seconds`` without a report: that section alone."""
    given = [x for x in (a.gpu, a.bench_json, a.train_seconds) if x]
    if a.report or a.bench or a.sections or len(given) != 1:
        p.error(
            "without a report folder, give exactly one of --gpu DIR, --bench-json FILE or --train-seconds "
            "FILE (and no --sections)"
        )
    if a.gpu:
        source = {"source": str(a.gpu), "script": "docs/proofs/gpu_bench.sh"}
        merge_alone(a.out, "gpu", gpu_section(a.gpu), source)
    elif a.bench_json:
        bench = bench_section(json.loads(a.bench_json.read_text()))
        merge_alone(a.out, "bench", bench, {"source": str(a.bench_json)})
    else:
        seconds = json.loads(a.train_seconds.read_text())
        merge_alone(a.out, "train_seconds", seconds, {"source": str(a.train_seconds)})


def main(argv: list[str] | None = None) -> int:
    p = parser()
    a = p.parse_args(argv)
    if a.report is None or a.gpu or a.bench_json:
        write_one_section(p, a)
        return 0
    report = json.loads((a.report / "report.json").read_text())
    bench = json.loads(a.bench.read_text()) if a.bench else None
    seconds = json.loads(a.train_seconds.read_text()) if a.train_seconds else None
    sections = summarise(report, bench, seconds)
    unknown = sorted(set(a.sections or ()) - set(sections))
    if unknown:
        p.error(f"unknown sections {unknown}; this summary writes {sorted(sections)}")
    chosen = {k: v for k, v in sections.items() if not a.sections or k in a.sections}
    # each section's own source: the bench and training-time files, else the report (and the backend it ran on)
    files = {"bench": a.bench, "train_seconds": a.train_seconds}
    report_source = {
        "report_id": report.get("id"),
        "commit": report.get("commit"),
        "backend": report.get("backend", "torch"),
    }
    old = json.loads(a.out.read_text()).get("provenance", {}) if a.out.exists() else {}
    provenance = {
        **old,
        **{
            k: {"source": str(files[k])} if files.get(k) else report_source
            for k in chosen
            if k not in ("commit", "report_id")
        },
    }
    merge_sections(a.out, {**chosen, "provenance": provenance})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
