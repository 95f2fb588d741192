#!/usr/bin/env bash
# Refresh constraints.txt, the pins that scripts/_setup.sh installs from: every package of the runtime and of
# the test and training sets, for Python 3.11 and newer on every platform (uv pip compile --universal).
# Run it after changing the dependencies in pyproject.toml, then commit both files.
# Arguments go to uv (e.g. --upgrade, or --upgrade-package streamlit).
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
uv="$(command -v uv || true)"
if [ -z "$uv" ] || [ "$("$uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  tools=".venv-lock"
  [ -x "$tools/bin/uv" ] || { python3 -m venv "$tools" && "$tools/bin/python" -m pip install -q "uv==$UV_VERSION"; }
  uv="$tools/bin/uv"
fi
# pip itself is pinned too: _setup.sh upgrades the fresh venv's pip to this version before installing
# uv keeps the pins of an existing output file unless asked to upgrade (--upgrade, --upgrade-package P):
# seeding it from constraints.txt means adding a package moves no other pin
[ -f constraints.txt ] && grep -v '^#' constraints.txt > constraints.body
printf 'pip\n' | "$uv" pip compile pyproject.toml - --all-extras --universal --python-version 3.11 \
  --no-header --annotation-style line --quiet "$@" -o constraints.body
{
  echo "# Pins for every package Hearken installs: the runtime, and the test, train and postgres extras."
  echo "# Made by scripts/lock.sh (uv $UV_VERSION pip compile --universal); do not edit by hand."
  echo "# scripts/_setup.sh installs with pip -c constraints.txt, so a runtime install takes only what it needs"
  echo "# and gets the versions CI tested. torch==2.13.0 is met by the CPU build (2.13.0+cpu) as well."
  cat constraints.body
} > constraints.txt
rm constraints.body
echo "constraints.txt: $(grep -c '==' constraints.txt) pins" >&2
