"""Altair charts for the book, rendered without any CDN.

Altair's default renderers load Vega, Vega-Lite and vega-embed from a CDN, which
fails offline. :func:`use_offline_renderer` registers a renderer whose HTML calls a
global ``vegaEmbed`` that the book serves itself: :func:`write_vega_bundle` writes
the bundle that ``vl-convert-python`` ships into the book's ``_static`` folder, whose
``.js`` files jupyter-book loads on every page. The rendered output also carries the
Vega-Lite mime bundle, so the same notebook shows its charts in JupyterLab.

The chart builders take the tidy frames of :mod:`lottery.analysis` and return
``alt.Chart`` objects with tooltips, a domain (or transfer-pair) drop-down and a
clickable legend that highlights one strategy. Each strategy has one colour in every
chart, from the strategy table (:func:`lottery.strategies.colour`).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import altair as alt
import pandas as pd

from lottery.labels import nines

VEGA_BUNDLE_NAME = "vega-bundle.js"
RENDERER_NAME = "lottery-offline"

# ------------------------------------------------------------------ offline renderer
def vegalite_minor_version() -> str:
    """The Vega-Lite version Altair writes specs for, as ``major.minor`` (e.g. ``6.4``)."""
    major, minor, *_ = alt.SCHEMA_VERSION.lstrip("v").split(".")
    return f"{major}.{minor}"


def write_vega_bundle(static_dir: Path) -> Path:
    """Write Vega + Vega-Lite + vega-embed (from vl-convert) into ``static_dir``.

    The bundle defines the globals ``vegaEmbed``, ``vega`` and ``vegaLite``. It is
    rewritten only when its content changes.
    """
    import vl_convert as vlc

    version = vegalite_minor_version()
    if version not in vlc.get_vegalite_versions():
        raise RuntimeError(
            f"vl-convert-python {vlc.__version__ if hasattr(vlc, '__version__') else ''} "
            f"does not ship Vega-Lite {version} (Altair {alt.__version__} needs it); "
            f"it has {vlc.get_vegalite_versions()}. Upgrade vl-convert-python."
        )
    # The bundle declares top-level consts (e.g. `_`) that clash with the page's other
    # classic scripts; wrapped in a function they stay local. It publishes its API
    # through explicit `window.*` assignments, which still reach the global scope.
    bundle = ("/* Vega, Vega-Lite and vega-embed, bundled by vl-convert-python */\n"
              "(function () {\n" + vlc.javascript_bundle(vl_version=version) + "\n})();\n")
    static_dir.mkdir(parents=True, exist_ok=True)
    path = static_dir / VEGA_BUNDLE_NAME
    if not path.exists() or path.read_text(encoding="utf-8") != bundle:
        path.write_text(bundle, encoding="utf-8")
    return path


def _chart_id(spec: dict) -> str:
    # Deterministic (content-addressed) ids keep executed notebooks stable across runs.
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return f"lottery-chart-{digest[:12]}"


def render_offline(spec: dict, **_: object) -> dict[str, object]:
    """Altair renderer: HTML that embeds ``spec`` with the page's global ``vegaEmbed``."""
    div = _chart_id(spec)
    payload = json.dumps(spec, sort_keys=True, default=str).replace("</", "<\\/")
    html = (
        f'<div id="{div}" class="lottery-chart"></div>\n'
        '<script type="text/javascript">\n'
        "(function () {\n"
        f'  var el = document.getElementById("{div}");\n'
        f"  var spec = {payload};\n"
        '  if (typeof vegaEmbed === "undefined") {\n'
        "    el.innerHTML = '<p class=\"lottery-chart-error\">Error loading script: "
        f"{VEGA_BUNDLE_NAME} (vegaEmbed) is not loaded on this page.</p>';\n"
        "    return;\n"
        "  }\n"
        '  vegaEmbed(el, spec, {"renderer": "svg", "actions": false}).catch(function (err) {\n'
        "    el.innerHTML = '<pre class=\"lottery-chart-error\">Error rendering chart: ' + err + '</pre>';\n"
        "  });\n"
        "})();\n"
        "</script>"
    )
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text")
    return {
        f"application/vnd.vegalite.v{alt.SCHEMA_VERSION.lstrip('v').split('.')[0]}+json": spec,
        "text/html": html,
        "text/plain": f"<chart: {title or 'untitled'}>",
    }


def use_offline_renderer() -> None:
    """Make Altair render charts for the book (no CDN); idempotent."""
    if RENDERER_NAME not in alt.renderers.names():
        alt.renderers.register(RENDERER_NAME, render_offline)
    alt.renderers.enable(RENDERER_NAME)


