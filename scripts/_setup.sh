# Sourced by scripts/up.sh and scripts/test.sh: makes .venv and installs Hearken into it when needed.
# Usage: EXTRAS="test" . scripts/_setup.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "hearken: please run as root or install: $*" >&2; return 1; fi; }

PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null; then
  echo "hearken: needs Python 3.11 or newer (python3 not found)" >&2; exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "hearken: needs Python 3.11 or newer; $PY is $("$PY" --version 2>&1)" >&2; exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "hearken: installing python3-venv (Debian/Ubuntu)" >&2
    as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
fi
hash="$(sha256sum < pyproject.toml | cut -c1-16)"
stamp="$hash-${EXTRAS:-none}"
installed="$(cat .venv/.hearken-installed 2>/dev/null || true)"
# an install with the test extras also satisfies a plain run
if [ "$installed" != "$stamp" ] && { [ -n "${EXTRAS:-}" ] || [ "${installed%%-*}" != "$hash" ]; }; then
  echo "hearken: installing Python packages into .venv (first run takes a few minutes)" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  spec="."; [ -n "${EXTRAS:-}" ] && spec=".[${EXTRAS}]"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec"
  echo "$stamp" > .venv/.hearken-installed
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
