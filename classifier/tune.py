"""How the fixed hyperparameters were chosen, without touching the test folds.

    python -m classifier.tune

Takes the training part of fold 1 of the 10-fold protocol split (seed 0),
holds out a stratified 15% of it as a validation set, and fine-tunes a few
candidate configurations on the rest. Only the validation set is scored; the
10-fold test folds are never seen. The winner became `train.Config`.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from .data import load_benchmark
from .evaluate import binary_metrics, severity_f1
from .train import Config, fit, predict_torch

CANDIDATES = {
    "lr5e-5_ep3": Config(lr=5e-5, epochs=3),
    "lr1e-4_ep3": Config(lr=1e-4, epochs=3),
    "lr5e-5_ep5": Config(lr=5e-5, epochs=5),
    "lr1e-4_ep3_aux": Config(lr=1e-4, epochs=3, aux_weight=0.3),
    "lr5e-5_ep3_aux": Config(lr=5e-5, epochs=3, aux_weight=0.3),
    "lr1e-4_ep5_aux": Config(lr=1e-4, epochs=5, aux_weight=0.3),
}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(CANDIDATES)
    examples = load_benchmark()
    y = np.array([e.label for e in examples])
    train_idx, _ = next(StratifiedKFold(10, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    inner, val = train_test_split(train_idx, test_size=0.15, stratify=y[train_idx], random_state=0)
    sev = np.array([e.severity for e in examples])
    for name in names:
        config = CANDIDATES[name]
        started = time.monotonic()
        net, tok = fit([examples[i] for i in inner], seed=0, config=config, progress=None)
        p, s = predict_torch(net, tok, [examples[i].text for i in val], config.max_len)
        m = binary_metrics(y[val], p)
        print(
            f"{name}: val macro-F1 {100 * m['macro_f1']:.1f} AUC {100 * m['auc']:.1f} "
            f"severity macro-F1 {100 * severity_f1(sev[val], s):.1f} ({time.monotonic() - started:.0f}s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
