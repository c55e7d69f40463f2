"""``--backend`` and ``--device``: what runs the models and where, one definition for ``score``, ``serve``,
``watch`` and ``bench``."""

from __future__ import annotations

import argparse

from inspection.runtimes import BACKENDS, DEVICES


def add_backend_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--backend torch|onnxruntime|openvino`` (left None when not given, so a config file can set it)."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="what runs the models: torch (the checkpoints), or onnxruntime or openvino, which run the bundle's "
        "export (inspection export BUNDLE --format onnx|openvino) and need inspection[onnx] or "
        "inspection[openvino]; a missing export or package is an error, never a fall back to torch "
        "(default: torch)",
    )


def backend_of(args: argparse.Namespace) -> str:
    """The backend the command line asked for (torch when it named none)."""
    return getattr(args, "backend", None) or "torch"


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--device cpu|cuda`` (left None when not given, so a config file can set it)."""
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default=None,
        help="where the torch backend runs inference: cpu, or cuda (the models on the GPU, and the spectra, "
        "noise estimates, resizing and, for 8 or more photos of one size, the median and notch filters as "
        "batches there; decoding stays on the CPU); cuda without a CUDA GPU is an error, never a fall back to "
        "the CPU (default: cpu)",
    )


def device_of(args: argparse.Namespace) -> str:
    """The device the command line asked for (cpu when it named none)."""
    return getattr(args, "device", None) or "cpu"


def add_worker_processes_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--worker-processes``: the per-photo work outside the models in processes, not threads."""
    parser.add_argument(
        "--worker-processes",
        action="store_true",
        help="decode and check photos (and on the CPU take spectra and run the median and notch filters; on a "
        "GPU only those filters' groups of fewer than 8 photos of one size) in worker processes, one per usable "
        "CPU (less one with --device cuda), instead of threads: pays on machines with many cores (a GPU "
        "machine), where threads queue on Python's lock; the processes start once, in a few seconds",
    )
