"""A trained net to the model folder `classifier.load` reads (needs the `train` extra: torch, onnx).

`export` writes the fp32 graph (classifier/train.py's `export_fp32`) and quantises it to int8
(classifier/quantise.py), calibrated on our own texts. It sits apart from both so that neither imports
the other: quantising a torch checkpoint exports it first through train.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from .net import ComplaintNet
from .quantise import quantise_model
from .train import Progress, export_fp32


def export(
    net: ComplaintNet,
    out_dir: str | Path,
    *,
    version: str,
    threshold: float,
    info: dict | None = None,
    quantise: bool = True,
    calibration: Sequence[str] | None = None,
    fp32_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the model folder `classifier.load` reads: int8 (static, see quantise.py) unless quantise=False.

    `calibration` are the texts the int8 activation ranges are measured on: the training texts
    (default: the benchmark's). `fp32_dir`, when given, keeps the fp32 model folder there too.
    """
    if not quantise:
        return export_fp32(net, out_dir, version=version, threshold=threshold, info=info)
    if calibration is None:
        from .data import load_benchmark

        calibration = [e.text for e in load_benchmark()]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(fp32_dir) if fp32_dir else Path(tmp)
        export_fp32(net, fp32, version=version, threshold=threshold, info=info)
        return quantise_model(fp32, out_dir, calibration, progress=progress)
