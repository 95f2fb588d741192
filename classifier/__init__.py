"""Hearken's complaint classifier.

    import classifier
    model = classifier.load()                      # the shipped model, offline
    model.predict(["@shop my order never arrived and nobody answers"])
    classifier.embed(["text", ...])                # (n, 384) float32, L2-normalised

Inference uses ONNX Runtime and `tokenizers` only; training and evaluation
(classifier.train, classifier.evaluate) need the `train` extra. This package
imports nothing else of the project.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .runtime import SHIPPED_DIR, ComplaintModel, ModelError, Prediction
from .text import prepare_text

__all__ = ["ComplaintModel", "ModelError", "Prediction", "embed", "load", "prepare_text", "SHIPPED_DIR"]

_cache: dict[Path, ComplaintModel] = {}
_lock = threading.Lock()


def load(path: str | os.PathLike | None = None) -> ComplaintModel:
    """The model in `path` (a directory), or the shipped one; cached per path."""
    key = Path(path).resolve() if path is not None else SHIPPED_DIR
    with _lock:
        model = _cache.get(key)
        if model is None:
            model = _cache[key] = ComplaintModel(key)
        return model


def embed(texts: Sequence[str]) -> np.ndarray:
    """Embeddings from the shipped model: (n, d) float32, L2-normalised."""
    return load().embed(texts)
