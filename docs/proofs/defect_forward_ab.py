"""Two bundles' defect models on the same batch, interleaved in one process: their forward time alone.

Whole-pipeline benches run minutes apart on this machine drift by 10% and more; this times only the defect
model, alternating the two (the order flipped every round), 30 rounds of a batch of 32 at 128 px on 2 threads.
Used for synthetic-v6 against synthetic-v7 (docs/results.md, "Longer training").

Usage: python docs/proofs/defect_forward_ab.py BUNDLE_A BUNDLE_B
"""

import sys
import time

import numpy as np
import torch

from inspection.models.checkpoint import load_checkpoint
from inspection.models.inference import for_inference


def main(a: str, b: str) -> None:
    torch.set_num_threads(2)
    nets = {path: for_inference(load_checkpoint(f"{path}/defect").model) for path in (a, b)}
    x = torch.randn(32, 1, 128, 128).contiguous(memory_format=torch.channels_last)
    times: dict[str, list[float]] = {path: [] for path in nets}
    with torch.inference_mode():
        for net in nets.values():
            for _ in range(5):
                net(x)
        for r in range(30):
            for path in (a, b) if r % 2 == 0 else (b, a):
                t0 = time.perf_counter()
                nets[path](x)
                times[path].append((time.perf_counter() - t0) * 1e3)
    for path, t in times.items():
        print(f"{path}: median {np.median(t):.2f} ms, mean {np.mean(t):.2f} ms a batch of 32")


if __name__ == "__main__":
    main(*sys.argv[1:3])
