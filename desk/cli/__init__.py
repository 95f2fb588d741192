"""The `hearken` command, one room per group of commands:

    running.py   hearken up / run / dashboard: the runner and the dashboard, until stopped
    api.py       hearken api: the HTTP API alone (hearken up starts it too)
    check.py     hearken check-config: every problem of the config file, with its line
    model.py     hearken classify; train and evaluate come from classifier/cli.py
    report.py    hearken report: the weekly public-response report, written and emailed
    labels.py    hearken export-labels: staff corrections as training data
    common.py    what they share: the config (or its problems) and the store
    hearken.py   the parser built from the rooms, and main()

`python -m desk.cli` runs it too (__main__.py).
"""

from desk.cli.hearken import build_parser, main

__all__ = ["build_parser", "main"]
