"""Inference backends: each model of a bundle as a *runner*, a callable from a float32 array to output arrays.

The pipeline asks for its three runners once, at load time, and routes and judges the same way whatever runs them:

- ``torch``: the checkpoints themselves (their inference copies, :mod:`inspection.models.inference`);
- ``onnxruntime``: ``<bundle>/onnx/``, written by ``inspection export BUNDLE --format onnx``;
- ``openvino``: ``<bundle>/openvino/``, written by ``inspection export BUNDLE --format openvino``.

A backend whose package or files are missing is a :class:`BackendError` that says what to install or run; nothing
ever falls back to torch. An export whose source weights differ from the bundle's checkpoints is refused too.

Runners take and return NumPy arrays: the noise model ``(n, C, S, S) -> [logits]``, the autoencoder
``(n, 1, H, W) -> [denoised]`` (any H and W) and the defect model ``(n, 1, S, S) -> [logits, features]``, where
``features`` are its penultimate features, which the OOD check (:mod:`inspection.ood`) scores.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from torch import nn

    from inspection.bundle import Bundle
    from inspection.models.checkpoint import Checkpoint

BACKENDS = ("torch", "onnxruntime", "openvino")
DEVICES = ("cpu", "cuda")  # where the torch backend runs the models
# backend -> (export format, i.e. its folder in a bundle; the module it needs; the extra that installs it)
EXPORTED: dict[str, tuple[str, str, str]] = {
    "onnxruntime": ("onnx", "onnxruntime", "onnx"),
    "openvino": ("openvino", "openvino", "openvino"),
}
MANIFEST_FILE = "export.json"
MANIFEST_VERSION = 1


class BackendError(ValueError):
    """A backend that cannot run this bundle: its package or its exported files are missing or stale."""


class Runner(Protocol):
    """One model: a float32 batch in, the model's outputs out (NumPy arrays)."""

    def __call__(self, x: np.ndarray) -> list[np.ndarray]: ...


class TorchRunner:
    """A torch module as a runner.

    Args:
        module: the model (an inference copy); it runs under ``torch.inference_mode``.
        channels_last: hand the module its input channels-last (what the pipeline's classifiers run fastest on).
        features: also return the input of the model's output layer (the defect model's penultimate features).
        device: where the module runs (``cpu`` or ``cuda``); the module is moved there, inputs are copied there
            and outputs back.
    """

    def __init__(
        self, module: nn.Module, *, channels_last: bool = False, features: bool = False, device: str = "cpu"
    ) -> None:
        self.module = module.to(device)
        self.channels_last = channels_last
        self.features = features
        self.device = device

    def __call__(self, x: np.ndarray | Any) -> list[np.ndarray]:
        """Run the module on ``x``: a NumPy array, or a float32 tensor (one already on the device stays there)."""
        import torch

        from inspection.ood import penultimate

        with torch.inference_mode():
            t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x, np.float32))
            t = t.to(self.device, non_blocking=True)
            if self.channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
            if not self.features:
                return [self.module(t).float().cpu().numpy()]
            with penultimate(self.module) as captured:
                out = self.module(t)
            return [out.float().cpu().numpy(), captured[0].float().cpu().numpy()]


class OnnxRunner:
    """An ONNX model on ONNX Runtime's CPU provider, with ``threads`` intra-op threads (0: its default)."""

    def __init__(self, path: Path, *, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, threads)
        options.inter_op_num_threads = 1
        # Sleeping, not spinning, between calls: spinning threads take the cores from the OpenCV and NumPy work
        # between model calls, as OpenMP's did for torch (OMP_WAIT_POLICY=PASSIVE, docs/architecture.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return list(self.session.run(None, {self.input: np.ascontiguousarray(x, np.float32)}))


class OpenVinoRunner:
    """An OpenVINO IR model compiled for the CPU in full float32 precision (no bf16 or fp16 hints)."""

    def __init__(self, path: Path, *, threads: int = 0) -> None:
        import openvino as ov

        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        # A fresh request per call: the pipeline's threads may call one model at once.
        outputs = self.compiled.create_infer_request().infer([np.ascontiguousarray(x, np.float32)])
        return [np.array(outputs[port]) for port in self.compiled.outputs]


@dataclass(frozen=True)
class ModelRunners:
    """The runners of one bundle under one backend (``denoiser`` is None for a bundle without an autoencoder)."""

    backend: str
    noise: Runner
    defect: Runner
    denoiser: Runner | None = None


