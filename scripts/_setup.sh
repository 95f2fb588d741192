# Sourced by scripts/up.sh and scripts/test.sh: makes .venv and installs Hearken into it, at the versions
# pinned in constraints.txt, when pyproject.toml or constraints.txt changed since the last install.
# Usage: EXTRAS="test" . scripts/_setup.sh   (EXTRAS="" for the runtime alone: no torch, no CUDA)
#    or: EXTRAS=train bash scripts/_setup.sh   (add what `hearken train` and `hearken evaluate` need)
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

pip=(.venv/bin/python -m pip --disable-pip-version-check)

# torch for the test and train extras, the CPU build: pip takes it from a local wheel where the machine has one
# (machines of our kind: find-links in pip's config), else from $HEARKEN_TORCH_INDEX or PyTorch's CPU index;
# only where neither answers does it fall back to PyPI's build, which on Linux x86_64 is the CUDA one.
install_torch() {
  local want picked index=()
  want="torch==$(sed -n 's/^torch==\([^ ;]*\).*/\1/p' constraints.txt)"
  picked="$("${pip[@]}" install -q --dry-run --no-deps --ignore-installed --report - "$want" 2>/dev/null |
    .venv/bin/python -c 'import json, sys; r = json.load(sys.stdin)["install"]; print(r[0]["metadata"]["version"] if r else "")' ||
    true)"
  if [[ "$picked" == *+cpu ]]; then
    want="torch==$picked"  # exactly: replaces a CUDA build an older install left in .venv
  elif [ "$(uname -sm)" = "Linux x86_64" ]; then
    local url="${HEARKEN_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
    if .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=10)' \
        "$url" 2>/dev/null; then
      echo "hearken: $want: the CPU build from $url (about 190 MB)" >&2
      index=(--extra-index-url "$url")
    else
      echo "hearken: WARNING: no CPU build of $want here (no local wheel, $url unreachable):" \
        "pip takes PyPI's CUDA build, about 3 GB with its nvidia-* packages." \
        "Set HEARKEN_TORCH_INDEX to an index that has the CPU build to avoid it." >&2
    fi
  fi
  "${pip[@]}" install -qq --no-compile -c constraints.txt "${index[@]}" "$want"
}

stamp="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-${EXTRAS:-none}"
installed="$(cat .venv/.hearken-installed 2>/dev/null || true)"
# an install with the test extras also satisfies a plain run
if [ "$installed" != "$stamp" ] && { [ -n "${EXTRAS:-}" ] || [ "${installed%%-*}" != "${stamp%%-*}" ]; }; then
  echo "hearken: installing Python packages into .venv (first run takes a few minutes)" >&2
  "${pip[@]}" install -qq --no-compile -c constraints.txt --upgrade pip setuptools
  case ",${EXTRAS:-}," in *,test,*|*,train,*) install_torch ;; esac
  spec="."; [ -n "${EXTRAS:-}" ] && spec=".[${EXTRAS}]"
  # setuptools comes pinned from constraints.txt above, so the build of Hearken itself is reproducible too
  "${pip[@]}" install -qq --no-compile -c constraints.txt --no-build-isolation -e "$spec"
  echo "$stamp" > .venv/.hearken-installed
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
