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

from .runtime import SHIPPED_DIR, ComplaintModel, ModelError, Prediction, default_threads
from .text import prepare_text

__all__ = ["ComplaintModel", "ModelError", "Prediction", "embed", "load", "prepare_text", "SHIPPED_DIR"]

_cache: dict[tuple[Path, int], ComplaintModel] = {}
_lock = threading.Lock()


def load(path: str | os.PathLike | None = None, *, threads: int | None = None) -> ComplaintModel:
    """The model in `path` (a directory), or the shipped one, run on `threads` intra-op threads (default two,
    one on a one-core machine); cached per path and threads."""
    folder = Path(path).resolve() if path is not None else SHIPPED_DIR
    key = (folder, threads or default_threads())
    with _lock:
        model = _cache.get(key)
        if model is None:
            model = _cache[key] = ComplaintModel(folder, threads=key[1])
        return model


def embed(texts: Sequence[str]) -> np.ndarray:
    """Embeddings from the shipped model: (n, d) float32, L2-normalised."""
    return load().embed(texts)
