"""Helpers for tests and fixtures: tiny, untrained checkpoints that load like real ones."""

from __future__ import annotations

from pathlib import Path

import torch

from inspection import NOISE_TYPES
from inspection.models import create_model, save_checkpoint
from inspection.spectrum import FEATURE_CHANNELS


def write_tiny_bundle(root: str | Path, *, seed: int = 0, size: int = 32, version: str = "tiny-v1") -> Path:
    """A models root holding one bundle of untrained ``test_*`` models, named live; returns ``root``."""
    from inspection.bundle import BUNDLES_DIR, write_bundle, write_live

    root = Path(root)
    parts = write_tiny_checkpoints(root / ".parts" / version, seed=seed, size=size)
    write_bundle(root / BUNDLES_DIR / version, {t: parts / t for t in ("noise", "denoiser", "defect")})
    write_live(root, version)
    return root


def write_tiny_checkpoints(root: str | Path, *, seed: int = 0, size: int = 32) -> Path:
    """Write untrained ``test_*`` models to ``root/{noise,denoiser,defect}`` (the layout before bundles)."""
    root = Path(root)
    torch.manual_seed(seed)
    save_checkpoint(
        create_model("test_freq_vgg"),
        root / "noise",
        architecture="test_freq_vgg",
        model_kwargs={"in_chans": FEATURE_CHANNELS},
        input_size=size,
        class_names=list(NOISE_TYPES),
    )
    save_checkpoint(
        create_model("test_unet_ae"),
        root / "denoiser",
        architecture="test_unet_ae",
        input_size=None,
        class_names=[],
    )
    save_checkpoint(
        create_model("test_defect_cnn"),
        root / "defect",
        architecture="test_defect_cnn",
        input_size=size,
        class_names=["ok", "defective"],
        normalisation={"mean": 0.5, "std": 0.25},
        threshold=0.5,
    )
    return root
