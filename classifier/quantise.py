"""Static int8 quantisation: how an fp32 model becomes the model Hearken ships (needs `onnx`).

    from classifier.quantise import quantise_model
    quantise_model("build/classifier/fp32", "classifier/model", texts)   # texts: our own, for calibration

`quantise_model` is the one entry point: `hearken train` calls it on the
graph it has just exported, `hearken quantise` calls it on an existing fp32
model folder (or torch checkpoint), and the evaluation protocol calls it in
every fold, calibrated on that fold's training texts only.

What it does, with ONNX Runtime's own quantisation tools:

- every MatMul gets int8 weights, one scale per output channel, stored in
  QDQ form (DequantizeLinear in front of the user); the embedding tables
  are stored as int8 rows, each with its own scale, and only the rows a text
  uses are scaled back (`embeddings_per_row`);
- their activation inputs get a QuantizeLinear/DequantizeLinear pair with a
  *fixed* uint8 scale and zero point, found by running the fp32 graph over
  calibration windows (our own texts, one window per run, plus texts joined to
  the full 96-token window so late positions are covered) and keeping each
  tensor's range (min-max);
- MatMul outputs stay fp32 (`OpTypesToExcludeOutputQuantization`), so at load
  ONNX Runtime fuses each quantised MatMul into `MatMulIntegerToFloat`, its
  u8 x s8 kernel (VNNI or AVX2 on x86).

Because the activation scales are constants of the graph, a text's score does
not depend on the other texts in its batch. (Dynamic quantisation, which
Hearken once used, takes one range per batch, and a post near the threshold
could flip from one poll to the next.) `tests/test_classifier.py` checks it.

`fp32_graph` undoes the rounding's form (not its loss): it folds int8 weights
back into fp32 initialisers and drops activation quantisation, so an older
weight-only model, or the shipped one, can be quantised again or timed as fp32.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

STATIC = "int8-static-qdq"  # meta.json "quantised" of a model made here
WEIGHT_ONLY = "int8-weights-per-channel"  # older models: int8 weights folded back to fp32 at load
FP32 = "fp32"
CALIBRATION_TEXTS = 400  # single texts (tweets, posts), one window each
CALIBRATION_JOINED = 100  # windows filled to the full length by joining texts
WINDOW = 96
MIN_TABLE = 4096  # smaller tables (the two token types) stay fp32

Progress = Callable[[str], None]


def model_format(meta: dict) -> str:
    """What kind of graph a model folder holds, from its meta.json (models older than this field: weight-only)."""
    return str(meta.get("quantised") or WEIGHT_ONLY)


# -- fp32 graph from a quantised one ------------------------------------------------------------------------


def fp32_graph(src: str | Path, dst: str | Path) -> Path:
    """Write `src` with its int8 weights folded back into fp32 constants and its activation Q/DQ pairs removed."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    _tables_back_to_fp32(graph)
    inits = {i.name: i for i in graph.initializer}
    rename: dict[str, str] = {}
    drop = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            q = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
            scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            zero = (numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
                    if len(node.input) > 2 and node.input[2] in inits else np.zeros_like(scale))
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [1] * q.ndim
            if scale.ndim:
                shape[axis] = -1
            w = (q - zero.reshape(shape)) * scale.reshape(shape)
            graph.initializer.append(numpy_helper.from_array(w.astype(np.float32), node.output[0]))
            drop.append(node)
        elif node.op_type == "QuantizeLinear" and node.input[0] not in inits:
            drop.append(node)
    quantised = {n.output[0] for n in drop if n.op_type == "QuantizeLinear"}
    for node in graph.node:  # an activation's DequantizeLinear: its users read the fp32 tensor again
        if node.op_type == "DequantizeLinear" and node.input[0] in quantised:
            producer = next(n for n in drop if n.op_type == "QuantizeLinear" and n.output[0] == node.input[0])
            rename[node.output[0]] = producer.input[0]
            drop.append(node)
    for node in drop:
        graph.node.remove(node)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    for output in graph.output:
        if output.name in rename:
            raise ValueError(f"{src}: a graph output is quantised; cannot make an fp32 graph")
    used = {name for node in graph.node for name in node.input}
    for init in list(graph.initializer):
        if init.name not in used:
            graph.initializer.remove(init)
    onnx.save(model, str(dst))
    return Path(dst)


