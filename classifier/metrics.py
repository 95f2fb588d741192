"""Binary complaint metrics, shared by the protocol and the field sets (needs scikit-learn)."""

from __future__ import annotations

import numpy as np


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, macro-F1, complaint precision and recall at `threshold`, and AUC (nan with one class)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    y = np.asarray(y)
    pred = (np.asarray(p) >= threshold).astype(int)
    out = {
        "accuracy": accuracy_score(y, pred),
        "macro_f1": f1_score(y, pred, average="macro", zero_division=0),
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0),
    }
    out["auc"] = roc_auc_score(y, p) if len(set(y.tolist())) == 2 else float("nan")
    return out
