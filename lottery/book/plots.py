"""Altair charts for the book, rendered without any CDN.

Altair's default renderers load Vega, Vega-Lite and vega-embed from a CDN, which
fails offline. :func:`use_offline_renderer` registers a renderer whose HTML calls a
global ``vegaEmbed`` that the book serves itself: :func:`write_vega_bundle` writes
the bundle that ``vl-convert-python`` ships into the book's ``_static`` folder, whose
``.js`` files jupyter-book loads on every page. The rendered output also carries the
Vega-Lite mime bundle, so the same notebook shows its charts in JupyterLab.

The chart builders take the tidy frames of :mod:`lottery.stats.analysis` and return
``alt.Chart`` objects with tooltips, a domain (or transfer-pair) drop-down and a
clickable legend that highlights one strategy. Strategies are the strategy table's keys
in the frames and arguments; each has one colour in every chart, from the table by key
(:func:`lottery.config.strategies.colour`), and the legend and tooltips name it by its
label (column :data:`LABEL`, added by :func:`with_labels`).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import altair as alt
import pandas as pd

from lottery.config import strategies as table
from lottery.experiment.labels import display_name, nines, strategy_label

VEGA_BUNDLE_NAME = "vega-bundle.js"
RENDERER_NAME = "lottery-offline"
#: The column the charts name strategies by (their labels; ``strategy`` holds the keys).
LABEL = "strategy_label"

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
        # Fit the page: a faceted chart gets as many columns as the width allows (at
        # least ~250 px per panel), a single one shrinks to it; text keeps its size.
        "  var w = Math.max(300, el.getBoundingClientRect().width || 720);\n"
        "  if (spec.facet && spec.columns && spec.spec) {\n"
        "    var cols = Math.max(1, Math.min(spec.columns, Math.floor(w / 250)));\n"
        "    spec.columns = cols;\n"
        "    spec.spec.width = Math.floor((w - 30) / cols) - 80;\n"
        "  } else if (typeof spec.width === 'number' && spec.width > w - 90) {\n"
        "    spec.width = w - 90;\n"
        "  }\n"
        "  if (w < 600 && spec.config && spec.config.legend) { spec.config.legend.columns = 2; }\n"
        # A title longer than the width breaks into lines (about 8 px per character).
        "  function wrap(t, n) {\n"
        "    if (typeof t !== 'string' || t.length <= n) return t;\n"
        "    var lines = [''];\n"
        "    t.split(' ').forEach(function (word) {\n"
        "      var last = lines[lines.length - 1];\n"
        "      if (last && (last + ' ' + word).length > n) lines.push(word);\n"
        "      else lines[lines.length - 1] = last ? last + ' ' + word : word;\n"
        "    });\n"
        "    return lines;\n"
        "  }\n"
        "  var chars = Math.floor((w - 20) / 8);\n"
        "  if (spec.title && spec.title.text) spec.title.text = wrap(spec.title.text, chars);\n"
        "  else spec.title = wrap(spec.title, chars);\n"
        # Axis labels and legends take room the estimate above cannot know: if the
        # drawing is still wider than the page, it is redrawn once, narrower by that much.
        "  function draw(first) {\n"
        '    vegaEmbed(el, spec, {"renderer": "svg", "actions": false}).then(function (res) {\n'
        "      var svg = el.querySelector('svg');\n"
        "      var over = svg ? Math.ceil(svg.getBoundingClientRect().width - w) : 0;\n"
        "      if (!first || over <= 0) return;\n"
        "      if (spec.spec) { spec.spec.width -= Math.ceil(over / (spec.columns || 1)) + 4; }\n"
        "      else if (typeof spec.width === 'number') { spec.width -= over + 4; } else return;\n"
        "      res.finalize(); draw(false);\n"
        "    }).catch(function (err) {\n"
        "      el.innerHTML = '<pre class=\"lottery-chart-error\">Error rendering chart: ' + err + '</pre>';\n"
        "    });\n"
        "  }\n"
        "  draw(true);\n"
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
def with_labels(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the labels of its strategy keys in column :data:`LABEL`."""
    return df.assign(**{LABEL: df["strategy"].map(strategy_label)})


def _strategy_colour(strategies: Sequence[str], **kwargs: object) -> alt.Color:
    """Colour by strategy (keys), each in its colour from the strategy table; the legend
    shows the labels (column :data:`LABEL`)."""
    shown = [strategy_label(s) for s in strategies]
    return alt.Color(f"{LABEL}:N", sort=shown,
                     scale=alt.Scale(domain=shown, range=[table.colour(s) for s in strategies]),
                     **kwargs)


