"""The report as the dashboard's Metrics page draws it (Streamlit AppTest, real SQLite)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from logging.handlers import BufferingHandler

import yaml
from streamlit.testing.v1 import AppTest

from desk.config.schema import load_config
from desk.store.db import connect
from tests.conftest import MINIMAL_CONFIG
from tests.test_alerts_support import new_case, update_case

UTC = dt.timezone.utc

SCRIPT = """
import datetime as dt
from dashboard.views.metrics import weekly_report_view
from desk.config.schema import load_config
from desk.store.db import connect

def no_embed(texts):
    raise RuntimeError("no embeddings here")

cfg = load_config({path!r})
weekly_report_view(connect(cfg.database_url()), cfg, now=dt.datetime(2026, 11, 24, 12, tzinfo=dt.timezone.utc),
                   embed=no_embed)
"""


def test_metrics_view_shows_the_figures_charts_and_downloads(tmp_path):
    data = yaml.safe_load(MINIMAL_CONFIG)
    data["database"] = {"url": "sqlite:///hearken.db"}
    data["alerts"] = {"enabled": False}
    data["sla"] = {"timezone": "UTC"}
    path = tmp_path / "hearken.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    store = connect(cfg.database_url())
    posted = dt.datetime(2026, 11, 17, 10, tzinfo=UTC)
    a = new_case(store, cfg, posted_at=posted, severity=2, body="Northwind <b>down</b>")
    new_case(store, cfg, posted_at=posted, severity=2, platform="x", body="Northwind slow")
    update_case(store, a, first_response_at=posted + dt.timedelta(hours=3), status="replied")
    store.close()

    deprecations = BufferingHandler(100)
    streamlit_log = logging.getLogger("streamlit.deprecation_util")
    streamlit_log.addHandler(deprecations)
    try:
        at = AppTest.from_string(SCRIPT.format(path=str(path)), default_timeout=30).run()
    finally:
        streamlit_log.removeHandler(deprecations)
    assert not at.exception
    # nothing was posted in the week in progress: the last full week is shown, the one in progress offered first
    assert at.selectbox(key="report_week").options[:2] == ["2026-W48 (in progress: figures are partial)", "2026-W47"]
    assert at.selectbox(key="report_week").value == "2026-W47"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Complaints"] == "2" and metrics["Answered publicly"] == "50%"
    assert metrics["Median first public reply"] == "3.0 h"
    assert len(at.get("vega_lite_chart")) + len(at.get("arrow_vega_lite_chart")) == 2
    assert len(at.get("download_button")) == 3
    # Streamlit writes a deprecation notice into the dashboard's log at every run of a page that earns one
    assert not [r.getMessage() for r in deprecations.buffer], "Streamlit logged a deprecation"

    charts = [json.loads(c.proto.spec) for c in _charts(at)]
    assert charts[0]["encoding"]["y"]["axis"]["format"] == "d"  # counts: whole numbers on the axis
    hours = _chart_rows(_charts(at)[1])
    assert all(r["value"] is not None for r in hours)  # no bar drawn at "null": x has no reply yet
    assert {(r["group"], r["series"]) for r in hours} == {("overall", "median"), ("overall", "90th percentile"),
                                                          ("demo", "median"), ("demo", "90th percentile")}
    assert abs(next(r["value"] for r in hours if r["group"] == "demo" and r["series"] == "median") - 3.0) < 1e-6

    at.selectbox(key="report_week").select("2026-W46").run()  # nothing in it: words, not empty charts
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Complaints"] == "0"
    assert not _charts(at)
    infos = [i.value for i in at.info]
    assert "No complaints were posted this week, so there is nothing to chart per day." in infos
    assert any(i.startswith("No complaint from this week has been answered publicly yet") for i in infos)


def _charts(at) -> list:
    return [*at.get("vega_lite_chart"), *at.get("arrow_vega_lite_chart")]


def _chart_rows(chart) -> list[dict]:
    """The rows a chart draws, read back from the Arrow table Streamlit sends the browser."""
    import pyarrow as pa

    table = pa.ipc.open_stream(chart.proto.data.data).read_all()
    return table.to_pylist()
