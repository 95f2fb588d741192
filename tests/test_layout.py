"""The house rules of issue 15 that a file's imports and length show, read from the source; and what
`hearken --help` imports, run in a process of its own."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
# modules over MAX_LINES until their room is made (issue 15); a module that shrinks is struck off the list
TOO_LONG_FOR_NOW: set[str] = set()
# desk/ modules that import Streamlit until their room is made (issue 15): none left
STREAMLIT_FOR_NOW: set[str] = set()


def _modules(*folders: str) -> dict[str, Path]:
    out = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `path` imports anywhere in it (at the top or inside a function)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_desk_the_dashboard_the_collectors_and_the_classifier_import_no_cycle_lazy_or_not():
    known = _modules("desk", "dashboard", "collectors", "classifier")
    graph = {name: _imports(name, path, known) for name, path in known.items()}
    assert "desk.reports.weekly" in graph["desk.notify.alerts"]  # the walk sees imports
    assert "collectors.clean" in graph["collectors.base"]  # ... in collectors/
    assert "classifier.train" in graph["classifier.quantise"]  # ... and lazy ones, inside a function
    assert _cycles(graph) == []


def test_streamlit_is_imported_only_in_the_dashboard():
    known = _modules("desk", "collectors", "classifier")
    users = set()
    for path in known.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                users.add(path.relative_to(ROOT).as_posix())
    assert users == STREAMLIT_FOR_NOW


def test_no_module_of_desk_the_dashboard_or_the_collectors_is_over_400_lines():
    lengths = {p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
               for p in _modules("desk", "dashboard", "collectors").values()}
    assert {p for p, n in lengths.items() if n > MAX_LINES} == TOO_LONG_FOR_NOW


def test_gitignore_keeps_a_venv_out_of_git_whether_a_folder_or_a_link():
    """README's install may make .venv a symlink to a shared one: '.venv/' matches only a folder."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (".venv", "elsewhere/.venv"):  # the second is no folder: matched only as a file or a link is
        run = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", "-q", "--", path],
                             capture_output=True, timeout=30)
        assert run.returncode == 0, f"{path} is not ignored by .gitignore"


# what `hearken --help` must not import: each command imports these when it runs (desk/cli/)
HEAVY_FOR_HELP = ("sqlalchemy", "httpx", "onnxruntime", "streamlit", "fastapi", "praw", "tweepy", "torch",
                  "transformers", "numpy")


def test_hearken_help_starts_without_the_heavy_libraries():
    """Every test and every user's `hearken ...` pays for what the parser imports: it imports none of them."""
    script = ("import runpy, sys\n"
              "sys.argv = ['hearken', '--help']\n"
              "try:\n"
              "    runpy.run_module('desk.cli', run_name='__main__')\n"
              "except SystemExit as exc:\n"
              "    assert exc.code == 0, exc.code\n"
              "print('\\nLOADED', ' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr
    assert "export-labels" in run.stdout  # the whole parser was built
    loaded = set(run.stdout.rpartition("LOADED ")[2].split())
    assert "desk" in loaded
    assert loaded.isdisjoint(HEAVY_FOR_HELP), sorted(loaded & set(HEAVY_FOR_HELP))