# ------------------------------------------------------------------ sparsity axis
def sparsity_ticks(sparsities: Iterable[float], max_ticks: int = 9) -> list[float]:
    """Axis positions (in :func:`nines` units) for a readable subset of the sparsities."""
    values = sorted({round(nines(s), 6) for s in sparsities})
    if len(values) <= max_ticks:
        return values
    step = math.ceil((len(values) - 1) / (max_ticks - 1))
    picked = values[::step]
    if picked[-1] != values[-1]:
        picked.append(values[-1])
    return picked


# The label shows the sparsity (%) the axis position stands for, with as many decimals
# as it takes to tell it from 100% (35%, 90%, 96.5%, 99.1%, 99.98%), like the paper's.
_SPARSITY_LABEL = (
    "format(100 * (1 - pow(10, -datum.value)), "
    "datum.value <= 1 ? '.0f' : datum.value <= 2 ? '.1~f' : datum.value <= 3 ? '.2~f' "
    ": datum.value <= 4 ? '.3~f' : '.4~f') + '%'"
)


def sparsity_axis(sparsities: Iterable[float], title: str = "sparsity (log-spaced)") -> alt.X:
    """The paper-like x axis: positions in :func:`nines` units, labelled in sparsity (%)."""
    sparsities = list(sparsities)
    ticks = sparsity_ticks(sparsities)
    end = max(ticks) * 1.05 if ticks and max(ticks) > 0 else 1.0
    return alt.X(
        "x:Q",
        title=title,
        axis=alt.Axis(values=ticks, labelExpr=_SPARSITY_LABEL, labelAngle=-45, grid=True,
                      labelOverlap=False, labelFlush=False),
        scale=alt.Scale(domain=[0, end], nice=False),
    )


# ------------------------------------------------------------------ charts
def _strategy_colour(strategies: Sequence[str], **kwargs: object) -> alt.Color:
    """Colour by strategy, each in its colour from the strategy table."""
    from lottery import strategies as table  # the table imports the engine (torch)

    return alt.Color("strategy:N", sort=list(strategies),
                     scale=alt.Scale(domain=list(strategies),
                                     range=[table.colour(s) for s in strategies]), **kwargs)


def _tooltip(facet: str, facet_title: str, series: str,
             *values: tuple[str, ...]) -> list[alt.Tooltip]:
    """Hover text: panel, series, round and sparsity, then ``(field, title[, format])``s."""
    return [alt.Tooltip(f"{facet}:N", title=facet_title), alt.Tooltip(f"{series}:N"),
            alt.Tooltip("round:Q"), alt.Tooltip("sparsity:Q", format=".3%"),
            *(alt.Tooltip(field, title=title, format=fmt[0] if fmt else alt.Undefined)
              for field, title, *fmt in values)]


def _faceted(chart: alt.Chart | alt.LayerChart, data: pd.DataFrame, facet: str,
             facet_title: str, columns: int, title: str, *params: object) -> alt.FacetChart:
    """One panel per ``facet`` value (in data order) and a drop-down to show one or all."""
    options = list(dict.fromkeys(data[facet]))
    pick = alt.param(
        name="pick", value="all",
        bind=alt.binding_select(options=["all", *options], name=f"{facet_title}: "),
    )
    return (
        chart.facet(facet=alt.Facet(f"{facet}:N", title=None, sort=options), columns=columns)
        .transform_filter(f"pick == 'all' || datum['{facet}'] == pick")
        .add_params(pick, *params)
        .properties(title=title)
    )


