"""Export a bundle's models for ONNX Runtime or OpenVINO (``inspection export BUNDLE --format onnx|openvino``).

Each model is exported from its inference copy (BatchNorm folded, :mod:`inspection.models.inference`), the one
the torch backend runs:

- ``noise.onnx``: the noise classifier, ``x (batch, C, S, S) -> logits``;
- ``denoiser.onnx``: the autoencoder, ``x (batch, 1, height, width) -> denoised``, on any photo size;
- ``defect.onnx``: the defect classifier, ``x (batch, 1, S, S) -> logits, features``; ``features`` (the input of
  its output layer) are what the bundle's OOD check scores, so its scores match the torch backend's.

OpenVINO gets the same graphs as IR (``.xml`` + ``.bin``), in float32. ``export.json`` beside them records each
model's preprocessing and post-processing, the SHA-256 of the weights it came from (a backend refuses an export
whose weights differ from the bundle's) and the package versions. Nothing is pickled.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import shutil
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inspection import NOISE_TYPES
from inspection.bundle import load_bundle
from inspection.models.checkpoint import Checkpoint, load_checkpoint
from inspection.models.inference import for_inference
from inspection.models.zoo import defect_head
from inspection.runtimes import EXPORTED, MANIFEST_FILE, MANIFEST_VERSION, BackendError
from inspection.transforms import DefectTransform

FORMATS = {fmt: backend for backend, (fmt, _, _) in EXPORTED.items()}  # format -> the backend that runs it
OPSET = 17
TASKS = ("noise", "denoiser", "defect")


class DefectWithFeatures(nn.Module):
    """A defect model that also returns the input of its output layer (the OOD check's features)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.head = defect_head(model)[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured: list[torch.Tensor] = []
        handle = self.head.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0]))
        try:
            logits = self.model(x)
        finally:
            handle.remove()
        return logits, captured[0]


class PaddedAutoencoder(nn.Module):
    """The autoencoder with its reflect padding made explicit, so one traced graph serves every photo size.

    ``SkipAutoencoder`` pads only when a side is not a multiple of its stride, a Python branch a trace would
    freeze; padding by zero is the identity, so padding always gives the same numbers on every size.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.stride = int(getattr(model, "stride", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        ph, pw = (self.stride - h % self.stride) % self.stride, (self.stride - w % self.stride) % self.stride
        y = self.model(nn.functional.pad(x, (0, pw, 0, ph), mode="reflect"))
        return y[..., :h, :w]


def export_bundle(bundle_dir: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Export every model of a bundle to ``fmt`` (``onnx`` or ``openvino``); returns the folder written.

    The folder is ``<bundle>/<fmt>/`` (where ``--backend`` looks) unless ``out`` is given; an earlier export there
    is replaced whole, never mixed with the new one.
    """
    if fmt not in FORMATS:
        raise BackendError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if importlib.util.find_spec(fmt) is None:  # the onnx package (its checker), or openvino
        raise BackendError(
            f"exporting to {fmt} needs the {fmt} package, which is not installed; install it with: "
            f"pip install 'inspection[{fmt}]'"
        )
    bundle = load_bundle(bundle_dir)
    target = Path(out) if out else bundle.path / fmt
    check_target(target)
    checkpoints = {t: load_checkpoint(d) for t in TASKS if (d := bundle.checkpoint_dir(t)) is not None}
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    models = {}
    for task, ck in checkpoints.items():
        file = f"{task}.onnx" if fmt == "onnx" else f"{task}.xml"
        write_model(task, ck, partial / file)
        models[task] = {"file": file, **model_facts(task, ck)}
    manifest = {
        "format_version": MANIFEST_VERSION,
        "format": fmt,
        "bundle": bundle.version,
        "opset": OPSET,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": runtime_versions(),
        "models": models,
    }
    (partial / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def check_target(target: Path) -> None:
    """Refuse a target that is a file, or a folder holding anything but an earlier export (it is replaced whole).

    Raises:
        NotADirectoryError: ``target`` is a file.
        FileExistsError: ``target`` is a non-empty folder without an export manifest.
    """
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(
            f"{target} is a file; --out must name a folder (missing, empty or an earlier export)"
        )
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST_FILE).is_file():
        raise FileExistsError(
            f"{target} is not empty and holds no {MANIFEST_FILE}, so it is not an earlier export, which alone is "
            "replaced; name a new or empty folder"
        )


