"""Where inference runs: ``--device``, the batched torch.fft spectra against the NumPy path, FLOP counting, and
the bench's import chain (docs/proofs/gpu_bench.sh runs it where only torch, NumPy, OpenCV and timm are)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from inspection import NOISE_TYPES
from inspection.bench import count_flops, fft_flops, measure_peak_gflops
from inspection.data import synth_casting
from inspection.noise import add_noise
from inspection.pipeline import InspectionPipeline
from inspection.runtimes import BackendError
from inspection.spectrum import noise_features, noise_features_batch

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = not torch.cuda.is_available()


def noisy_photos(n_per_type: int = 3, shape: tuple[int, int] = (160, 200), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    photos = []
    for kind in NOISE_TYPES:
        for _ in range(n_per_type):
            clean = synth_casting(rng, max(shape), "blowhole" if rng.random() < 0.5 else None)
            photos.append(add_noise(clean[: shape[0], : shape[1]], kind, rng=rng))
    return photos


@pytest.mark.parametrize("shape", [(160, 200), (64, 64), (40, 48)])
def test_batched_spectra_match_the_numpy_path(shape):
    photos = noisy_photos(2, shape)
    for channels in (1, 2):
        numpy_path = np.stack([noise_features(p, 64, channels) for p in photos])
        torch_path = noise_features_batch(photos, 64, channels).numpy()
        assert torch_path.shape == numpy_path.shape and torch_path.dtype == np.float32
        assert np.abs(torch_path - numpy_path).max() < 1e-3
    # The third plane keeps the zero frequency bin, where the mean-removed sum is float32 rounding in both.
    three = noise_features_batch(photos, 64, 3).numpy()
    assert np.abs(three - np.stack([noise_features(p, 64, 3) for p in photos])).max() < 0.1


def test_batched_spectra_refuse_mixed_sizes():
    with pytest.raises(ValueError, match="one size"):
        noise_features_batch([np.zeros((64, 64), np.uint8), np.zeros((64, 80), np.uint8)])


def test_batched_spectra_route_photos_as_the_numpy_path(shipped_models):
    pipe = InspectionPipeline.from_dir(shipped_models, workers=1)
    photos = noisy_photos(4, (200, 200), seed=1) + noisy_photos(2, (150, 220), seed=2)
    numpy_probs = pipe.classify_noise(photos)
    pipe.batch_on_device = True
    torch_probs = pipe.classify_noise(photos)
    assert np.abs(numpy_probs - torch_probs).max() < 1e-3
    assert [NOISE_TYPES[i] for i in numpy_probs.argmax(1)] == [NOISE_TYPES[i] for i in torch_probs.argmax(1)]
    routes = [(t, d.name, s) for t, d, s in pipe.route(numpy_probs, photos)]
    assert routes == [(t, d.name, s) for t, d, s in pipe.route(torch_probs, photos)]


@pytest.mark.skipif(not NO_CUDA, reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(tiny_models, capsys):
    from inspection.cli import main

    with pytest.raises(BackendError, match="sees no CUDA GPU.*--device cpu"):
        InspectionPipeline.from_dir(tiny_models, device="cuda")
    assert (
        main(["bench", "--models", str(tiny_models), "--device", "cuda", "--n", "2", "--reference-n", "0"])
        == 2
    )
    assert "sees no CUDA GPU" in capsys.readouterr().err


def test_an_exported_backend_refuses_cuda(tiny_models):
    with pytest.raises(BackendError, match="torch backend only"):
        InspectionPipeline.from_dir(tiny_models, device="cuda", backend="onnxruntime")


@pytest.mark.gpu
@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA device")
def test_pipeline_on_cuda_routes_and_judges_as_on_cpu(shipped_models):
    photos = noisy_photos(8, (300, 300), seed=3)
    cpu = InspectionPipeline.from_dir(shipped_models).inspect_batch(photos)
    gpu = InspectionPipeline.from_dir(shipped_models, device="cuda").inspect_batch(photos)
    from inspection.bench import parity_report

    report = parity_report(cpu, gpu)
    assert report["routes_agree"] == report["verdicts_agree"] == report["judged"] == len(photos)
    assert report["max_delta_noise_p"] < 1e-3 and report["max_delta_defect_p"] < 1e-2


def test_flop_count_of_a_tiny_model_matches_a_hand_count():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    conv = 2 * (8 * 8) * 4 * (1 * 3 * 3)  # 2 FLOPs per multiply-add, per output pixel and channel
    linear = 2 * (4 * 8 * 8) * 2
    assert count_flops(model, torch.zeros(1, 1, 8, 8)) == conv + linear
    assert fft_flops(8, 8) == 5 * 64 * 6


def test_peak_is_positive():
    assert 0 < measure_peak_gflops(n=256, repeats=2) < 1e7


# Packages a station running `inspection bench` may lack: only torch, NumPy, OpenCV, SciPy, scikit-image,
# scikit-learn, timm and safetensors (with what they require: torchvision and Pillow, PyYAML, huggingface_hub).
NOT_NEEDED = [
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "streamlit",
    "httpx",
    "fsspec",
    "pandas",
    "onnxruntime",
    "openvino",
    "tqdm",
    "requests",
    "wandb",
    "mlflow",
    "imageio",
    "psycopg",
    "psycopg2",
    "multipart",
]


def run_blocked(*args: str) -> subprocess.CompletedProcess[str]:
    code = (
        f"import sys\nfor m in {NOT_NEEDED!r}: sys.modules[m] = None\n"
        f"from inspection.cli import main\nsys.exit(main({list(args)!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=240)


def test_bench_needs_no_service_dashboard_or_database_packages(tiny_models):
    done = run_blocked("bench", "--help")
    assert done.returncode == 0, done.stderr
    assert "--device" in done.stdout
    args = ["bench", "--models", str(tiny_models), "--n", "2", "--size", "64", "--batch-sizes", "2"]
    done = run_blocked(*args, "--reference-n", "0", "--threads", "1", "--png")
    assert done.returncode == 0, done.stderr
    assert "float32 peak" in done.stdout


@pytest.mark.gpu
@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA device")
def test_defect_training_runs_its_denoiser_on_the_training_device(tiny_root):
    from inspection.train import _oracle_router

    ae = _oracle_router(str(tiny_root), torch.device("cuda")).denoisers["autoencoder"]
    assert next(ae.model.parameters()).device.type == "cuda"  # type: ignore[attr-defined]
    photo = noisy_photos(1, (64, 64))[1]
    assert ae(photo).shape == photo.shape


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error for a machine without a CUDA GPU")
@pytest.mark.parametrize("command", ["score", "watch", "serve"])
def test_score_watch_and_serve_refuse_cuda_without_a_gpu(
    command, tiny_models, casting_photo, tmp_path, capsys
):
    from inspection.cli import main

    db = f"sqlite:///{tmp_path / 'r.db'}"
    photo = tmp_path / "part.png"
    cv2.imwrite(str(photo), casting_photo)
    args = {
        "score": ["score", str(photo), "--no-db", "--models", str(tiny_models)],
        "watch": ["watch", str(tmp_path), "--station", "line-1", "--once", "--models", str(tiny_models),
                  "--db", db],
        "serve": ["serve", "--models", str(tiny_models), "--db", db, "--photos", str(tmp_path / "photos"),
                  "--port", "0"],
    }[command]  # fmt: skip
    assert main([*args, "--device", "cuda"]) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err


@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA GPU")
def test_a_scoring_process_of_the_service_runs_on_cuda_as_on_cpu(shipped_models):
    from inspection.service.remote import ProcessPipeline

    photos = [cv2.imencode(".png", p)[1].tobytes() for p in noisy_photos(2, (300, 300))]
    results = {}
    for device in ("cpu", "cuda"):
        pipe = ProcessPipeline(str(shipped_models), torch_threads=1, device=device)
        try:
            results[device] = pipe.inspect_batch(photos)
        finally:
            pipe.close()
    for cpu, gpu in zip(results["cpu"], results["cuda"], strict=True):
        assert (cpu.noise_type, cpu.verdict) == (gpu.noise_type, gpu.verdict)