def accuracy_bands(
    summary: pd.DataFrame,
    *,
    facet: str,
    facet_title: str,
    strategies: Sequence[str],
    title: str,
    columns: int = 3,
    width: int = 150,
    height: int = 150,
) -> alt.FacetChart:
    """Mean test accuracy (line) and mean ± std over seeds (band) vs sparsity.

    ``summary`` has one row per (``facet`` value, strategy, round) with columns
    ``sparsity``, ``x`` (= nines(sparsity)), ``mean``, ``std``, ``lo``, ``hi``, ``n``.
    A drop-down picks one facet value (or all), clicking a legend entry highlights a
    strategy, and hovering shows the numbers.
    """
    data = summary[summary["strategy"].isin(strategies)].copy()
    legend = alt.selection_point(fields=["strategy"], bind="legend", name="legend")
    x = sparsity_axis(data["sparsity"])
    tooltip = _tooltip(facet, facet_title, "strategy", ("mean:Q", "mean test acc", ".3f"),
                       ("std:Q", "std over seeds", ".3f"), ("n:Q", "seeds"))
    base = alt.Chart().encode(x=x, color=_strategy_colour(strategies, title="strategy"))
    band = base.mark_area(opacity=0.18).encode(
        y=alt.Y("lo:Q", title="test accuracy", scale=alt.Scale(zero=False)),
        y2="hi:Q",
        opacity=alt.condition(legend, alt.value(0.2), alt.value(0.03)),
    )
    line = base.mark_line(point=True).encode(
        y=alt.Y("mean:Q", title="test accuracy", scale=alt.Scale(zero=False)),
        strokeDash=alt.condition("datum.strategy == 'FULL-MODEL'", alt.value([5, 3]),
                                 alt.value([1, 0])),
        opacity=alt.condition(legend, alt.value(1.0), alt.value(0.15)),
        tooltip=tooltip,
    )
    layered = alt.layer(band, line, data=data).properties(width=width, height=height)
    return (
        _faceted(layered, data, facet, facet_title, columns, title, legend)
        .resolve_scale(y="independent")
        .configure_legend(orient="top", columns=4, labelLimit=200, symbolOpacity=1)
    )


def difference_intervals(
    diffs: pd.DataFrame, *, facet: str, facet_title: str, title: str, columns: int = 3,
    width: int = 150, height: int = 150,
) -> alt.FacetChart:
    """Paired difference (mean and t-interval) vs sparsity, one panel per ``facet``."""
    x = sparsity_axis(diffs["sparsity"])
    tooltip = _tooltip(facet, facet_title, "comparison",
                       ("mean_diff:Q", "mean difference", "+.3f"),
                       ("ci_low:Q", "95% CI low", "+.3f"), ("ci_high:Q", "95% CI high", "+.3f"),
                       ("n:Q", "paired seeds"))
    base = alt.Chart().encode(x=x, color=alt.Color("comparison:N", title="comparison"))
    band = base.mark_area(opacity=0.2).encode(
        y=alt.Y("ci_low:Q", title="accuracy difference"), y2="ci_high:Q")
    line = base.mark_line(point=True).encode(y="mean_diff:Q", tooltip=tooltip)
    zero = alt.Chart().mark_rule(color="black", strokeDash=[2, 2]).encode(y=alt.datum(0))
    layered = alt.layer(band, line, zero, data=diffs).properties(width=width, height=height)
    return (_faceted(layered, diffs, facet, facet_title, columns, title)
            .configure_legend(orient="top", labelLimit=300))


def spread_lines(
    spread: pd.DataFrame, *, facet: str, facet_title: str, strategies: Sequence[str],
    title: str, columns: int = 3, width: int = 150, height: int = 150,
) -> alt.FacetChart:
    """Standard deviation of test accuracy over seeds vs sparsity, per strategy."""
    data = spread[spread["strategy"].isin(strategies)]
    chart = alt.Chart(data).mark_line(point=True).encode(
        x=sparsity_axis(data["sparsity"]),
        y=alt.Y("std:Q", title="std of test accuracy over seeds"),
        color=_strategy_colour(strategies),
        tooltip=_tooltip(facet, facet_title, "strategy", ("std:Q", "std", ".4f"),
                         ("n:Q", "seeds")),
    ).properties(width=width, height=height)
    return (_faceted(chart, data, facet, facet_title, columns, title)
            .configure_legend(orient="top", columns=4, labelLimit=200, symbolOpacity=1))


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
    return (cells + text).properties(width=320, height=320, title=title)


def length_histogram(lengths: pd.DataFrame, title: str) -> alt.Chart:
    """Review length (subword pieces or tokens) distribution per domain, clipped at a cap."""
    options = list(dict.fromkeys(lengths["name"]))
    pick = alt.selection_point(fields=["name"], bind="legend", name="legend")
    return (
        alt.Chart(lengths)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("bin_start:Q", title="review length (tokens, binned)"),
            y=alt.Y("share:Q", title="share of reviews", axis=alt.Axis(format="%")),
            color=alt.Color("name:N", title="domain", sort=options),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
            tooltip=[alt.Tooltip("name:N", title="domain"),
                     alt.Tooltip("bin_start:Q", title="from"),
                     alt.Tooltip("bin_end:Q", title="to (excl.)"),
                     alt.Tooltip("share:Q", format=".1%"), alt.Tooltip("count:Q")],
        )
        .add_params(pick)
        .properties(width=520, height=240, title=title)
    )
