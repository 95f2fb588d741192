"""`hearken export-labels`: staff corrections of the classifier, as training data.

Each row of the labels table is a person saying "this mention is (not) a
complaint" (and, for a complaint, how severe). The newest label per mention
wins. The CSV (text,label,severity) is what `hearken train --extra-labels`
reads, so a team can retrain the shipped model on its own corrections.

A lead opens the same file in a spreadsheet to review what staff marked, so a text that a spreadsheet
would run as a formula (it begins with = + - @, tab or CR) is written with a leading apostrophe, as the
weekly report's CSV is (desk/untrusted.py); `load_extra_labels` reads such a cell back without it.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from desk.cli.common import load, open_store


def export_labels(store, out) -> int:
    """Write text,label,severity rows to the open file `out`; return how many."""
    from sqlalchemy import select

    import classifier
    from desk.store.models import Label, MentionRow
    from desk.untrusted import csv_cell

    with store.session() as s:
        rows = s.execute(select(Label, MentionRow).join(MentionRow, MentionRow.id == Label.mention_id)
                         .order_by(Label.mention_id, Label.created_at, Label.id)).all()
    newest: dict[int, tuple[Label, MentionRow]] = {}
    for label, mention in rows:
        newest[mention.id] = (label, mention)
    w = csv.writer(out)
    w.writerow(["text", "label", "severity"])
    for label, mention in newest.values():
        severity = label.severity if label.is_complaint and label.severity else (0 if not label.is_complaint else "")
        text = classifier.prepare_text(mention.title or "", mention.body)
        w.writerow([csv_cell(text), int(label.is_complaint), severity])
    return len(newest)


def cmd_export_labels(args) -> int:
    cfg = load(args)
    store = open_store(cfg)
    if args.out == "-":
        n = export_labels(store, sys.stdout)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="", encoding="utf-8") as fh:
            n = export_labels(store, fh)
    print(f"{n} labelled mention(s) written to {args.out}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("export-labels",
                       help="write staff corrections (text,label,severity CSV) for `hearken train --extra-labels`")
    p.add_argument("--out", default="var/labels.csv", help="CSV path, or - for stdout (default: var/labels.csv)")
    p.set_defaults(func=cmd_export_labels)
