"""The evaluation protocol (needs the `train` extra).

Stratified k-fold cross-validation with a fixed seed: in each fold a fresh
model is fine-tuned on the other folds with the fixed `Config`, exported to
int8 ONNX exactly as shipped, and scored on the held-out fold. Metrics are
reported as mean and standard deviation over folds, for the fp32 torch model
and for the int8 ONNX model that ships. Finished folds are cached on disk, so
an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from .data import RANDOM_DOMAINS, Example
from .metrics import binary_metrics
from .export import export
from .train import Config, Progress, fit, predict_torch, refit_severity_head, stderr_progress, training_extras

RECALL_TARGET = 0.90


def severity_f1(sev_true: np.ndarray, sev_logits: np.ndarray) -> float:
    """Macro-F1 over the four levels, on gold complaints with a severity."""
    keep = sev_true > 0
    if not keep.any():
        return float("nan")
    return f1_score(sev_true[keep], sev_logits[keep].argmax(1) + 1, average="macro", labels=[1, 2, 3, 4], zero_division=0)


def threshold_for_recall(y: np.ndarray, p: np.ndarray, target: float = RECALL_TARGET) -> float:
    """The highest threshold whose complaint recall is at least `target`."""
    pos = np.sort(p[y == 1])[::-1]
    k = int(np.ceil(target * len(pos))) - 1
    return float(pos[max(0, min(k, len(pos) - 1))])


def _key(examples: Sequence[Example], folds: int, seed: int, config: Config) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([folds, seed, asdict(config)], sort_keys=True).encode())
    extras = training_extras(config)
    for e in [*examples, *extras]:
        h.update(f"{e.label}\t{e.severity}\t{e.text}\n".encode())
    return h.hexdigest()[:16]


def cross_validate(
    examples: Sequence[Example],
    *,
    folds: int = 10,
    seed: int = 0,
    config: Config = Config(),
    cache_dir: str | Path | None = "build/classifier/cv",
    progress: Progress | None = stderr_progress,
    run_folds: int | None = None,
) -> dict:
    """Out-of-fold scores for every example (fp32 and int8), and the fold ids."""
    from . import ComplaintModel

    y = np.array([e.label for e in examples])
    n = len(examples)
    fold_of = np.full(n, -1)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(np.zeros(n), y))
    cache = Path(cache_dir) / _key(examples, folds, seed, config) if cache_dir else None
    oof = {k: np.zeros(n, np.float32) for k in ("fp32", "int8")}
    sev = {k: np.zeros((n, 4), np.float32) for k in ("fp32", "int8", "joint")}
    # the extra training texts join every training part, never a test fold: the folds stay the benchmark's
    extras = training_extras(config)
    started = time.monotonic()
    for f, (train_idx, test_idx) in enumerate(splits[: run_folds or folds]):
        fold_of[test_idx] = f
        cached = cache / f"fold{f}.npz" if cache else None
        if cached and cached.is_file():
            saved = np.load(cached)
            for k in oof:
                oof[k][test_idx] = saved[f"p_{k}"]
            for k in sev:
                sev[k][test_idx] = saved[f"s_{k}"]
            if progress:
                progress(f"fold {f + 1}/{folds}: cached ({cached})")
            continue
        if progress:
            progress(f"fold {f + 1}/{folds}: fine-tuning on {len(train_idx)} texts")
        train = [examples[i] for i in train_idx]
        net, tokenizer = fit(train + extras, seed=seed, config=replace(config, severity_refit=False), progress=progress)
        texts = [examples[i].text for i in test_idx]
        # one pass over every text before the refit: complaint scores, the jointly trained severity head (kept
        # for comparison with the refitted one) and the fine-tuned pooled vectors; the refit changes only the
        # severity head, so its fp32 logits come from the same vectors
        scores, joint, vectors = predict_torch(net, tokenizer, [e.text for e in examples], config.max_len)
        sev["joint"][test_idx] = joint[test_idx]
        if config.severity_refit:
            refit_severity_head(net, tokenizer, train, config=config, progress=progress, vectors=vectors[train_idx])
        oof["fp32"][test_idx] = scores[test_idx]
        with torch.no_grad():
            sev["fp32"][test_idx] = net.severity(torch.from_numpy(vectors[test_idx])).numpy()
        with tempfile.TemporaryDirectory() as tmp:
            # calibrated on this fold's training texts only: the test fold stays unseen
            export(net, tmp, version=f"cv-fold{f}", threshold=0.5, calibration=[e.text for e in train])
            model = ComplaintModel(tmp)
            p, s, _ = model.scores(texts)
            oof["int8"][test_idx], sev["int8"][test_idx] = p, s
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            # the fine-tuned pooled vectors of every text (float16; row i is example i), so other heads on
            # the same encoders can be compared later without fine-tuning again
            np.savez(cached, **{f"p_{k}": oof[k][test_idx] for k in oof}, **{f"s_{k}": sev[k][test_idx] for k in sev},
                     vectors=vectors.astype(np.float16), train_idx=train_idx, test_idx=test_idx)
        if progress:
            m = binary_metrics(y[test_idx], oof["int8"][test_idx])
            progress(
                f"fold {f + 1}/{folds}: macro-F1 {100 * m['macro_f1']:.1f} (int8), "
                f"{time.monotonic() - started:.0f}s elapsed"
            )
    return {"y": y, "fold": fold_of, "oof": oof, "sev": sev, "splits": splits}


def summarise(examples: Sequence[Example], cv: dict, threshold: float | None = None) -> dict:
    """Per-fold mean/sd tables, the recall-first threshold and per-domain rows."""
    y, fold = cv["y"], cv["fold"]
    sev_true = np.array([e.severity for e in examples])
    domain = np.array([e.domain for e in examples])
    cs = ~np.isin(domain, list(RANDOM_DOMAINS))
    done = sorted(set(fold.tolist()) - {-1})
    result: dict = {"folds": len(done), "of": len(cv.get("splits", done))}
    if threshold is None:
        mask = fold >= 0
        threshold = threshold_for_recall(y[mask], cv["oof"]["int8"][mask])
    result["threshold"] = threshold
    for kind in ("fp32", "int8"):
        p, s = cv["oof"][kind], cv["sev"][kind]
        for name, subset in (("all", np.ones_like(cs)), ("customer_service", cs)):
            for label, cut in (("t0.5", 0.5), ("operating", threshold)):
                rows = []
                for f in done:
                    m = (fold == f) & subset
                    r = binary_metrics(y[m], p[m], cut)
                    r["severity_macro_f1"] = severity_f1(sev_true[m], s[m])
                    rows.append(r)
                keys = rows[0].keys()
                result[f"{kind}/{name}/{label}"] = {
                    k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))) for k in keys
                }
    joint = [severity_f1(sev_true[fold == f], cv["sev"]["joint"][fold == f]) for f in done]
    result["severity_joint_head"] = (float(np.mean(joint)), float(np.std(joint)))
    p = cv["oof"]["int8"]
    per_domain = {}
    for d in sorted(set(domain.tolist())):
        m = (domain == d) & (fold >= 0)
        if not m.any():
            continue
        pred = p[m] >= threshold
        row = {"n": int(m.sum()), "complaints": int(y[m].sum()), "flagged": int(pred.sum())}
        if y[m].sum():
            row["recall"] = float(pred[y[m] == 1].mean())
            row["precision"] = float(y[m][pred].mean()) if pred.any() else float("nan")
            row["macro_f1"] = float(f1_score(y[m], pred.astype(int), average="macro", zero_division=0))
        row["false_alarm_rate"] = float(pred[y[m] == 0].mean()) if (y[m] == 0).any() else float("nan")
        per_domain[d] = row
    result["per_domain"] = per_domain
    return result


def format_report(result: dict) -> str:
    of = result.get("of", result["folds"])
    scope = f"{of}-fold" if result["folds"] == of else f"{of}-fold (first {result['folds']} folds only)"
    lines = [f"Stratified {scope} cross-validation; mean ± sd over folds (percent)."]
    cols = ("macro_f1", "accuracy", "auc", "precision", "recall", "severity_macro_f1")
    head = f"{'model':<6} {'rows':<17} {'threshold':<10}" + "".join(f"{c:>19}" for c in cols)
    lines += ["", head, "-" * len(head)]
    for kind in ("fp32", "int8"):
        for name in ("all", "customer_service"):
            for label in ("t0.5", "operating"):
                table = result[f"{kind}/{name}/{label}"]
                cut = "0.5" if label == "t0.5" else f"{result['threshold']:.3f}"
                cells = "".join(f"{100 * table[c][0]:>12.1f} ± {100 * table[c][1]:>4.1f}" for c in cols)
                lines.append(f"{kind:<6} {name:<17} {cut:<10}{cells}")
    m, sd = result["severity_joint_head"]
    lines += ["", f"Severity macro-F1 of the jointly trained head, before the balanced refit (fp32): "
                  f"{100 * m:.1f} ± {100 * sd:.1f}"]
    lines += ["", f"Per domain (int8, threshold {result['threshold']:.3f}):"]
    lines.append(f"{'domain':<14}{'n':>6}{'compl.':>8}{'flagged':>9}{'recall':>8}{'prec.':>8}{'macroF1':>9}{'false alarms':>14}")
    for d, r in result["per_domain"].items():
        def pct(k):
            v = r.get(k)
            return "-" if v is None or v != v else f"{100 * v:.1f}"
        lines.append(
            f"{d:<14}{r['n']:>6}{r['complaints']:>8}{r['flagged']:>9}{pct('recall'):>8}{pct('precision'):>8}"
            f"{pct('macro_f1'):>9}{pct('false_alarm_rate'):>14}"
        )
    return "\n".join(lines)