# -- calibration ---------------------------------------------------------------------------------------------


def calibration_windows(tokenizer, texts: Sequence[str], *, n_texts: int = CALIBRATION_TEXTS,
                        n_joined: int = CALIBRATION_JOINED, window: int = WINDOW, seed: int = 0) -> list[list[int]]:
    """Token windows to calibrate on: a seeded sample of `texts`, and texts joined up to the full window."""
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValueError("no calibration texts: quantisation needs some of our own texts")
    rng = random.Random(seed)
    picked = rng.sample(texts, min(n_texts, len(texts)))
    out = []
    for enc in tokenizer.encode_batch(picked):
        ids = enc.ids
        out.append(ids if len(ids) <= window else ids[: window - 1] + ids[-1:])
    for _ in range(n_joined):
        joined = " ".join(rng.choice(texts) for _ in range(8))
        ids = tokenizer.encode(joined).ids
        out.append(ids[: window - 1] + ids[-1:])
    return out


class _Feeds:
    """onnxruntime's CalibrationDataReader over windows, one window per run (no padding in the ranges)."""

    def __init__(self, windows: list[list[int]]):
        self._it = iter(windows)

    def get_next(self) -> dict | None:
        ids = next(self._it, None)
        if ids is None:
            return None
        return {"input_ids": np.array([ids], dtype=np.int64), "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}


def quantise_graph(fp32: str | Path, dst: str | Path, windows: list[list[int]]) -> dict:
    """Static QDQ int8 quantisation of an fp32 graph (see the module docstring); returns what was done."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Reader(_Feeds, CalibrationDataReader):
        pass

    quantize_static(
        str(fp32), str(dst), Reader(windows),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]},
    )
    model = onnx.load(str(dst))
    tables = embeddings_per_row(model)
    onnx.save(model, str(dst))
    return {"method": "static QDQ, per-channel int8 weights, uint8 activations, min-max; "
                      "embedding tables int8 per row",
            "ops": ["MatMul", "Gather"], "embedding_tables": tables, "windows": len(windows)}


# -- embedding tables: int8 rows, each with its own scale ---------------------------------------------------
#
# ONNX Runtime's static quantiser treats a Gather's table like an activation (one scale for the whole
# table), and a DequantizeLinear per row in front of the Gather would dequantise the whole table on every
# run. Instead the int8 table is gathered first and only the gathered rows are scaled:
#     Gather(table, ids)  ->  Mul(Cast(Gather(table.int8, ids)), Unsqueeze(Gather(table.row_scale, ids)))


def embeddings_per_row(model) -> int:
    """Store every large Gather table as int8 rows with one fp32 scale each; returns how many tables."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    done = 0
    for node in list(graph.node):
        if node.op_type != "Gather" or node.input[0] not in inits:
            continue
        table = numpy_helper.to_array(inits[node.input[0]])
        if table.dtype != np.float32 or table.ndim != 2 or table.size < MIN_TABLE:
            continue
        if any(a.name == "axis" and a.i != 0 for a in node.attribute):
            continue
        base, ids, out = node.input[0], node.input[1], node.output[0]
        amax = np.abs(table).max(axis=1)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(table / scale[:, None]), -127, 127).astype(np.int8)
        graph.initializer.remove(inits[base])
        graph.initializer.extend([numpy_helper.from_array(q, f"{base}.int8"),
                                  numpy_helper.from_array(scale, f"{base}.row_scale"),
                                  numpy_helper.from_array(np.array([-1], dtype=np.int64), f"{base}.last_axis")])
        at = list(graph.node).index(node)
        graph.node.remove(node)
        for offset, new in enumerate([
            helper.make_node("Gather", [f"{base}.int8", ids], [f"{base}.rows_int8"], name=f"{base}.gather_int8"),
            helper.make_node("Cast", [f"{base}.rows_int8"], [f"{base}.rows"], to=TensorProto.FLOAT, name=f"{base}.cast"),
            helper.make_node("Gather", [f"{base}.row_scale", ids], [f"{base}.scales"], name=f"{base}.gather_scale"),
            helper.make_node("Unsqueeze", [f"{base}.scales", f"{base}.last_axis"], [f"{base}.scales_1"],
                             name=f"{base}.unsqueeze"),
            helper.make_node("Mul", [f"{base}.rows", f"{base}.scales_1"], [out], name=f"{base}.rescale"),
        ]):
            graph.node.insert(at + offset, new)
        done += 1
    return done


