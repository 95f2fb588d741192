#!/usr/bin/env bash
# Install what the tests need (first run only: Python packages, Debian's chromium) and run the whole suite.
# Arguments go to pytest (e.g. -k config, -x).
EXTRAS="test" . "$(dirname "$0")/_setup.sh"
if ! command -v chromium >/dev/null; then
  echo "hearken: installing Debian's chromium for the browser tests" >&2
  as_root apt-get update -qq && as_root apt-get install -y -qq chromium >/dev/null
fi
# Run the storage tests on PostgreSQL too when a server answers on 127.0.0.1:5432 (trust auth, database test).
if [ -z "${HEARKEN_TEST_PG_URL:-}" ] && .venv/bin/python - <<'PY' 2>/dev/null
import psycopg; psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=3).close()
PY
then export HEARKEN_TEST_PG_URL="postgresql://postgres@127.0.0.1:5432/test"; fi
exec .venv/bin/python -m pytest "$@"
