"""Image-quality and classification metrics used by evaluation."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(clean: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB for uint8 images; identical images give 100 dB instead of infinity."""
    if np.array_equal(clean, test):
        return 100.0
    return float(peak_signal_noise_ratio(clean, test, data_range=255))


def ssim(clean: np.ndarray, test: np.ndarray) -> float:
    return float(structural_similarity(clean, test, data_range=255))


def binary_scores(pred: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, sensitivity (defect recall), specificity (ok recall) and F1 of the defective class."""
    pred, labels = np.asarray(pred, bool), np.asarray(labels, bool)
    tp = int((pred & labels).sum())
    tn = int((~pred & ~labels).sum())
    fp = int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    n = len(labels)
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {
        "accuracy": (tp + tn) / n if n else float("nan"),
        "sensitivity": sens,
        "specificity": spec,
        "f1": f1,
        "n": n,
    }


def confusion(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (true, pred), 1)
    return m
