#!/usr/bin/env bash
# Install what Hearken needs (first run only) and start it: runner + dashboard, SQLite, demo source.
# Arguments go to `hearken up` (e.g. --config my.yaml --port 8600).
EXTRAS="" . "$(dirname "$0")/_setup.sh"
exec .venv/bin/hearken up "$@"