def check_backend(backend: str) -> None:
    """Raise :class:`BackendError` for an unknown backend, or one whose package is not installed."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return
    _, module, extra = EXPORTED[backend]
    if importlib.util.find_spec(module) is None:
        raise BackendError(
            f"backend {backend!r} needs the {module} package, which is not installed; install it with: "
            f"pip install 'inspection[{extra}]'"
        )


def check_device(device: str, backend: str = "torch") -> None:
    """Raise :class:`BackendError` for an unknown device, ``cuda`` on a machine torch sees no CUDA GPU on, or
    ``cuda`` with an exported backend (they run on the CPU here)."""
    if device not in DEVICES:
        raise BackendError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    if device == "cpu":
        return
    if backend != "torch":
        raise BackendError(
            f"--device cuda runs the torch backend only; {backend} runs the export on the CPU here: "
            "drop --device cuda, or use --backend torch"
        )
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise BackendError(
            f"--device cuda, but torch {torch.__version__} ({build}) sees no CUDA GPU on this machine; check "
            "nvidia-smi, the driver and CUDA_VISIBLE_DEVICES, or run with --device cpu"
        )


def export_dir(bundle_dir: str | Path, backend: str) -> Path:
    """Where ``inspection export`` writes (and the backend reads) a bundle's exported models."""
    return Path(bundle_dir) / EXPORTED[backend][0]


def read_manifest(folder: Path, backend: str, weights: dict[str, str]) -> dict[str, Any]:
    """The export's ``export.json``, checked against the bundle's models (``{task: weights SHA-256}``): every
    model exported, each from the same weights."""
    fmt = EXPORTED[backend][0]
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise BackendError(
            f"backend {backend!r} needs the bundle exported to {fmt}, but {path} is missing; export it "
            f"with: inspection export {folder.parent} --format {fmt}"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format_version") != MANIFEST_VERSION or manifest.get("format") != fmt:
        raise BackendError(
            f"{path}: expected a {fmt} export of format_version {MANIFEST_VERSION}, got format "
            f"{manifest.get('format')!r} version {manifest.get('format_version')!r}; export the bundle again"
        )
    models = manifest.get("models", {})
    for task, sha256 in weights.items():
        entry = models.get(task)
        if entry is None or not (folder / entry["file"]).is_file():
            raise BackendError(f"{folder} has no exported {task} model; export the bundle again")
        if entry.get("source_sha256") != sha256:
            raise BackendError(
                f"{folder / entry['file']} was exported from other {task} weights than the bundle's; the export "
                f"is stale: run inspection export {folder.parent} --format {fmt} again"
            )
    return manifest


def check_export(bundle: Bundle, backend: str) -> None:
    """Raise :class:`BackendError` unless ``backend`` can run ``bundle``: its package installed, the bundle exported
    for it from the same weights. Reads no weights (the service checks before it starts its scoring processes)."""
    from inspection.bundle import TASKS
    from inspection.models.checkpoint import read_meta

    check_backend(backend)
    if backend == "torch":
        return
    folders = {task: bundle.checkpoint_dir(task) for task in TASKS}
    weights = {task: str(read_meta(d)["weights_sha256"]) for task, d in folders.items() if d is not None}
    read_manifest(export_dir(bundle.path, backend), backend, weights)


def load_runners(
    bundle_dir: str | Path, backend: str, checkpoints: dict[str, Checkpoint], *, threads: int = 0
) -> ModelRunners:
    """The runners of ``backend`` for a bundle's checkpoints (``noise``, ``defect`` and optionally ``denoiser``).

    ``threads`` sets the runtime's intra-op threads (0: the runtime's default).
    """
    check_backend(backend)
    if backend == "torch":
        raise BackendError("torch runs the checkpoints themselves; load_runners is for exported backends")
    folder = export_dir(bundle_dir, backend)
    weights = {task: str(ck.meta["weights_sha256"]) for task, ck in checkpoints.items()}
    manifest = read_manifest(folder, backend, weights)
    make = OnnxRunner if backend == "onnxruntime" else OpenVinoRunner
    runners = {task: make(folder / manifest["models"][task]["file"], threads=threads) for task in checkpoints}
    return ModelRunners(
        backend=backend, noise=runners["noise"], defect=runners["defect"], denoiser=runners.get("denoiser")
    )
