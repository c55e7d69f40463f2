"""Image-quality, classification and calibration metrics (scikit-image and scikit-learn underneath).

Also the two decisions made on validation data after training: the temperature that calibrates P(defective)
and the threshold that minimises the expected cost of mistakes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
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
    """Accuracy, balanced accuracy, sensitivity (defect recall), specificity (ok recall) and F1 of defects.

    Balanced accuracy is the mean of sensitivity and specificity, over the classes present (with no good part,
    it is the sensitivity): unlike accuracy, answering "ok" to every part scores 50% whatever the defect rate.
    """
    pred, labels = np.asarray(pred, bool), np.asarray(labels, bool)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, pred, labels=[False, True]).ravel())
    n = len(labels)
    recalls = [
        r for r in (tp / (tp + fn) if tp + fn else None, tn / (tn + fp) if tn + fp else None) if r is not None
    ]
    return {
        "accuracy": (tp + tn) / n if n else float("nan"),
        "balanced_accuracy": float(np.mean(recalls)) if recalls else float("nan"),
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "n": n,
    }


def balanced_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``true`` (binary or multi-class)."""
    true, pred = np.asarray(true), np.asarray(pred)
    classes = np.unique(true)
    return float(np.mean([(pred[true == c] == c).mean() for c in classes])) if len(classes) else float("nan")


def binary_nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``sigmoid(logits / temperature)``."""
    z = np.asarray(logits, np.float64) / temperature
    y = np.asarray(labels, np.float64)
    # log(1 + e^z) - y z, computed without overflow
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def expected_calibration_error(prob: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of P(defective): over ``bins`` equal-width bins, the photo-weighted mean of |defect rate - mean P|.

    Paper: Guo et al. 2017, "On Calibration of Modern Neural Networks" (arXiv 1706.04599).
    """
    prob, labels = np.asarray(prob, np.float64), np.asarray(labels, np.float64)
    if not len(prob):
        return float("nan")
    idx = np.minimum((prob * bins).astype(int), bins - 1)
    ece = 0.0
    for b in np.unique(idx):
        m = idx == b
        ece += m.mean() * abs(labels[m].mean() - prob[m].mean())
    return float(ece)


def reliability(prob: np.ndarray, outcome: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """A reliability diagram and its ECE: per equal-width bin of ``prob``, how many photos fell in it, their
    mean probability and how often ``outcome`` held (defective, or "the top class was right")."""
    prob, outcome = np.asarray(prob, np.float64), np.asarray(outcome, np.float64)
    idx = np.minimum((prob * bins).astype(int), bins - 1)
    rows = [
        {
            "low": float(b / bins),
            "high": float((b + 1) / bins),
            "n": int((idx == b).sum()),
            "mean_probability": float(prob[idx == b].mean()),
            "observed": float(outcome[idx == b].mean()),
        }
        for b in np.unique(idx)
    ]
    return {"ece": expected_calibration_error(prob, outcome, bins), "n": int(len(prob)), "bins": rows}


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The scalar T > 0 minimising the NLL of ``sigmoid(logits / T)`` (temperature scaling).

    The targets are Platt's: ``(n_def + 1) / (n_def + 2)`` for defective photos and ``1 / (n_ok + 2)`` for good
    ones, not 1 and 0. With hard targets, validation photos that the model separates perfectly (common on small
    or easy validation sets) drive T towards 0 and P(defective) to exactly 0 or 1; the soft targets give a finite,
    sensible T there and change almost nothing on large sets. T is searched over log T in [-4, 4] (0.018 to 55).

    Paper: Guo et al. 2017, "On Calibration of Modern Neural Networks" (arXiv 1706.04599); targets from Platt
    1999, "Probabilistic Outputs for Support Vector Machines".
    """
    labels = np.asarray(labels, bool)
    n_def, n_ok = int(labels.sum()), int((~labels).sum())
    targets = np.where(labels, (n_def + 1) / (n_def + 2), 1 / (n_ok + 2))
    res = minimize_scalar(
        lambda log_t: binary_nll(logits, targets, math.exp(log_t)), bounds=(-4.0, 4.0), method="bounded"
    )
    return float(math.exp(res.x))


def fit_temperature_multiclass(logits: np.ndarray, labels: np.ndarray) -> float:
    """The scalar T > 0 minimising the cross-entropy of ``softmax(logits / T)`` against smoothed targets.

    The multi-class form of :func:`fit_temperature`: the true class's target is ``1 - eps`` and the others share
    ``eps``, with ``eps = 1 / (n + 2)`` for ``n`` photos per class on average, so a validation set the model
    separates perfectly still gives a finite T. T is searched over log T in [-4, 4].
    """
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, int)
    n, k = logits.shape
    eps = 1.0 / (n / k + 2)
    targets = np.full((n, k), eps / (k - 1))
    targets[np.arange(n), labels] = 1 - eps

    def nll(log_t: float) -> float:
        z = logits / math.exp(log_t)
        z = z - z.max(1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-(targets * log_p).sum(1).mean())

    return float(math.exp(minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded").x))


def top_label_ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of a multi-class model's confidence: |accuracy - mean top probability| over confidence bins."""
    probs = np.asarray(probs, np.float64)
    correct = probs.argmax(1) == np.asarray(labels)
    return expected_calibration_error(probs.max(1), correct, bins)


def expected_cost(
    pred: np.ndarray, labels: np.ndarray, *, miss_cost: float, false_reject_cost: float, defect_rate: float
) -> float:
    """Expected cost per part: ``miss_cost * P(def) * miss rate + false_reject_cost * P(ok) * false-reject rate``.

    The miss rate is the share of defective parts judged ok, the false-reject rate the share of good parts
    judged defective; ``defect_rate`` is P(def), the share of defective parts on the line.
    """
    pred, labels = np.asarray(pred, bool), np.asarray(labels, bool)
    miss = (~pred[labels]).mean() if labels.any() else 0.0
    false_reject = pred[~labels].mean() if (~labels).any() else 0.0
    return float(miss_cost * defect_rate * miss + false_reject_cost * (1 - defect_rate) * false_reject)


def cost_threshold(
    prob: np.ndarray,
    labels: np.ndarray,
    *,
    miss_cost: float = 1.0,
    false_reject_cost: float = 1.0,
    defect_rate: float | None = None,
) -> float:
    """The threshold on P(defective) with the least :func:`expected_cost` on validation data.

    Candidates lie midway between neighbouring distinct probabilities (and just below the smallest and above
    the largest), so the choice does not sit on one photo's score. Of equally cheap thresholds the lowest is
    taken: a tie goes to catching defects. ``defect_rate=None`` uses the share of defects in ``labels``, which
    makes the cost with costs 1 and 1 the error rate; ``defect_rate=0.5`` makes it 1 - balanced accuracy.
    """
    prob, labels = np.asarray(prob, np.float64), np.asarray(labels, bool)
    rate = float(labels.mean()) if defect_rate is None else defect_rate
    u = np.unique(prob)
    cands = np.concatenate([[max(u[0] - 1e-6, 0.0)], (u[:-1] + u[1:]) / 2, [min(u[-1] + 1e-6, 1.0)]])
    costs = [
        expected_cost(
            prob >= t, labels, miss_cost=miss_cost, false_reject_cost=false_reject_cost, defect_rate=rate
        )
        for t in cands
    ]
    return float(cands[int(np.argmin(np.round(costs, 12)))])


def confusion(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted, over ``range(n_classes)``."""
    return confusion_matrix(true, pred, labels=list(range(n_classes)))
