"""Weight-only int8 quantisation of the exported ONNX graph (needs `onnx`).

Every large weight matrix (the attention and feed-forward MatMuls, the
token and position embeddings) is stored as int8 with one fp32 scale per
output channel (per row for embeddings) and a DequantizeLinear node in front
of its user. The file is a quarter of the fp32 size; at load time
`classifier.runtime` asks ONNX Runtime to constant-fold those nodes, so the
network computes in fp32 from the rounded weights.

Why not dynamic quantisation (int8 activations too): it takes one activation
range per tensor over the whole batch, so a text's score depended on which
other texts were batched with it (up to 0.25 apart on the benchmark tweets),
and a post near the threshold could be a complaint in one batch and not in
another. With weights-only rounding a text's score is the same alone or in
any batch (to float rounding, about 1e-7).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

QUANTISED_OPS = ("MatMul", "Gather")
MIN_WEIGHTS = 4096  # the heads (Gemm, 384x1 and 384x4) stay fp32: tiny, and they carry the decision


def _channel_axis(node) -> int:
    """The axis along which scales vary: the output channels of the weight."""
    return 0 if node.op_type == "Gather" else 1  # one scale per embedding row; MatMul(x, W) with W [in, out]


def weight_only_int8(src: str | Path, dst: str | Path) -> int:
    """Rewrite `src` with int8 weights and DequantizeLinear nodes; returns how many weights."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    added = []
    for init in list(graph.initializer):
        nodes = users.get(init.name, [])
        if not nodes or any(n.op_type not in QUANTISED_OPS for n in nodes):
            continue
        weights = numpy_helper.to_array(init)
        if weights.dtype != np.float32 or weights.ndim != 2 or weights.size < MIN_WEIGHTS:
            continue
        axis = _channel_axis(nodes[0])
        if any(_channel_axis(n) != axis for n in nodes):
            continue
        amax = np.abs(weights).max(axis=1 - axis)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        shape = [1, 1]
        shape[axis] = -1
        q = np.clip(np.round(weights / scale.reshape(shape)), -127, 127).astype(np.int8)
        graph.initializer.remove(init)
        graph.initializer.extend([
            numpy_helper.from_array(q, f"{init.name}.int8"),
            numpy_helper.from_array(scale, f"{init.name}.scale"),
            numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{init.name}.zero"),
        ])
        added.append(helper.make_node(
            "DequantizeLinear", [f"{init.name}.int8", f"{init.name}.scale", f"{init.name}.zero"], [init.name],
            axis=axis, name=f"{init.name}.dequantize",
        ))
    for node in reversed(added):
        graph.node.insert(0, node)
    onnx.save(model, str(dst))
    return len(added)