def _tooltip(facet: str, facet_title: str, series: str,
             *values: tuple[str, ...], series_title: str | None = None) -> list[alt.Tooltip]:
    """Hover text: panel, series, round and sparsity, then ``(field, title[, format])``s."""
    return [alt.Tooltip(f"{facet}:N", title=facet_title),
            alt.Tooltip(f"{series}:N", title=series_title or alt.Undefined),
            alt.Tooltip("round:Q"), alt.Tooltip("sparsity:Q", format=".3%"),
            *(alt.Tooltip(field, title=title, format=fmt[0] if fmt else alt.Undefined)
              for field, title, *fmt in values)]


#: Chart text size (px). Charts are drawn at their real size (never scaled down), so
#: this is what a reader sees, at desktop and phone widths alike.
FONT = 12


def _configured(chart: alt.TopLevelMixin, legend_columns: int = 4) -> alt.TopLevelMixin:
    """One look for every chart: text ≥ 11 px, legend above the panels."""
    return (chart.configure_axis(labelFontSize=FONT, titleFontSize=FONT + 1)
            .configure_header(labelFontSize=FONT + 1, titleFontSize=FONT + 1)
            .configure_title(fontSize=FONT + 2, anchor="start")
            .configure_legend(orient="top", columns=legend_columns, labelFontSize=FONT,
                              titleFontSize=FONT, labelLimit=220, symbolOpacity=1))


def _faceted(chart: alt.Chart | alt.LayerChart, data: pd.DataFrame, facet: str,
             facet_title: str, columns: int, title: str, *params: object) -> alt.FacetChart:
    """One panel per ``facet`` value (in data order) and a drop-down to show one or all.

    All panels share the y scale (so heights compare across panels); each panel draws
    its own x axis, so no axis hangs under an empty slot of the grid. The page's
    renderer (:func:`render_offline`) picks the number of columns and the panel width
    from the width the page gives the chart, so that it fits down to a phone's width.
    """
    options = list(dict.fromkeys(data[facet]))
    pick = alt.param(
        name="pick", value="all",
        bind=alt.binding_select(options=["all", *options], name=f"{facet_title}: "),
    )
    return (
        chart.facet(facet=alt.Facet(f"{facet}:N", title=None, sort=options), columns=columns)
        .transform_filter(f"pick == 'all' || datum['{facet}'] == pick")
        .add_params(pick, *params)
        .resolve_axis(x="independent")
        .properties(title=title)
    )


def _chance_rule() -> alt.Chart:
    """A grey line at 50% (chance for the balanced binary task), labelled."""
    rule = alt.Chart().mark_rule(color="#999", strokeWidth=2, opacity=0.6).encode(y=alt.datum(50))
    label = alt.Chart().mark_text(align="left", dx=3, dy=-7, color="#666", fontSize=FONT,
                                  fontStyle="italic").encode(
        x=alt.value(0), y=alt.datum(50), text=alt.value("chance"))
    return rule + label


