"""The data chapters' charts: review lengths per domain and the JSD heatmap."""

from __future__ import annotations

import altair as alt
import pandas as pd

from lottery.book.plots import _configured, _faceted


def jsd_heatmap(jsd: pd.DataFrame, title: str) -> alt.LayerChart:
    """Fig. 1: the JSD matrix (×1e5) as an annotated heatmap."""
    order = list(dict.fromkeys(jsd["name_a"]))
    base = alt.Chart(jsd).encode(
        x=alt.X("name_b:N", title=None, sort=order, axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("name_a:N", title=None, sort=order),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("jsd_x1e5:Q", title="JSD ×1e5", scale=alt.Scale(scheme="blues")),
        tooltip=[alt.Tooltip("name_a:N", title="domain"), alt.Tooltip("name_b:N", title="domain"),
                 alt.Tooltip("jsd_x1e5:Q", title="JSD ×1e5", format=".1f"),
                 alt.Tooltip("jsd:Q", title="JSD", format=".3e")],
    )
    text = base.mark_text(fontSize=12).encode(
        text=alt.Text("jsd_x1e5:Q", format=".0f"),
        color=alt.condition("datum.jsd_x1e5 > 0.6 * datum.maxjsd", alt.value("white"),
                            alt.value("black")),
    ).transform_joinaggregate(maxjsd="max(jsd_x1e5)")
    return _configured((cells + text).properties(width=320, height=320, title=title))


def length_histogram(lengths: pd.DataFrame, title: str, columns: int = 3) -> alt.FacetChart:
    """Review length distribution, one panel per domain (shared axes), clipped at a cap."""
    data = lengths.copy()
    data["pct"] = 100 * data["share"]
    chart = (
        alt.Chart(data)
        .mark_area(interpolate="step-after", opacity=0.75, line=True)
        .encode(
            x=alt.X("bin_start:Q", title="review length (tokens, binned)"),
            y=alt.Y("pct:Q", title="share of reviews (%)"),
            color=alt.Color("name:N", legend=None, sort=list(dict.fromkeys(data["name"]))),
            tooltip=[alt.Tooltip("name:N", title="domain"),
                     alt.Tooltip("bin_start:Q", title="from"),
                     alt.Tooltip("bin_end:Q", title="to (excl.)"),
                     alt.Tooltip("pct:Q", title="share (%)", format=".1f"), alt.Tooltip("count:Q")],
        )
        .properties(width=220, height=160)
    )
    return _configured(_faceted(chart, data, "name", "domain", columns, title))
