#!/usr/bin/env bash
# The pipeline on a CUDA GPU, from a bare checkout: no pip, no network.
#
# Needs Python 3.12 with torch (CUDA build), numpy, opencv, scipy, scikit-image, scikit-learn, timm and
# safetensors; `inspection bench` imports nothing else (tests/test_device.py blocks the rest and runs it).
# Synthesises its photos (300 px castings under the four noise types), hands them over as PNG files so
# decoding is timed, and writes to ${OUT:-/tmp/gpu_bench}:
#   parity.txt, parity.json   Python, torch and GPU (first lines of parity.txt); routes and verdicts on cuda
#                             against cpu, 256 photos (must agree on every photo;
#                             the benches still run when they do not, and the script then exits 1); the
#                             gpu-marked tests' summary, where pytest is installed
#   cuda_processes_stream.*   bench --device cuda --worker-processes --stream, 2,048 photos: parts/s at batch
#                             256 end to end (the next batch decoding while one is judged), float32 peak and
#                             each stage's share of its compute bound
#   cuda_processes.json, .md  1,024 photos, each batch decoded, then judged; batch 256 and p99 ms at batch 1
#   cuda.json, cuda.md        the same with worker threads, not processes
# The same machine's CPU alone was measured by earlier runs (docs/proofs/gpu_runs/); a lent GPU machine's tool
# brings back at most eight files. About 3 minutes on an H200 machine; every step has its own time limit (5 minutes in all).
#
# Usage: bash docs/proofs/gpu_bench.sh
# Then: python -m inspection.summary --gpu "$OUT" --out docs/results.json   (the gpu section)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/gpu_bench}
mkdir -p "$out"
export PYTHONPATH=. OMP_WAIT_POLICY=PASSIVE

python3 - >"$out/parity.txt" <<'PY'
import sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else "none", "threads", torch.get_num_threads())
PY
cat "$out/parity.txt"

parity=0
timeout 45 python3 - "$out/parity.json" >>"$out/parity.txt" 2>&1 <<'PY' || parity=1
import json
import sys

import numpy as np
from inspection import NOISE_TYPES
from inspection.bench import parity_report, render_parity
from inspection.data import synth_casting
from inspection.noise import add_noise
from inspection.pipeline import InspectionPipeline

rng = np.random.default_rng(3)
photos = [add_noise(synth_casting(rng, 300, "blowhole" if i % 2 else None), NOISE_TYPES[i % 4], rng=rng)
          for i in range(256)]
cpu = InspectionPipeline.from_dir().inspect_batch(photos)
gpu = InspectionPipeline.from_dir(device="cuda").inspect_batch(photos)
report = parity_report(cpu, gpu)
print(render_parity(report, "cuda").replace("against torch", "against cpu"))
with open(sys.argv[1], "w") as fh:
    json.dump(report, fh, indent=1)
assert report["routes_agree"] == report["verdicts_agree"] == report["judged"], report
PY
tail -n +3 "$out/parity.txt"

# The gpu-marked tests, where pytest is installed (it was on the lent machines so far); their lines join parity.txt.
if python3 -c "import pytest" 2>/dev/null; then
  timeout 45 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_device.py tests/test_ondevice.py \
    2>&1 | tail -n 5 | tee -a "$out/parity.txt" || true
fi

bench=(python3 -m inspection.cli bench --size 300 --reference-n 0 --png --device cuda)
timeout 90 "${bench[@]}" --batch-sizes 256 --n 2048 --worker-processes --stream \
  --json "$out/cuda_processes_stream.json" | tee "$out/cuda_processes_stream.md"
timeout 60 "${bench[@]}" --batch-sizes 1 256 --n 1024 --worker-processes --json "$out/cuda_processes.json" |
  tee "$out/cuda_processes.md"
timeout 60 "${bench[@]}" --batch-sizes 1 256 --n 1024 --json "$out/cuda.json" | tee "$out/cuda.md"
[ "$parity" = 0 ] || { echo "cuda and cpu disagree: see $out/parity.txt" >&2; exit 1; }
