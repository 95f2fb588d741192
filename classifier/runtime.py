"""Loading the shipped model and running it with ONNX Runtime.

This module is the whole inference path: onnxruntime, tokenizers and numpy,
never torch or scikit-learn.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .files import META_FILE, MODEL_FILE, SHIPPED_DIR, TOKENIZER_FILE  # noqa: F401  (imported from here too)


class ModelError(Exception):
    """The model files are missing, unreadable or inconsistent; names the file."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class Prediction:
    score: float  # complaint probability 0..1
    is_complaint: bool  # score >= threshold
    severity: int | None  # 1..4 for complaints, None otherwise
    topic: str | None  # coarse topic for complaints, None otherwise


def open_tokenizer(path: str | os.PathLike):
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise ModelError(path, "tokenizer file is missing")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise ModelError(path, f"tokenizer file is corrupt ({exc})") from exc
    tok.no_truncation()
    tok.no_padding()
    return tok


def aggregate_windows(logits: np.ndarray, rule: str = "max", temperature: float = 1.0,
                      opening_weight: float = 0.0) -> float:
    """One complaint logit for a text from its windows' logits (in reading order).

    "max": the most complaint-like window decides; a long friendly post that mentions one past problem
    has many chances to produce a false alarm. "opening-lme": a soft maximum over the windows (their
    log-mean-exp at `temperature`: near the maximum when one window stands out, near the mean when they
    agree), blended with the first window (the title and opening, where a post says what it is about)
    at `opening_weight`. A single window scores as itself under either rule.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if rule == "max":
        return float(logits.max())
    if rule != "opening-lme":
        raise ValueError(f"unknown rule {rule!r}, expected 'max' or 'opening-lme'")
    if not temperature > 0 or not 0.0 <= opening_weight <= 1.0:
        raise ValueError("temperature must be > 0 and opening_weight within 0..1")
    t = float(temperature)
    top = logits.max()
    soft = top + t * np.log(np.mean(np.exp((logits - top) / t)))
    return float(opening_weight * logits[0] + (1.0 - opening_weight) * soft)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def default_threads() -> int:
    """ONNX Runtime's intra-op threads when none are asked for (classifier.threads in the config): two, or
    one on a one-core machine."""
    return min(2, os.cpu_count() or 1)


class ComplaintModel:
    """A trained complaint model read from a directory of files.

    predict() splits texts longer than one window (meta.json: 96 tokens, the
    training length) into windows overlapping by a third, at most
    `max_windows` (12) of them: the first eleven and the last one. How the
    windows' complaint logits become the text's score is meta.json's
    "aggregate" (see `aggregate_windows`): "max", the most complaint-like
    window (models before issue 19), or "opening-lme", the opening window
    weighted against a soft maximum over all windows. A text takes the
    severity of its most complaint-like window; embed() averages the windows'
    normalised embeddings.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, batch_size: int = 32):
        import onnxruntime as ort

        self.path = Path(path)
        meta_path = self.path / META_FILE
        if not meta_path.is_file():
            raise ModelError(meta_path, "model metadata file is missing")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            self.version: str = str(meta["version"])
            self.threshold: float = float(meta["threshold"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(meta_path, f"model metadata is corrupt ({exc})") from exc
        self.meta = meta
        self.window = int(meta.get("window", 96))
        self.stride = int(meta.get("stride", 64))
        self.max_windows = int(meta.get("max_windows", 12))
        try:
            self.aggregate = dict(meta.get("aggregate") or {"rule": "max"})
            aggregate_windows(np.zeros(2, dtype=np.float32), **self.aggregate)
        except (TypeError, ValueError) as exc:
            raise ModelError(meta_path, f"model metadata has a bad 'aggregate' ({exc})") from exc
        self.batch_size = batch_size
        self._tokenizer = open_tokenizer(self.path / TOKENIZER_FILE)
        self._cls = self._tokenizer.token_to_id("[CLS]")
        self._sep = self._tokenizer.token_to_id("[SEP]")
        model_path = self.path / MODEL_FILE
        if not model_path.is_file():
            raise ModelError(model_path, "model file is missing")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        self.format = str(meta.get("quantised") or "int8-weights-per-channel")
        if self.format == "int8-weights-per-channel":
            # an older model (weights only in int8): fold their DequantizeLinear nodes into fp32 constants once,
            # at load, so it computes in fp32. A static int8 model (classifier/quantise.py) keeps its QDQ nodes:
            # ONNX Runtime fuses them into int8 kernels, with activation scales fixed in the graph.
            options.add_session_config_entry("session.disable_quant_qdq", "1")
        try:
            self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(model_path, f"model file is corrupt or not an ONNX model ({exc})") from exc
        outputs = {o.name for o in self._session.get_outputs()}
        if not {"complaint_logit", "severity_logits", "embedding"} <= outputs:
            raise ModelError(model_path, f"model file has unexpected outputs {sorted(outputs)}")

    def __repr__(self) -> str:
        return f"ComplaintModel(version={self.version!r}, threshold={self.threshold}, path='{self.path}')"

    # -- windows and batches -------------------------------------------------

    def _windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token windows for all texts, and the index of the text of each."""
        windows: list[list[int]] = []
        owner: list[int] = []
        inner = self.window - 2
        for i, enc in enumerate(self._tokenizer.encode_batch([t or "" for t in texts])):
            ids = enc.ids
            if len(ids) <= self.window:
                windows.append(ids)
                owner.append(i)
                continue
            body = ids[1:-1]
            starts = list(range(0, len(body) - inner + self.stride, self.stride))
            starts = [min(s, len(body) - inner) for s in starts]
            if len(starts) > self.max_windows:
                starts = starts[: self.max_windows - 1] + starts[-1:]
            for s in dict.fromkeys(starts):
                windows.append([self._cls, *body[s : s + inner], self._sep])
                owner.append(i)
        return windows, owner

    def _run(self, windows: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(windows)
        logits = np.zeros(n, dtype=np.float32)
        sev = np.zeros((n, 4), dtype=np.float32)
        emb: np.ndarray | None = None
        order = sorted(range(n), key=lambda i: len(windows[i]))
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            width = len(windows[idx[-1]])
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, j in enumerate(idx):
                ids[row, : len(windows[j])] = windows[j]
                mask[row, : len(windows[j])] = 1
            c, s, e = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            if emb is None:
                emb = np.zeros((n, e.shape[1]), dtype=np.float32)
            logits[idx], sev[idx], emb[idx] = c, s, e
        if emb is None:
            emb = np.zeros((0, 0), dtype=np.float32)
        return logits, sev, emb

    def scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw outputs per text: complaint probability, severity logits, embedding."""
        n = len(texts)
        windows, owner = self._windows(texts)
        logits, sev, emb = self._run(windows) if windows else (np.zeros(0), np.zeros((0, 4)), None)
        best = np.full(n, -np.inf, dtype=np.float32)
        best_sev = np.zeros((n, 4), dtype=np.float32)
        dim = emb.shape[1] if emb is not None and emb.size else 384
        pooled = np.zeros((n, dim), dtype=np.float32)
        per_text: list[list[int]] = [[] for _ in range(n)]
        for w, i in enumerate(owner):
            per_text[i].append(w)
            if logits[w] > best[i]:
                best[i] = logits[w]
                best_sev[i] = sev[w]
            pooled[i] += emb[w]
        text_logits = np.array([aggregate_windows(logits[ws], **self.aggregate) if len(ws) > 1 else best[i]
                                for i, ws in enumerate(per_text)], dtype=np.float64)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        pooled /= np.maximum(norms, 1e-12)
        return _sigmoid(text_logits).astype(np.float32), best_sev, pooled

    # -- public API ----------------------------------------------------------

    def predict(self, texts: Sequence[str], *, threshold: float | None = None) -> list["Prediction"]:
        return self.predict_with_embeddings(texts, threshold=threshold)[0]

    def predict_with_embeddings(self, texts: Sequence[str], *, threshold: float | None = None
                                ) -> tuple[list["Prediction"], np.ndarray]:
        """`predict` and `embed` from one forward pass: the runner stores both, the report reuses the vectors."""
        from .topics import topic_of

        if isinstance(texts, str):
            raise TypeError("predict() takes a sequence of texts, not one string")
        cut = self.threshold if threshold is None else float(threshold)
        probs, sev, pooled = self.scores(texts)
        out = []
        for text, p, s in zip(texts, probs, sev):
            complaint = bool(p >= cut)
            out.append(
                Prediction(
                    score=float(p),
                    is_complaint=complaint,
                    severity=int(np.argmax(s)) + 1 if complaint else None,
                    topic=topic_of(text) if complaint else None,
                )
            )
        return out, pooled

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        return self.scores(texts)[2]
