"""Issue 19's field-accuracy experiments (classifier/MODEL.md, "Field accuracy: what was tried").

    python scripts/field_experiment.py rules [MODEL_DIR]      # long-text rules, windows scored once
    python scripts/field_experiment.py head                   # refit the complaint head on the shipped encoder
    python scripts/field_experiment.py stage2 OUT_DIR [LR [HARD_REPEAT [SETS]]]   # second fine-tuning stage of
                       # the shipped weights; hard_cases.jsonl repeated HARD_REPEAT times; SETS: comma-separated
                       # names in classifier/train_extra/ (default: data.EXTRA_SETS)

None of these is the protocol: `head` and `stage2` start from the shipped encoder, which was fine-tuned
on every benchmark tweet, so they give field figures only, never a held-out benchmark figure.
Needs the `train` extra.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time

import numpy as np

import classifier
from classifier.field import load_field_sets
from classifier.metrics import binary_metrics
from classifier.runtime import MODEL_FILE, aggregate_windows

RULES = [{"rule": "max"}] + [{"rule": "opening-lme", "temperature": t, "opening_weight": w}
                             for t in (0.5, 1.0, 2.0) for w in (0.0, 0.25, 0.5)]


def rules(model_dir: str) -> None:
    model = classifier.ComplaintModel(model_dir)
    for s in load_field_sets():
        windows, owner = model._windows(s.texts)
        logits = model._run(windows)[0]
        owner = np.array(owner)
        per_text = [logits[owner == i] for i in range(len(s.texts))]
        print(f"== {s.name}: {len(s.texts)} texts, {sum(len(x) > 1 for x in per_text)} with more than one window")
        for rule in RULES:
            z = np.array([aggregate_windows(x, **rule) if len(x) > 1 else x[0] for x in per_text])
            m = binary_metrics(s.labels, 1 / (1 + np.exp(-z)), model.threshold)
            print(f"  {json.dumps(rule):<66} acc {100 * m['accuracy']:.1f} rec {100 * m['recall']:.1f} "
                  f"F1 {100 * m['macro_f1']:.1f} AUC {100 * m['auc']:.1f}")


def head() -> None:
    from sklearn.linear_model import LogisticRegression

    from classifier.data import load_benchmark, load_training_extras

    model = classifier.load()
    bench, extras = load_benchmark(), load_training_extras()
    xb, yb = model.embed([e.text for e in bench]), np.array([e.label for e in bench])
    xe, ye = model.embed([e.text for e in extras]), np.array([e.label for e in extras])
    field = [(s.name, model.embed(s.texts), s.labels) for s in load_field_sets()]
    for c in (0.1, 1.0, 10.0):
        for with_extra in (False, True):
            x = np.vstack([xb, xe]) if with_extra else xb
            y = np.concatenate([yb, ye]) if with_extra else yb
            lr = LogisticRegression(C=c, max_iter=3000).fit(x, y)
            cells = []
            for name, xf, yf in field:
                m = binary_metrics(yf, lr.predict_proba(xf)[:, 1], 0.24)
                cells.append(f"{name} acc {100 * m['accuracy']:.0f} rec {100 * m['recall']:.0f}")
            print(f"C={c} extra={with_extra}: " + " | ".join(cells))


def recover_shipped():
    """The shipped model's weights (as ONNX Runtime computes with them) in a torch ComplaintNet."""
    import onnx
    import torch
    from onnx import numpy_helper

    from classifier.net import ComplaintNet

    graph = onnx.load(str(classifier.SHIPPED_DIR / MODEL_FILE)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    axis = {n.input[0]: next(a.i for a in n.attribute if a.name == "axis") for n in graph.node if n.op_type == "DequantizeLinear"}
    net = ComplaintNet().eval()
    params = dict(net.named_parameters())
    state, matmuls = {}, {}
    for name, arr in init.items():
        if name.endswith((".scale", ".zero")):
            continue
        if name.endswith(".int8"):
            shape = [1, 1]
            shape[axis[name]] = -1
            name = name[:-5]
            arr = arr.astype(np.float32) * init[name + ".scale"].reshape(shape)
        if name.startswith("net.") and name[4:] in params:
            state[name[4:]] = torch.tensor(arr)
        elif name.startswith("onnx::MatMul") and arr.ndim == 2:
            matmuls[name] = arr.T  # MatMul(x, W) computes x @ linear.weight.T
    # the exporter names these by number: each is matched to the base parameter it is closest to (fine-tuning
    # moves the weights little), heads by their shape
    base = {k: v.detach().numpy() for k, v in params.items() if v.ndim == 2 and k not in state}
    for w in matmuls.values():
        if w.shape in ((1, 384), (4, 384)):
            key = "complaint.weight" if w.shape[0] == 1 else "severity.weight"
        else:
            key = max((k for k, v in base.items() if v.shape == w.shape and k not in state),
                      key=lambda k: np.corrcoef(base[k].ravel(), w.ravel())[0, 1])
        state[key] = torch.tensor(np.ascontiguousarray(w))
    missing = [k for k in params if k not in state and not k.startswith(("sentiment", "emotion", "encoder.pooler"))]
    if missing:
        raise SystemExit(f"weights not found in the shipped graph: {missing}")
    net.load_state_dict({**net.state_dict(), **state})
    return net


def stage2(out: str, lr: float = 3e-5, hard_repeat: int = 1, sets: tuple[str, ...] | None = None) -> None:
    import torch
    from torch import nn

    from classifier.data import load_benchmark, load_training_extras
    from classifier.net import base_encoder_dir
    from classifier.runtime import open_tokenizer
    from classifier.export import export
    from classifier.train import _encode, _length_bucketed_batches, _pad, predict_torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    rng = random.Random(0)
    net = recover_shipped()
    tok = open_tokenizer(base_encoder_dir() / "tokenizer.json")
    probe = ["my parcel never arrived and nobody answers", "thanks for the quick help today"]
    drift = np.abs(predict_torch(net, tok, probe)[0] - classifier.load().scores(probe)[0]).max()
    print(f"recovered weights reproduce the shipped scores to {drift:.1e}")
    extras = load_training_extras(sets) if sets else load_training_extras()
    extras += [e for e in extras if e.domain in ("hard_cases", "sarcasm_cases")] * (hard_repeat - 1)
    data = extras + rng.sample(load_benchmark(), len(extras))  # replay as many benchmark tweets as extra texts
    ids = _encode(tok, [e.text for e in data], 96)
    y = torch.tensor([float(e.label) for e in data])
    sev = torch.tensor([e.severity - 1 if e.label and e.severity else -100 for e in data])
    heads = list(net.complaint.parameters()) + list(net.severity.parameters())
    opt = torch.optim.AdamW([{"params": net.encoder.parameters(), "lr": lr, "weight_decay": 0.01},
                             {"params": heads, "lr": lr * 10}])
    total = math.ceil(len(data) / 16)
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    bce, ce = nn.BCEWithLogitsLoss(), nn.CrossEntropyLoss(ignore_index=-100)
    net.train()
    started = time.monotonic()
    for step, batch in enumerate(_length_bucketed_batches([len(x) for x in ids], 16, rng), start=1):
        input_ids, mask = _pad([ids[i] for i in batch])
        complaint, sev_logits, _ = net(input_ids, mask)
        loss = bce(complaint, y[batch])
        if (sev[batch] >= 0).any():
            loss = loss + 0.5 * ce(sev_logits, sev[batch])
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 20 == 0:
            print(f"step {step}/{total} loss {loss.item():.3f} ({time.monotonic() - started:.0f}s)", flush=True)
    net.eval()
    export(net, out, version="exp-stage2", threshold=classifier.load().threshold)
    print(f"written to {out}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("rules", "head", "stage2"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "rules":
        rules(sys.argv[2] if len(sys.argv) > 2 else str(classifier.SHIPPED_DIR))
    elif sys.argv[1] == "head":
        head()
    else:
        stage2(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 3e-5, int(sys.argv[4]) if len(sys.argv) > 4 else 1,
               tuple(sys.argv[5].split(",")) if len(sys.argv) > 5 else None)
