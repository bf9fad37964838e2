"""Charts: the offline renderer, the Vega bundle, the sparsity axis, chart specs."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import pytest

from lottery import config
from lottery.book import plots
from lottery.config import strategies
from lottery.experiment import labels
from lottery.stats import analysis
from synthetic import tickets_frame


def test_offline_renderer_has_no_cdn_and_stable_ids():
    plots.use_offline_renderer()
    chart = alt.Chart(pd.DataFrame({"a": [1, 2]})).mark_point().encode(x="a:Q")
    bundle = plots.render_offline(chart.to_dict())
    html = bundle["text/html"]
    assert "vegaEmbed(" in html and "cdn" not in html.lower() and "http" not in html.split("spec")[0]
    assert plots.render_offline(chart.to_dict())["text/html"] == html  # deterministic id
    assert any(k.startswith("application/vnd.vegalite") for k in bundle)
    # the active renderer is ours: the chart's mime bundle carries our HTML
    mime = chart._repr_mimebundle_()
    mime = mime[0] if isinstance(mime, tuple) else mime
    assert "lottery-chart-" in mime["text/html"]


def test_vega_bundle_defines_globals_without_leaking_consts(tmp_path):
    path = plots.write_vega_bundle(tmp_path)
    text = path.read_text()
    assert text.lstrip().startswith("/*") and "(function () {" in text[:200]
    assert "window.vegaEmbed=" in text.replace(" ", "")
    assert text.rstrip().endswith("})();")


def test_sparsity_ticks_are_log_spaced_positions():
    spars = [config.sparsity_after(0.35, r) for r in range(21)]
    ticks = plots.sparsity_ticks(spars, max_ticks=9)
    assert len(ticks) <= 10 and ticks[0] == 0 and ticks[-1] == pytest.approx(labels.nines(spars[-1]), abs=1e-6)
    assert all(b > a for a, b in zip(ticks, ticks[1:]))


def test_accuracy_bands_spec_has_dropdown_tooltips_axis_labels_and_table_colours():
    curves = analysis.ticket_curves(tickets_frame())
    shown = ["full", "reset"]
    chart = plots.accuracy_bands(curves, facet="name", facet_title="domain",
                                 strategies=shown, title="t")
    spec = chart.to_dict()
    text = json.dumps(spec)
    assert '"bind": {"input": "select"' in text
    assert '"tooltip"' in text
    assert "labelExpr" in text and "pow(10, -datum.value)" in text
    colour = spec["spec"]["layer"][0]["encoding"]["color"]
    assert [strategies.colour(s) for s in shown] == colour["scale"]["range"]   # by key
    assert colour["scale"]["domain"] == ["FULL-MODEL", "TICKET-RESET"]          # legend: labels
    assert colour["field"] == plots.LABEL and "datum.strategy == 'full'" in text


def test_difference_and_spread_charts_build():
    df = tickets_frame()
    diffs = analysis.paired_differences(df, "reset", "random")
    assert "mean difference" in json.dumps(plots.difference_intervals(
        diffs, facet="domain", facet_title="domain", title="d").to_dict())
    spread = analysis.spread(df, "domain", ["reset", "random"])
    assert '"pick"' in json.dumps(plots.spread_lines(
        spread, facet="domain", facet_title="domain", strategies=["reset", "random"],
        title="s").to_dict())
