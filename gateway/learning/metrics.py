"""Evaluation: forecast error against persistence, classification accuracy and macro F1.

Persistence ("the next reading equals the last one") is the baseline a forecaster must
beat to be worth shipping to a board; the gateway records both in the model registry.
"""

from __future__ import annotations

import numpy as np


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    diff = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    return float(np.mean(diff * diff))


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(target, np.float64))))


def forecast_report(pred: np.ndarray, target: np.ndarray, last: np.ndarray) -> dict[str, float]:
    """Model vs persistence (``last``: the most recent input reading) in standardized units."""
    report = {
        "mse": mse(pred, target),
        "mae": mae(pred, target),
        "persistence_mse": mse(last, target),
        "persistence_mae": mae(last, target),
    }
    report["mae_ratio"] = report["mae"] / max(report["persistence_mae"], 1e-12)
    return report


def accuracy(pred_class: np.ndarray, target: np.ndarray) -> float:
    pred_class, target = np.asarray(pred_class), np.asarray(target)
    return float(np.mean(pred_class == target)) if target.size else 0.0


def macro_f1(pred_class: np.ndarray, target: np.ndarray, n_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1 over classes present in target or prediction."""
    pred_class, target = np.asarray(pred_class), np.asarray(target)
    k = n_classes or int(max(pred_class.max(initial=0), target.max(initial=0))) + 1
    scores = []
    for c in range(k):
        tp = int(np.count_nonzero((pred_class == c) & (target == c)))
        fp = int(np.count_nonzero((pred_class == c) & (target != c)))
        fn = int(np.count_nonzero((pred_class != c) & (target == c)))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def classify_report(probs: np.ndarray, target: np.ndarray) -> dict[str, float]:
    pred = np.asarray(probs).argmax(axis=1)
    return {
        "accuracy": accuracy(pred, target),
        "macro_f1": macro_f1(pred, target, np.asarray(probs).shape[1]),
    }


def precision_recall(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Precision and recall of boolean ``flagged`` against boolean ``truth``."""
    flagged, truth = np.asarray(flagged, bool), np.asarray(truth, bool)
    tp = int(np.count_nonzero(flagged & truth))
    precision = tp / max(int(flagged.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    return precision, recall
