"""Classifier speed: the plain `transformers` pipeline (fp32) against our path.

    python benchmarks/bench_classifier.py [--texts 2000] [--threads 2]

Both paths run the same fine-tuned model on the same texts (the first N of
the benchmark data set after a seeded shuffle):

- pipeline: `transformers.pipeline("feature-extraction")` over the fp32 torch
  checkpoint that `hearken train` saves (build/classifier/fp32), batch size
  32, then the same mean pooling and complaint head in torch;
- ours: `classifier.load()` — the shipped ONNX model (int8-stored weights,
  folded to fp32 at load), ONNX Runtime, batches sorted by length.

Each path runs in its own fresh process, so load time (import + model load)
and peak resident memory (ru_maxrss) belong to that path alone. The script
prints texts/s, the speed ratio, load time, peak memory, and macro-F1 of both
at 0.5 on these texts together with how often the two agree. The texts were
seen in training, so the F1 values only compare the two paths; the held-out
int8-vs-fp32 difference is in `hearken evaluate`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _texts(n: int, seed: int) -> tuple[list[str], list[int]]:
    import random

    sys.path.insert(0, str(REPO))
    from classifier.data import load_benchmark

    rows = load_benchmark()
    random.Random(seed).shuffle(rows)
    rows = rows[:n]
    return [r.text for r in rows], [r.label for r in rows]


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_pipeline(texts: list[str], checkpoint: str, threads: int) -> dict:
    import time

    t0 = time.perf_counter()
    import torch
    from transformers import pipeline

    torch.set_num_threads(threads)
    pipe = pipeline("feature-extraction", model=checkpoint, tokenizer=checkpoint, framework="pt", device=-1)
    heads = torch.load(Path(checkpoint) / "heads.pt")
    load_s = time.perf_counter() - t0
    # batched outputs keep the batch's padding: pool over each text's own tokens
    lengths = [len(ids) for ids in pipe.tokenizer(texts, truncation=True, max_length=128)["input_ids"]]
    pipe(texts[:8], batch_size=8, return_tensors=True)  # warm-up
    t1 = time.perf_counter()
    scores = []
    with torch.inference_mode():
        outputs = pipe(texts, batch_size=32, return_tensors=True, truncation=True, max_length=128)
        for hidden, n in zip(outputs, lengths):
            pooled = hidden[0, :n].mean(0)
            logit = pooled @ heads["complaint.weight"][0] + heads["complaint.bias"][0]
            scores.append(float(torch.sigmoid(logit)))
    elapsed = time.perf_counter() - t1
    return {"load_s": load_s, "seconds": elapsed, "scores": scores, "peak_mb": _peak_mb()}


def run_ours(texts: list[str], model: str | None, threads: int) -> dict:
    import time

    os.environ["HEARKEN_THREADS"] = str(threads)
    t0 = time.perf_counter()
    sys.path.insert(0, str(REPO))
    import classifier

    m = classifier.load(model)
    load_s = time.perf_counter() - t0
    m.predict(texts[:8])  # warm-up
    t1 = time.perf_counter()
    preds = m.predict(texts)
    elapsed = time.perf_counter() - t1
    heavy = sorted(k for k in ("torch", "sklearn") if k in sys.modules)
    return {
        "load_s": load_s, "seconds": elapsed, "scores": [p.score for p in preds], "peak_mb": _peak_mb(),
        "heavy_imports": heavy, "version": m.version,
    }


def _child(which: str, args: argparse.Namespace, texts_file: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--texts-file", texts_file, "--threads", str(args.threads),
         "--checkpoint", args.checkpoint] + (["--model", args.model] if args.model else []),
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    if out.returncode:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"{which} path failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", default=str(REPO / "build/classifier/fp32"))
    parser.add_argument("--model", help="model directory for our path (default: the shipped model)")
    parser.add_argument("--child", choices=["pipeline", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        texts = json.loads(Path(args.texts_file).read_text())
        if args.child == "pipeline":
            result = run_pipeline(texts, args.checkpoint, args.threads)
        else:
            result = run_ours(texts, args.model, args.threads)
        print(json.dumps(result))
        return 0

    if not (Path(args.checkpoint) / "heads.pt").is_file():
        raise SystemExit(
            f"no fp32 checkpoint at {args.checkpoint}: run `hearken train` first "
            "(it saves the fp32 weights there next to the shipped int8 model)"
        )
    texts, labels = _texts(args.texts, args.seed)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(texts, fh)
    try:
        print(f"{len(texts)} texts, {args.threads} threads", file=sys.stderr)
        print("running the transformers pipeline (fp32) ...", file=sys.stderr)
        pipe = _child("pipeline", args, fh.name)
        print("running our path (ONNX Runtime, shipped model) ...", file=sys.stderr)
        ours = _child("ours", args, fh.name)
    finally:
        os.unlink(fh.name)

    from sklearn.metrics import f1_score

    def f1(scores):
        return 100 * f1_score(labels, [int(s >= 0.5) for s in scores], average="macro")

    agree = sum((a >= 0.5) == (b >= 0.5) for a, b in zip(pipe["scores"], ours["scores"])) / len(texts)
    rate = {k: len(texts) / r["seconds"] for k, r in (("pipeline", pipe), ("ours", ours))}
    print(f"model: {ours['version']}; {len(texts)} texts; {args.threads} threads")
    print(f"{'path':<32}{'texts/s':>10}{'load s':>9}{'peak RSS MB':>13}{'macro-F1':>10}")
    print(f"{'transformers pipeline fp32':<32}{rate['pipeline']:>10.1f}{pipe['load_s']:>9.2f}{pipe['peak_mb']:>13.0f}{f1(pipe['scores']):>10.1f}")
    print(f"{'hearken ONNX Runtime':<32}{rate['ours']:>10.1f}{ours['load_s']:>9.2f}{ours['peak_mb']:>13.0f}{f1(ours['scores']):>10.1f}")
    print(f"speed-up: {rate['ours'] / rate['pipeline']:.2f}x; decisions agree on {100 * agree:.1f}% of texts; "
          f"torch/sklearn imported by our path: {ours['heavy_imports'] or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