def _tables_back_to_fp32(graph) -> None:
    """Undo `embeddings_per_row`: one fp32 Gather per table again."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in graph.initializer}
    for node in list(graph.node):
        if not node.name.endswith(".gather_int8"):
            continue
        base = node.name.removesuffix(".gather_int8")
        parts = {n.name: n for n in graph.node if n.name.startswith(base + ".")}
        q = numpy_helper.to_array(inits[f"{base}.int8"]).astype(np.float32)
        scale = numpy_helper.to_array(inits[f"{base}.row_scale"]).astype(np.float32)
        at = list(graph.node).index(node)
        out = parts[f"{base}.rescale"].output[0]
        for n in parts.values():
            graph.node.remove(n)
        for name in (f"{base}.int8", f"{base}.row_scale", f"{base}.last_axis"):
            graph.initializer.remove(inits[name])
        graph.initializer.append(numpy_helper.from_array(q * scale[:, None], base))
        graph.node.insert(at, helper.make_node("Gather", [base, node.input[1]], [out], name=base + ".gather"))


# -- the entry point -----------------------------------------------------------------------------------------


_HASH = re.compile(r"-w[0-9a-f]{6}$")


def quantise_model(src: str | Path, out: str | Path, texts: Sequence[str], *, seed: int = 0,
                   progress: Progress | None = None) -> Path:
    """Make the shipped form of the model in `src`, calibrated on `texts`, in the folder `out`.

    `src` is a model folder (model.onnx, tokenizer.json, meta.json) holding an fp32 graph or an
    older weight-only int8 one, or a torch checkpoint from `hearken train` (needs the `train` extra).
    `out` gets model.onnx, tokenizer.json and meta.json; its version keeps the source's name and
    date and ends in the new graph's hash, so stored classifications say which graph made them.
    `out` may be `src`.
    """
    from .runtime import META_FILE, MODEL_FILE, TOKENIZER_FILE, ModelError, open_tokenizer

    src, out = Path(src), Path(out)
    if not (src / MODEL_FILE).is_file() and (src / "heads.pt").is_file():
        from .train import export_checkpoint_fp32  # a torch-only checkpoint: export it first (needs torch)

        with tempfile.TemporaryDirectory() as tmp:
            export_checkpoint_fp32(src, tmp)
            return quantise_model(tmp, out, texts, seed=seed, progress=progress)
    for name in (MODEL_FILE, TOKENIZER_FILE, META_FILE):
        if not (src / name).is_file():
            raise ModelError(src / name, "missing: quantise_model needs a model folder or a checkpoint of `hearken train`")
    meta = json.loads((src / META_FILE).read_text(encoding="utf-8"))
    tokenizer = open_tokenizer(src / TOKENIZER_FILE)
    windows = calibration_windows(tokenizer, texts, window=int(meta.get("window", WINDOW)), seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        if model_format(meta) == FP32:
            shutil.copyfile(src / MODEL_FILE, fp32)
        else:
            fp32_graph(src / MODEL_FILE, fp32)
        if progress:
            progress(f"quantising to int8: calibrating on {len(windows)} windows of our own texts")
        staged = Path(tmp) / MODEL_FILE
        done = quantise_graph(fp32, staged, windows)
        tok = Path(tmp) / TOKENIZER_FILE
        shutil.copyfile(src / TOKENIZER_FILE, tok)
        out.mkdir(parents=True, exist_ok=True)
        shutil.move(staged, out / MODEL_FILE)
        shutil.move(tok, out / TOKENIZER_FILE)
    digest = hashlib.sha256((out / MODEL_FILE).read_bytes()).hexdigest()[:6]
    meta.update({
        "version": f"{_HASH.sub('', str(meta['version']))}-w{digest}",
        "quantised": STATIC,
        "quantisation": {**done, "calibration_texts": len(texts), "seed": seed,
                         "at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    })
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out