def accuracy_bands(
    summary: pd.DataFrame,
    *,
    facet: str,
    facet_title: str,
    strategies: Sequence[str],
    title: str,
    columns: int = 3,
    width: int = 220,
    height: int = 200,
) -> alt.FacetChart:
    """Test accuracy (%) vs sparsity, one panel per ``facet`` value, shared y scale.

    With at most 5 seeds every seed is drawn as a thin line and the mean as a bold one
    (bands of a few seeds hide each other); with more, the mean and a ± 1 std band.
    ``summary`` has one row per (``facet`` value, strategy, round) with ``sparsity``,
    ``x`` (= nines(sparsity)), ``mean``, ``std``, ``lo``, ``hi``, ``n`` and the per-seed
    ``seed_ids`` / ``seed_values`` of :func:`lottery.stats.analysis.summarise`. A dashed line
    marks chance (50%). A drop-down picks one panel, a legend click highlights a
    strategy, hovering shows the numbers.
    """
    data = with_labels(summary[summary["strategy"].isin(strategies)])
    for col in ("mean", "std", "lo", "hi"):
        data[col] = 100 * data[col]
    per_seed = "seed_values" in data and int(data["n"].max()) <= 5
    # One long table: the mean rows (kind "mean") and, for per-seed lines, one row per
    # seed (kind "seed"); each layer filters its kind. (Vega-Lite's flatten transform
    # inside a faceted layer duplicates rows, so the long form is built here.)
    rows = data.drop(columns=["seed_ids", "seed_values"], errors="ignore").assign(kind="mean")
    if per_seed:
        seeds = data.explode(["seed_ids", "seed_values"])
        seeds = (seeds.drop(columns=["seed_ids", "seed_values"])
                 .assign(kind="seed", seed=seeds["seed_ids"].astype(int),
                         acc=100 * seeds["seed_values"].astype(float)))
        rows = pd.concat([rows, seeds], ignore_index=True)
    legend = alt.selection_point(fields=[LABEL], bind="legend", name="legend")
    x = sparsity_axis(data["sparsity"])
    y_title = "test accuracy (%)"
    tooltip = _tooltip(facet, facet_title, LABEL, ("mean:Q", "mean test accuracy (%)", ".1f"),
                       ("std:Q", "std over seeds (points)", ".1f"), ("n:Q", "seeds"),
                       series_title="strategy")
    base = alt.Chart().encode(x=x, color=_strategy_colour(strategies, title="strategy"))
    dashed = alt.condition("datum.strategy == 'full'", alt.value([5, 3]), alt.value([1, 0]))
    mean = base.transform_filter("datum.kind == 'mean'").mark_line(point=True, strokeWidth=3).encode(
        y=alt.Y("mean:Q", title=y_title, scale=alt.Scale(zero=False)),
        strokeDash=dashed,
        opacity=alt.condition(legend, alt.value(1.0), alt.value(0.15)),
        tooltip=tooltip,
    )
    if per_seed:
        spread = (base.transform_filter("datum.kind == 'seed'").mark_line(strokeWidth=1)
                  .encode(y=alt.Y("acc:Q", title=y_title), detail="seed:N", strokeDash=dashed,
                          opacity=alt.condition(legend, alt.value(0.45), alt.value(0.05))))
    else:
        spread = base.transform_filter("datum.kind == 'mean'").mark_area().encode(
            y=alt.Y("lo:Q", title=y_title), y2="hi:Q",
            opacity=alt.condition(legend, alt.value(0.2), alt.value(0.03)))
    layered = alt.layer(spread, mean, _chance_rule(), data=rows).properties(width=width, height=height)
    return _configured(_faceted(layered, data, facet, facet_title, columns, title, legend))


def difference_intervals(
    diffs: pd.DataFrame, *, facet: str, facet_title: str, title: str, columns: int = 3,
    width: int = 220, height: int = 200,
) -> alt.FacetChart:
    """Paired difference (points; mean and t-interval) vs sparsity, one panel per ``facet``."""
    data = diffs.copy()
    for col in ("mean_diff", "ci_low", "ci_high"):
        data[col] = 100 * data[col]
    if facet == "domain":
        data["domain"] = [display_name(d) for d in data["domain"]]
    x = sparsity_axis(data["sparsity"])
    tooltip = _tooltip(facet, facet_title, "comparison",
                       ("mean_diff:Q", "mean difference (points)", "+.1f"),
                       ("ci_low:Q", "interval low", "+.1f"), ("ci_high:Q", "interval high", "+.1f"),
                       ("n:Q", "paired seeds"))
    base = alt.Chart().encode(x=x, color=alt.Color("comparison:N", title="comparison"))
    band = base.mark_area(opacity=0.2).encode(
        y=alt.Y("ci_low:Q", title="accuracy difference (points)"), y2="ci_high:Q")
    line = base.mark_line(point=True, strokeWidth=2).encode(y="mean_diff:Q", tooltip=tooltip)
    zero = alt.Chart().mark_rule(color="black", strokeDash=[2, 2]).encode(y=alt.datum(0))
    layered = alt.layer(band, line, zero, data=data).properties(width=width, height=height)
    return _configured(_faceted(layered, data, facet, facet_title, columns, title), 1)


def spread_lines(
    spread: pd.DataFrame, *, facet: str, facet_title: str, strategies: Sequence[str],
    title: str, columns: int = 3, width: int = 220, height: int = 200,
) -> alt.FacetChart:
    """Standard deviation of test accuracy over seeds (points) vs sparsity, per strategy."""
    data = with_labels(spread[spread["strategy"].isin(strategies)])
    data["std"] = 100 * data["std"]
    if facet == "domain":
        data["domain"] = [display_name(d) for d in data["domain"]]
    chart = alt.Chart(data).mark_line(point=True, strokeWidth=2).encode(
        x=sparsity_axis(data["sparsity"]),
        y=alt.Y("std:Q", title="std over seeds (points)"),
        color=_strategy_colour(strategies, title="strategy"),
        tooltip=_tooltip(facet, facet_title, LABEL, ("std:Q", "std (points)", ".2f"),
                         ("n:Q", "seeds"), series_title="strategy"),
    ).properties(width=width, height=height)
    return _configured(_faceted(chart, data, facet, facet_title, columns, title))


