"""Hearken's complaint classifier.

    import classifier
    model = classifier.load()                      # the shipped model, offline
    model.predict(["@shop my order never arrived and nobody answers"])
    classifier.embed(["text", ...])                # (n, 384) float32, L2-normalised

Inference uses ONNX Runtime and `tokenizers` only; training and evaluation
(classifier.train, classifier.evaluate) need the `train` extra. This package
imports nothing else of the project. Nor does it import numpy or the runtime until a model is asked for
(`__getattr__` below), so that `hearken --help` and `hearken export-labels` start without them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .files import SHIPPED_DIR
from .text import prepare_text

if TYPE_CHECKING:
    import numpy as np

    from .runtime import ComplaintModel, ModelError, Prediction

__all__ = ["ComplaintModel", "ModelError", "Prediction", "embed", "load", "prepare_text", "SHIPPED_DIR"]

_cache: dict[tuple[Path, int], ComplaintModel] = {}
_lock = threading.Lock()
_FROM_RUNTIME = {"ComplaintModel", "ModelError", "Prediction", "default_threads"}


def __getattr__(name: str):
    if name in _FROM_RUNTIME:  # classifier.ModelError and the rest, imported on first use
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(path: str | os.PathLike | None = None, *, threads: int | None = None) -> ComplaintModel:
    """The model in `path` (a directory), or the shipped one, run on `threads` intra-op threads (default two,
    one on a one-core machine); cached per path and threads."""
    from .runtime import ComplaintModel, default_threads

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
