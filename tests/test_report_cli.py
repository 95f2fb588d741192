"""`hearken report` end to end: a config file, a SQLite database, files on disk, an email to a real SMTP server."""

from __future__ import annotations

import csv
import datetime as dt
import json

import yaml

from desk.cli import main
from desk.config.schema import load_config
from desk.store.db import connect
from tests.conftest import MINIMAL_CONFIG
from tests.test_alerts_support import new_case, smtp_server, update_case  # noqa: F401

UTC = dt.timezone.utc


def _setup(tmp_path, port: int):
    data = yaml.safe_load(MINIMAL_CONFIG)
    data["database"] = {"url": "sqlite:///hearken.db"}
    data["alerts"] = {"smtp": {"host": "127.0.0.1", "port": port},
                      "rules": {"severe_complaint": False}}
    data["report"] = {"recipients": ["Morgan Manager", "board@example.com"], "output_dir": "out"}
    path = tmp_path / "hearken.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    store = connect(cfg.database_url())
    ids = [new_case(store, cfg, posted_at=dt.datetime(2026, 11, 17, 10, i, tzinfo=UTC), severity=2,
                    body=f"Northwind outage number {i}") for i in range(3)]
    update_case(store, ids[0], first_response_at=dt.datetime(2026, 11, 17, 11, 0, tzinfo=UTC), status="replied")
    store.close()
    return path, ids


def test_report_writes_the_chosen_formats(tmp_path, capsys, smtp_server):
    path, ids = _setup(tmp_path, smtp_server.port)
    out = tmp_path / "chosen"
    assert main(["--config", str(path), "report", "--week", "2026-W47", "--format", "csv,json", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out / "hearken-report-2026-W47.csv") in printed and "3 complaints" in printed
    assert sorted(p.name for p in out.iterdir()) == ["hearken-report-2026-W47.csv", "hearken-report-2026-W47.json"]
    with open(out / "hearken-report-2026-W47.csv", newline="") as f:
        assert sorted(int(r["case_id"]) for r in csv.DictReader(f)) == sorted(ids)
    data = json.loads((out / "hearken-report-2026-W47.json").read_text())
    assert data["overall"]["answered_publicly"] == 1 and data["overall"]["complaints"] == 3
    assert not smtp_server.messages


def test_report_send_emails_the_list(tmp_path, capsys, smtp_server):
    path, _ = _setup(tmp_path, smtp_server.port)
    assert main(["--config", str(path), "report", "--week", "2026-W47", "--send"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [  # report.output_dir, beside the config
        "hearken-report-2026-W47.csv", "hearken-report-2026-W47.html", "hearken-report-2026-W47.json"]
    [got] = smtp_server.messages
    assert sorted(got.rcpt_tos) == ["board@example.com", "morgan@example.com"]
    assert "2026-W47" in got.message["Subject"] and "3 complaints" in got.message["Subject"]
    assert "emails sent: 1" in capsys.readouterr().out


def test_report_rejects_a_bad_week_and_format(tmp_path, capsys, smtp_server):
    path, _ = _setup(tmp_path, smtp_server.port)
    assert main(["--config", str(path), "report", "--week", "2026-W60"]) == 2
    assert "not a week of 2026" in capsys.readouterr().err
    assert main(["--config", str(path), "report", "--format", "pdf"]) == 2
    assert "pdf" in capsys.readouterr().err