def write_model(task: str, ck: Checkpoint, path: Path) -> None:
    """Export one checkpoint to ``path`` (``.onnx``, or ``.xml`` for OpenVINO IR by way of ONNX)."""
    if path.suffix == ".onnx":
        export_onnx(task, ck, path)
        import onnx

        onnx.checker.check_model(str(path))
        return
    import openvino as ov

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / f"{task}.onnx"
        export_onnx(task, ck, onnx_path)
        # fp16 compression is OpenVINO's default when saving; full precision keeps parity with torch.
        ov.save_model(ov.convert_model(str(onnx_path)), str(path), compress_to_fp16=False)


def export_onnx(task: str, ck: Checkpoint, path: Path) -> None:
    """Trace ``ck``'s inference copy to ONNX with a dynamic batch (and dynamic size for the autoencoder)."""
    net = for_inference(ck.model)
    if task == "denoiser":
        module: nn.Module = PaddedAutoencoder(net)
        example = torch.rand(2, 1, 37, 45)  # sides that need padding, so no size is special in the trace
        outputs, dynamic = ["denoised"], {0: "batch", 2: "height", 3: "width"}
        axes = {"x": dynamic, "denoised": dynamic}
    else:
        size, chans = int(ck.meta["input_size"]), input_channels(task, ck)
        module, example = net, torch.rand(2, chans, size, size)
        outputs = ["logits"]
        if task == "defect":
            module, outputs = DefectWithFeatures(net), ["logits", "features"]
        axes = {name: {0: "batch"} for name in ["x", *outputs]}
    legacy: dict[str, Any] = (
        {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    )
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of torch.export; it traces these models exactly
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module.eval(),
            (example,),
            str(path),
            input_names=["x"],
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            **legacy,
        )


def input_channels(task: str, ck: Checkpoint) -> int:
    """The model's input channels: the noise model's feature planes, one gray plane otherwise."""
    if task != "noise":
        return 1
    return int(ck.meta["model_kwargs"].get("in_chans", ck.meta.get("input_channels", 1)))


def model_facts(task: str, ck: Checkpoint) -> dict[str, Any]:
    """What a consumer of the exported model needs: input, preprocessing, post-processing, provenance."""
    meta = ck.meta
    temperature = float(meta.get("calibration", {}).get("temperature", 1.0))
    facts: dict[str, Any] = {
        "architecture": meta["architecture"],
        "version": ck.version,
        "source_sha256": meta["weights_sha256"],
    }
    if task == "noise":
        size = int(meta["input_size"])
        facts["input"] = [None, input_channels(task, ck), size, size]
        facts["preprocessing"] = {
            "features": "inspection.spectrum.noise_features(gray, input_size, channels)",
            "input_size": size,
            "channels": input_channels(task, ck),
        }
        facts["postprocessing"] = {
            "probabilities": "softmax(logits / temperature)",
            "temperature": temperature,
        }
        facts["class_names"] = list(meta["class_names"])
        facts["noise_types"] = list(NOISE_TYPES)
    elif task == "denoiser":
        facts["input"] = [None, 1, None, None]
        facts["preprocessing"] = {"scale": "gray uint8 / 255 as float32"}
        facts["postprocessing"] = {"output": "round(clip(denoised, 0, 1) * 255) as uint8"}
    else:
        transform = DefectTransform.from_meta(meta)
        facts["input"] = [None, 1, transform.size, transform.size]
        facts["preprocessing"] = {**transform.to_meta(), "scale": "(gray / 255 - mean) / std"}
        threshold = meta["threshold"] if meta["threshold"] is not None else 0.5
        facts["postprocessing"] = {
            "defect_probability": "sigmoid(logits[:, 0] / temperature)",
            "kind_probabilities": "softmax(logits[:, 1:])",
            "temperature": temperature,
            "threshold": float(threshold),
            "kinds": [str(k) for k in meta.get("kinds", [])],
            "features": "penultimate features, scored by the bundle's ood.safetensors with the input statistics",
        }
    return facts


def runtime_versions() -> dict[str, str]:
    """The versions of torch and of the runtime packages that are installed."""
    from importlib import metadata

    out = {"torch": torch.__version__.split("+")[0]}
    for name in ("onnx", "onnxruntime", "openvino"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
