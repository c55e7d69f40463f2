"""Does int8 pay on this CPU? ONNX Runtime's static QDQ quantisation of a bundle's exported autoencoder and
defect model, timed and judged against the float32 export on photos the calibration did not see.

Usage (an export made by `inspection export BUNDLE --format onnx --out EXPORT_DIR`):
    python docs/proofs/int8_trial.py EXPORT_DIR DATA_ROOT

Calibration: 48 (autoencoder) and 64 (defect) photos of DATA_ROOT's train split; judged on 100 and 500 others
of it, never the test split. The autoencoder gets protocol Gaussian noise; PSNR is against the clean photo.
"""

from __future__ import annotations

import glob
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from inspection.noise import add_noise
from inspection.transforms import DefectTransform


class Batches(CalibrationDataReader):
    def __init__(self, xs: np.ndarray) -> None:
        self.it = iter([{"x": xs[i : i + 1]} for i in range(len(xs))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.it, None)


def int8(src: Path, calibration: np.ndarray, out: Path) -> Path:
    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(out),
        Batches(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8,
    )
    return out


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ms_per_photo(s: ort.InferenceSession, x: np.ndarray, repeats: int = 15) -> float:
    for _ in range(3):
        s.run(None, {"x": x})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        s.run(None, {"x": x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3 / len(x)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def autoencoder(export: Path, data: Path, tmp: Path) -> None:
    files = sorted(glob.glob(str(data / "train" / "ok_front" / "*")))
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(files))
    gray = [cv2.imread(files[i], cv2.IMREAD_GRAYSCALE) for i in pick[:148]]
    noisy = [add_noise(g, "gaussian", rng=rng) for g in gray]
    as_input = lambda ims: np.stack([im[None] for im in ims]).astype(np.float32) / 255  # noqa: E731
    q = int8(export / "denoiser.onnx", as_input(noisy[:48]), tmp / "denoiser.int8.onnx")
    for path in (export / "denoiser.onnx", q):
        s = session(path)
        out = [np.clip(np.rint(s.run(None, {"x": as_input([n])})[0][0, 0] * 255), 0, 255) for n in noisy[48:]]
        quality = np.mean([psnr(o, c) for o, c in zip(out, gray[48:], strict=True)])
        b1, b8 = ms_per_photo(s, as_input(noisy[48:49])), ms_per_photo(s, as_input(noisy[48:56]))
        print(
            f"autoencoder {path.name}: {b1:.2f} ms/photo at batch 1, {b8:.2f} at batch 8; PSNR {quality:.2f} dB"
        )


def defect(export: Path, data: Path, tmp: Path) -> None:
    meta = json.loads((export / "export.json").read_text())["models"]["defect"]
    pre, post = meta["preprocessing"], meta["postprocessing"]
    transform = DefectTransform(pre["size"], pre["mean"], pre["std"], pre["resize"])
    files = sorted(glob.glob(str(data / "train" / "*" / "*")))
    pick = np.random.default_rng(1).permutation(len(files))
    x = transform([cv2.imread(files[i], cv2.IMREAD_GRAYSCALE) for i in pick[:564]]).numpy()
    q = int8(export / "defect.onnx", x[:64], tmp / "defect.int8.onnx")
    p = {}
    for path in (export / "defect.onnx", q):
        s = session(path)
        logits = np.concatenate([s.run(None, {"x": x[i : i + 32]})[0] for i in range(64, len(x), 32)])
        p[path.name] = 1 / (1 + np.exp(-logits[:, 0] / post["temperature"]))
        print(f"defect {path.name}: {ms_per_photo(s, x[64:96], 20):.3f} ms/photo at batch 32")
    a, b = p.values()
    agree = int(((a > post["threshold"]) == (b > post["threshold"])).sum())
    print(
        f"defect verdicts int8 against float32: {agree}/{len(a)} agree, max |delta p| {np.abs(a - b).max():.4f}"
    )


if __name__ == "__main__":
    export_dir, data_root = Path(sys.argv[1]), Path(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp:
        autoencoder(export_dir, data_root, Path(tmp))
        defect(export_dir, data_root, Path(tmp))
