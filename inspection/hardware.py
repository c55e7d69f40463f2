"""Where training runs: the device choice, mixed precision on GPUs, and a device-free view of a model.

On a CUDA GPU the training step runs under ``torch.autocast``: in bfloat16 where the GPU supports it (Ampere
and newer), which needs no loss scaling, else in float16 with a ``GradScaler``. On the CPU everything stays
float32, so CPU runs are repeatable bit for bit.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """The device asked for is unknown or not there."""


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """The torch device for ``--device``; on CUDA, the GPU of ``local_rank`` (made the current one).

    Raises:
        DeviceError: an unknown choice, ``cuda`` without a visible GPU, or more processes than GPUs.
    """
    if choice not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}; got {choice!r}")
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
        raise DeviceError(
            f"--device cuda, but torch {torch.__version__} ({build}) sees no CUDA GPU; check nvidia-smi, "
            "the driver and CUDA_VISIBLE_DEVICES, or train with --device cpu (or auto)"
        )
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise DeviceError(
            f"training process {local_rank} on this machine has no GPU of its own: {count} visible; "
            f"start torchrun with --nproc-per-node {count} or fewer"
        )
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def autocast_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """The mixed-precision dtype for ``device`` (``None``: train in float32, as always on the CPU)."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """A fresh autocast context for one forward pass and loss (a no-op without a dtype)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, enabled: bool) -> Any:
    """A ``GradScaler`` (disabled: a pass-through that still calls ``optimizer.step()``)."""
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
        return torch.amp.GradScaler(device.type, enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


class OnDevice(nn.Module):
    """``model`` as validation code sees it: takes CPU tensors and returns CPU float32 tensors on any device.

    Validation callbacks hold their data on the CPU; this moves each input to the model's device and the output
    back, so they work unchanged whether training runs on the CPU or a GPU. On the CPU it adds nothing.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.model = model
        self.device = device

    def forward(self, x: torch.Tensor) -> Any:
        out = self.model(x.to(self.device))
        if self.device.type == "cpu" or not isinstance(out, torch.Tensor):
            return out
        return out.float().cpu()
