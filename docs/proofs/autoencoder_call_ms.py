"""The autoencoder route one photo at a time, as ``inspection evaluate`` times it, on each backend: torch's
checkpoint and the bundle's ONNX Runtime and OpenVINO exports, back to back and interleaved with the PSNR and SSIM
the evaluation computes between calls.

Run it twice to see what OpenMP's wait policy does: as is (OpenMP spins between calls, as in a library caller)
and with ``OMP_WAIT_POLICY=PASSIVE`` (what the ``inspection`` CLI sets). Needs a bundle exported to both formats
(``inspection export BUNDLE --format onnx``, then ``--format openvino``) and a folder of photos.

Usage: python docs/proofs/autoencoder_call_ms.py BUNDLE PHOTO_DIR [--n 30] [--sigma 30]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from inspection.denoise import AutoencoderDenoiser
from inspection.imageio import read_image
from inspection.metrics import psnr, ssim
from inspection.models.checkpoint import load_checkpoint
from inspection.pipeline import RuntimeAutoencoder
from inspection.runtimes import OnnxRunner, OpenVinoRunner


def mean_ms(denoise, clean: list[np.ndarray], noisy: list[np.ndarray], interleave: bool) -> float:  # noqa: ANN001
    times = []
    for c, n in zip(clean, noisy, strict=True):
        t0 = time.perf_counter()
        d = denoise(n)
        times.append((time.perf_counter() - t0) * 1e3)
        if interleave:
            psnr(c, d), ssim(c, d), ssim(c, n)
    return float(np.mean(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("photos", type=Path)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--sigma", type=float, default=30.0)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    files = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[
        : args.n
    ]
    clean = [read_image(p).gray for p in files]
    rng = np.random.default_rng(0)
    noisy = [np.clip(c + rng.normal(0, args.sigma, c.shape), 0, 255).astype(np.uint8) for c in clean]
    denoisers = {
        "torch": AutoencoderDenoiser(load_checkpoint(args.bundle / "denoiser").model),
        "onnxruntime": RuntimeAutoencoder(
            OnnxRunner(args.bundle / "onnx" / "denoiser.onnx", threads=threads)
        ),
        "openvino": RuntimeAutoencoder(
            OpenVinoRunner(args.bundle / "openvino" / "denoiser.xml", threads=threads)
        ),
    }
    print(
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, {threads} threads, {len(files)} photos"
    )
    for round_ in (1, 2):
        for name, denoise in denoisers.items():
            denoise(noisy[0])
            back, inter = mean_ms(denoise, clean, noisy, False), mean_ms(denoise, clean, noisy, True)
            print(f"round {round_} {name:12s} back to back {back:6.2f} ms, between PSNR/SSIM {inter:6.2f} ms")


if __name__ == "__main__":
    main()
