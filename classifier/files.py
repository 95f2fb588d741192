"""Where a model lives: the shipped model's folder and the names of the files in any model folder.

Light on purpose (no numpy, no ONNX Runtime): `hearken --help` and the train command's parser need only this.
"""

from __future__ import annotations

from pathlib import Path

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"
SHIPPED_DIR = Path(__file__).resolve().parent / "model"
