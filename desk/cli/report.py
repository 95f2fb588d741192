"""`hearken report`: build the weekly public-response report, write it, and optionally email it.

    hearken report                         last full ISO week, HTML + CSV + JSON into report.output_dir
    hearken report --week 2026-W47 --format csv --out /tmp/r
    hearken report --send                  also email it to report.recipients (through the outbox)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from desk.cli.common import load, open_store


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="write the weekly public-response report (HTML, CSV, JSON); --send emails it")
    p.add_argument("--week", help="ISO week such as 2026-W47 (default: the last full week in sla.timezone)")
    p.add_argument("--out", metavar="DIR", help="folder for the files (default: report.output_dir)")
    p.add_argument("--format", default="html,csv,json", help="comma-separated: html, csv, json (default: all three)")
    p.add_argument("--send", action="store_true", help="email the report to report.recipients now")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from desk.notify import alerts
    from desk.notify import mailer, outbox
    from desk.errors import UserError
    from desk.store.models import now_utc
    from desk.reports import weekly

    cfg = load(args)
    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("html", "csv", "json")]
    if bad or not formats:
        print(f"hearken report: unknown format(s) {', '.join(bad) or '(none)'}; expected html, csv, json",
              file=sys.stderr)
        return 2
    store = open_store(cfg)
    now = now_utc()
    try:
        rep = weekly.weekly_report(store, cfg, args.week, now=now)
    except UserError as exc:  # not an ISO week
        print(f"hearken report: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve() if args.out else weekly.output_dir(cfg)
    for path in weekly.write_files(rep, out, formats):
        print(path)
    print(weekly.headline(rep))
    if args.send:
        if not cfg.report.recipients:
            print("hearken report: report.recipients is empty; nothing sent", file=sys.stderr)
            return 1
        with store.session() as s:
            row = alerts.send_weekly_report(s, cfg, now, force=True, week=rep.week, write_files=False)
        if row is None:
            print(f"the report for {rep.week} was already queued or sent; see the Sources page")
        result = mailer.send_pending(store, cfg, now=now)
        health = outbox.outbox_health(store)
        print(f"emails sent: {len(result.sent)}, waiting to retry: {len(result.retrying)}, failed: {len(result.failed)}")
        if result.retrying or result.failed:
            err = health["last_error"]
            print(f"  last error: {err['error'] if err else '-'} (the runner keeps retrying)", file=sys.stderr)
            return 1
    store.close()
    return 0
