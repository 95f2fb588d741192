"""Staff corrections leave the database as training data the classifier's trainer accepts."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from collectors.base import Mention, PollResult
from desk.models import Label, Mention as MentionRow
from desk.pipeline import store_poll

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def test_export_labels_writes_the_newest_label_per_mention_for_train(tmp_path, cfg):
    from desk.db import connect

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
