"""Image-quality and classification metrics used by evaluation (scikit-image and scikit-learn underneath)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import confusion_matrix


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
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, pred, labels=[False, True]).ravel())
    n = len(labels)
    return {
        "accuracy": (tp + tn) / n if n else float("nan"),
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "n": n,
    }


def confusion(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted, over ``range(n_classes)``."""
    return confusion_matrix(true, pred, labels=list(range(n_classes)))
