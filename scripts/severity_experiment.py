"""Severity experiment: which features and which second stage help the severity head?

Runs the evaluation protocol's folds (stratified 10-fold, seed 0, same splits as
`hearken evaluate`). In each fold it fine-tunes the joint model exactly as
`hearken train` does (without the severity refit), then saves, for every text:

- the mean-pooled hidden states of every encoder layer (0 = embeddings .. 6),
  the [CLS] state and the masked max over the last layer;
- the complaint probability and the joint severity logits;

and then fine-tunes the same network one more epoch ("stage 2") with the
severity loss class-balanced and weighted `--stage2-weight`, the complaint
loss kept on every training text, and saves the same features again.

Heads are compared on the cache by scripts/severity_heads.py, which also
says why they cannot be chosen by inner CV on the training complaints.
Results are in classifier/MODEL.md ("Severity: what else was measured").

Usage (from the repo root, after scripts/test.sh made .venv):
    .venv/bin/python scripts/severity_experiment.py          # 10 folds, ~80 min; cache in build/classifier/sevexp/
    .venv/bin/python scripts/severity_experiment.py --tune   # the selection split of classifier/tune.py, ~6 min
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OUT = Path("build/classifier/sevexp")


@torch.no_grad()
def features(net, tokenizer, texts, max_len=96, batch_size=64):
    from classifier.train import _encode, _pad

    net.eval()
    ids = _encode(tokenizer, texts, max_len)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    n, h = len(ids), net.encoder.config.hidden_size
    layers = np.zeros((n, 7, h), np.float32)
    cls = np.zeros((n, h), np.float32)
    mx = np.zeros((n, h), np.float32)
    prob = np.zeros(n, np.float32)
    sev = np.zeros((n, 4), np.float32)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        input_ids, mask = _pad([ids[i] for i in idx])
        out = net.encoder(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
        m = mask.unsqueeze(-1).float()
        for k, hs in enumerate(out.hidden_states):
            layers[idx, k] = ((hs * m).sum(1) / m.sum(1)).numpy()
        last = out.hidden_states[-1]
        cls[idx] = last[:, 0].numpy()
        mx[idx] = last.masked_fill(m == 0, -1e4).max(1).values.numpy()
        pooled = torch.tensor(layers[idx, 6])
        prob[idx] = torch.sigmoid(net.complaint(pooled).squeeze(-1)).numpy()
        sev[idx] = net.severity(pooled).numpy()
    return {"layers": layers.astype(np.float16), "cls": cls.astype(np.float16), "max": mx.astype(np.float16),
            "prob": prob, "sev": sev}


def stage2(net, tokenizer, examples, *, seed, weight, lr=3e-5, epochs=1, batch_size=16, max_len=96):
    from classifier.train import _encode, _length_bucketed_batches, _pad

    net.train()
    torch.manual_seed(seed + 1)
    rng = random.Random(seed + 1)
    ids = _encode(tokenizer, [e.text for e in examples], max_len)
    labels = torch.tensor([float(e.label) for e in examples])
    severity = torch.tensor([e.severity - 1 if e.label and e.severity else -100 for e in examples])
    counts = torch.bincount(severity[severity >= 0], minlength=4).float()
    sev_ce = nn.CrossEntropyLoss(weight=counts.sum() / (4 * counts), ignore_index=-100)
    bce = nn.BCEWithLogitsLoss()
    params = list(net.encoder.parameters()) + list(net.complaint.parameters()) + list(net.severity.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    lengths = [len(x) for x in ids]
    batches = [b for _ in range(epochs) for b in _length_bucketed_batches(lengths, batch_size, rng)]
    total = len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / total))
    for batch in batches:
        input_ids, mask = _pad([ids[i] for i in batch])
        complaint, sev_logits, _ = net(input_ids, mask)
        loss = bce(complaint, labels[batch])
        t = severity[batch]
        if (t >= 0).any():
            loss = loss + weight * sev_ce(sev_logits, t)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    net.eval()


def run(args):
    from dataclasses import replace

    from sklearn.model_selection import StratifiedKFold

    from classifier.data import load_benchmark
    from classifier.train import Config, fit
    from classifier.tune import selection_split

    examples = load_benchmark()
    y = np.array([e.label for e in examples])
    splits = list(StratifiedKFold(n_splits=10, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    OUT.mkdir(parents=True, exist_ok=True)
    texts = [e.text for e in examples]
    if args.tune:  # the selection split of classifier/tune.py: 85% / 15% of fold 1's training part
        splits = [tuple(np.sort(part) for part in selection_split(y))]
    started = time.monotonic()
    for f, (tr, te) in enumerate(splits):
        path = OUT / ("tune.npz" if args.tune else f"fold{f}.npz")
        if path.exists():
            continue
        train = [examples[i] for i in tr]
        net, tok = fit(train, seed=0, config=replace(Config(), severity_refit=False), progress=None)
        a = features(net, tok, texts)
        stage2(net, tok, train, seed=0, weight=args.stage2_weight)
        b = features(net, tok, texts)
        np.savez(path, train_idx=tr, test_idx=te, **{f"a_{k}": v for k, v in a.items()},
                 **{f"b_{k}": v for k, v in b.items()})
        print(f"{path.name} done, {time.monotonic() - started:.0f}s", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune", action="store_true", help="fine-tune once on the selection split instead")
    ap.add_argument("--stage2-weight", type=float, default=2.0)
    a = ap.parse_args()
    run(a)
