"""The batched notch filter eagerly against one CUDA graph per batch size, on a CUDA GPU (about 30 s).

Usage: PYTHONPATH=. python3 docs/proofs/notch_graph.py

Eagerly, ``inspection.ondevice.BatchNotch`` launches a few thousand small kernels for a batch (28 ms for 64
photos of 300 px on an H200, most of it launching). Here the whole search (``early_exit=False``: all steps, no
synchronisation) is captured once per batch size, padded to a multiple of 32 with blank photos that find no
peak, and replayed; one filter object keeps its graphs across batches (an earlier try, c9bac27, built a new filter
each batch and so captured every time). Prints, for batches of 1, 8, 64 and 256 periodic photos, the best of 5
times either way and whether the outputs are identical.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from inspection.data import synth_casting
from inspection.denoise import NotchDenoiser
from inspection.noise import add_noise
from inspection.ondevice import BatchNotch, upload

PAD = 32


class GraphNotch:
    """``BatchNotch`` replayed from a CUDA graph per padded batch size and photo size."""

    def __init__(self, notch: BatchNotch) -> None:
        self.notch = notch
        self.graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, gray: torch.Tensor) -> torch.Tensor:
        n = len(gray)
        shape = (-(-n // PAD) * PAD, *gray.shape[1:])
        if shape not in self.graphs:
            self.graphs[shape] = self.capture(shape, gray.device)
        graph, static_in, static_out = self.graphs[shape]
        static_in[:n].copy_(gray)
        static_in[n:].zero_()
        graph.replay()
        return static_out[:n].clone()

    def capture(self, shape: tuple[int, ...], device: torch.device):
        static_in = torch.zeros(shape, dtype=torch.uint8, device=device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # FFT plans, BLAS handles and the ring tables before the capture
            self.notch(static_in, early_exit=False)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.notch(static_in, early_exit=False)
        return graph, static_in, static_out


def best_ms(fn, x, repeats: int = 5) -> float:
    fn(x)
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> int:
    if not torch.cuda.is_available():
        print("notch_graph.py needs a CUDA GPU; this machine has none")
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False  # as the pipeline sets it on a GPU
    rng = np.random.default_rng(0)
    photos = [add_noise(synth_casting(rng, 300, None), "periodic", rng=rng) for _ in range(256)]
    eager = BatchNotch(NotchDenoiser())
    graphed = GraphNotch(eager)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("| photos | eager ms | graph ms | identical |")
    print("|---|---|---|---|")
    for n in (1, 8, 64, 256):
        x = upload(photos[:n], "cuda")
        same = torch.equal(eager(x), graphed(x))
        print(f"| {n} | {best_ms(eager, x):.1f} | {best_ms(graphed, x):.1f} | {same} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
