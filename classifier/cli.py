"""`hearken train` and `hearken evaluate`, registered by desk's CLI.

The heavy imports (torch, scikit-learn) happen inside the commands, so the
rest of `hearken` starts without them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from .files import SHIPPED_DIR

# Chosen on the 10-fold out-of-fold scores for complaint recall >= 0.90
# (see MODEL.md); `hearken evaluate` prints the value the data implies.
SHIPPED_THRESHOLD = 0.24
DEFAULT_CHECKPOINT = Path("build/classifier/fp32")
EXTRA_HELP = ("also train on the extra texts in classifier/train_extra/ (friendly Reddit comments, hotel requests, "
              "hard cases; SOURCES.md there)")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="fine-tune the complaint classifier and write the model files",
        description="Fine-tune all-MiniLM-L6-v2 on the complaint benchmark (and staff labels), "
        "export it to int8 ONNX and write it where `classifier.load` finds it.",
    )
    train.add_argument("--data", help="benchmark CSV (default: ../shared/data/complaints_xci.csv or $HEARKEN_DATA)")
    train.add_argument("--extra-labels", help="CSV or JSONL of text,label[,severity] exported from staff labels")
    train.add_argument("--out", default=str(SHIPPED_DIR), help="directory for the model files (default: the shipped model)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threshold", type=float, default=SHIPPED_THRESHOLD, help="operating point stored with the model")
    train.add_argument("--extra", action="store_true", help=EXTRA_HELP)
    train.add_argument("--epochs", type=int, help="override the fixed number of epochs")
    train.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (smoke tests)")
    train.add_argument(
        "--checkpoint", default=str(DEFAULT_CHECKPOINT),
        help="also save the fp32 torch weights here (used by benchmarks/bench_classifier.py); '' to skip",
    )
    train.set_defaults(func=run_train)

    quant = subparsers.add_parser(
        "quantise",
        help="make the shipped int8 form of an fp32 model (what `hearken train` does after fine-tuning)",
        description="Static int8 quantisation (ONNX Runtime, QDQ, per-channel weights), calibrated on our own "
        "texts: the same step `hearken train` ends with, for a model that is already trained. The source is a "
        "model folder (fp32, or an older int8-weights model) or the fp32 checkpoint `hearken train` saves.",
    )
    quant.add_argument("--model", default=str(DEFAULT_CHECKPOINT),
                       help=f"fp32 model folder or checkpoint to quantise (default: {DEFAULT_CHECKPOINT})")
    quant.add_argument("--out", default=str(SHIPPED_DIR), help="directory for the model files (default: the shipped model)")
    quant.add_argument("--data", help="texts to calibrate on (default: ../shared/data/complaints_xci.csv or $HEARKEN_DATA)")
    quant.add_argument("--extra-labels", help="staff labels (CSV or JSONL) whose texts join the calibration")
    quant.add_argument("--seed", type=int, default=0)
    quant.set_defaults(func=run_quantise)

    ev = subparsers.add_parser(
        "evaluate",
        help="cross-validate the classifier on the benchmark and print the protocol's table",
        description="Stratified k-fold cross-validation: fine-tune per fold, score the held-out fold "
        "with the fp32 model and the int8 ONNX model, print mean ± sd and a per-domain breakdown. "
        "With --model, score that trained model on --data instead (no training). With --field, score a "
        "trained model (--model, default the shipped one) on the field sets in classifier/datasets/.",
    )
    ev.add_argument("--data", help="benchmark CSV (default: ../shared/data/complaints_xci.csv or $HEARKEN_DATA)")
    ev.add_argument("--folds", type=int, default=10)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--run-folds", type=int, help="run only the first N folds of the split (a quicker check)")
    ev.add_argument("--model", help="score this model directory on --data instead of cross-validating")
    ev.add_argument(
        "--field", action="store_true",
        help="score --model (default: the shipped model) on the field sets: forum/Reddit/X posts, another consumer "
        "domain, sarcasm (classifier/datasets/SOURCES.md); prints accuracy, recall, macro-F1 per set",
    )
    ev.add_argument("--field-dir", help="directory of field sets (default: classifier/datasets/)")
    ev.add_argument("--extra", action="store_true", help=EXTRA_HELP + " (to every fold's training part only)")
    ev.add_argument("--threshold", type=float, help="operating point to report (default: recall-first from the data)")
    ev.add_argument("--json", help="also write the results as JSON to this path")
    ev.add_argument("--cache", default="build/classifier/cv", help="fold cache directory ('' to disable)")
    ev.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .data import EXTRA_SETS, load_benchmark, load_extra_labels
    from .export import export
    from .train import Config, fit, training_extras

    examples = load_benchmark(args.data)
    if args.extra_labels:
        extra = load_extra_labels(args.extra_labels)
        _progress(f"adding {len(extra)} staff labels from {args.extra_labels}")
        examples = examples + extra
    config = Config() if args.epochs is None else replace(Config(), epochs=args.epochs)
    if args.extra:
        config = replace(config, extra_sets=EXTRA_SETS)
    if config.extra_sets:
        extras = training_extras(config)
        _progress(f"adding {len(extras)} texts from classifier/train_extra/ ({', '.join(config.extra_sets)}; "
                  f"repeated {dict(config.extra_repeat)})")
        examples = examples + extras
    _progress(f"fine-tuning on {len(examples)} texts, seed {args.seed}, {config}")
    net, _ = fit(examples, seed=args.seed, config=config, progress=_progress, max_steps=args.max_steps)
    digest = hashlib.sha256("".join(f"{e.label}{e.severity}{e.text}" for e in examples).encode()).hexdigest()[:6]
    version = f"minilm-ft-{datetime.now(timezone.utc):%Y-%m-%d}-{digest}"
    if args.checkpoint:
        ckpt = Path(args.checkpoint)
        net.encoder.save_pretrained(ckpt)
        import torch

        torch.save({k: v for k, v in net.state_dict().items() if not k.startswith("encoder.")}, ckpt / "heads.pt")
        import shutil

        from .net import base_encoder_dir

        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            if (base_encoder_dir() / name).is_file():
                shutil.copyfile(base_encoder_dir() / name, ckpt / name)
        _progress(f"fp32 checkpoint written to {ckpt}")
    _progress("exporting to ONNX and quantising to int8")
    out = export(
        net, args.out, version=version, threshold=args.threshold,
        info={"seed": args.seed, "examples": len(examples), "config": config.__dict__, "max_steps": args.max_steps},
        calibration=[e.text for e in examples], fp32_dir=args.checkpoint or None, progress=_progress,
    )
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    version = json.loads((out / "meta.json").read_text(encoding="utf-8"))["version"]  # export adds the weights' hash
    _progress(f"model {version} written to {out} ({size:.1f} MB)")
    return 0


def run_quantise(args: argparse.Namespace) -> int:
    from .data import load_benchmark, load_extra_labels
    from .quantise import quantise_model
    from .runtime import ModelError

    texts = [e.text for e in load_benchmark(args.data)]
    if args.extra_labels:
        texts += [e.text for e in load_extra_labels(args.extra_labels)]
    try:
        out = quantise_model(args.model, args.out, texts, seed=args.seed, progress=_progress)
    except ModelError as exc:
        print(f"hearken quantise: {exc}", file=sys.stderr)
        return 1
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 1e6
    _progress(f"model {meta['version']} written to {out} ({size:.1f} MB)")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import load_benchmark

    if args.field:
        return run_field(args)

    examples = load_benchmark(args.data)
    if args.model:
        from . import ComplaintModel
        from .evaluate import binary_metrics, severity_f1

        model = ComplaintModel(args.model)
        _progress(f"scoring {len(examples)} texts with {model.version}")
        p, s, _ = model.scores([e.text for e in examples])
        y = np.array([e.label for e in examples])
        cut = model.threshold if args.threshold is None else args.threshold
        print(f"{model.version} on {args.data or 'the benchmark'} ({len(y)} texts); not a held-out estimate "
              "if these texts were used in training")
        for label, t in (("0.5", 0.5), (f"{cut:.3f}", cut)):
            m = binary_metrics(y, p, t)
            m["severity_macro_f1"] = severity_f1(np.array([e.severity for e in examples]), s)
            print(f"threshold {label}: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in m.items()))
        return 0

    from .data import EXTRA_SETS
    from .evaluate import cross_validate, format_report, summarise
    from .train import Config

    config = Config(extra_sets=EXTRA_SETS) if args.extra else Config()
    cv = cross_validate(
        examples, folds=args.folds, seed=args.seed, config=config, cache_dir=args.cache or None,
        progress=_progress, run_folds=args.run_folds,
    )
    result = summarise(examples, cv, threshold=args.threshold)
    print(format_report(result))
    if args.threshold is None:
        print(f"\nRecall-first operating point (complaint recall >= 90% out of fold): threshold {result['threshold']:.3f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    return 0


def run_field(args: argparse.Namespace) -> int:
    from . import ComplaintModel
    from .field import format_field, load_field_sets, score_field_sets

    sets = load_field_sets(args.field_dir)
    model = ComplaintModel(args.model or SHIPPED_DIR)
    _progress(f"scoring {sum(len(s.texts) for s in sets)} field texts with {model.version}")
    result = score_field_sets(model, sets, threshold=args.threshold)
    print(format_field(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    return 0
