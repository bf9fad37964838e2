"""The federated chapter's chart: test accuracy against bytes communicated."""

from __future__ import annotations

import altair as alt
import pandas as pd

from lottery.book.plots import LABEL, _chance_rule, _configured, _faceted, _strategy_colour, with_labels
from lottery.federated.report import FULL, MB, MOVED, RANDOM, TARGET, _keyed, _mask_label


def communication_chart(history: pd.DataFrame, title: str, columns: int = 3, width: int = 220,
                        height: int = 200) -> alt.FacetChart:
    """Test accuracy (%) against MB communicated (log scale), one panel per mask
    sparsity; the dense model's curve is drawn in every panel. Thin lines: seeds; bold:
    their mean."""
    if history.empty:
        return alt.Chart(pd.DataFrame({"text": ["no federated task in this build"]})).mark_text(
            fontSize=14).encode(text="text:N").properties(title=title, width=width, height=40)
    history = _keyed(history)
    sparse = history[history["round"] > 0].assign(panel=lambda d: _mask_label(d))
    dense = history[history["round"] == 0]
    panels = list(dict.fromkeys(sparse.sort_values("round")["panel"]))
    data = pd.concat([sparse] + [dense.assign(panel=p) for p in panels], ignore_index=True)
    data = data[data["comm_round"] > 0].assign(acc=lambda d: 100 * d["test_acc"], MB=lambda d: d["bytes"] / MB)
    mean = (data.groupby(["panel", "strategy", "comm_round"], sort=False)
            .agg(MB=("MB", "mean"), acc=("acc", "mean")).reset_index().assign(kind="mean"))
    rows = with_labels(pd.concat([data.assign(kind="seed"), mean], ignore_index=True))
    strategies = [s for s in (FULL, TARGET, MOVED, RANDOM) if s in set(rows["strategy"])]
    legend = alt.selection_point(fields=[LABEL], bind="legend", name="legend")
    x = alt.X("MB:Q", scale=alt.Scale(type="log"), title="MB communicated (all clients, both ways)")
    y = alt.Y("acc:Q", title="test accuracy (%)", scale=alt.Scale(zero=False))
    base = alt.Chart().encode(x=x, y=y, color=_strategy_colour(strategies, title="strategy"))
    dashed = alt.condition(f"datum.strategy == '{FULL}'", alt.value([5, 3]), alt.value([1, 0]))
    seeds = (base.transform_filter("datum.kind == 'seed'").mark_line(strokeWidth=1)
             .encode(detail="seed:N", strokeDash=dashed,
                     opacity=alt.condition(legend, alt.value(0.4), alt.value(0.05))))
    means = (base.transform_filter("datum.kind == 'mean'").mark_line(point=True, strokeWidth=3)
             .encode(strokeDash=dashed, opacity=alt.condition(legend, alt.value(1.0), alt.value(0.15)),
                     tooltip=[alt.Tooltip("panel:N", title="mask"), alt.Tooltip(f"{LABEL}:N", title="strategy"),
                              alt.Tooltip("comm_round:Q", title="communication round"),
                              alt.Tooltip("MB:Q", title="MB so far", format=".2f"),
                              alt.Tooltip("acc:Q", title="mean test accuracy (%)", format=".1f")]))
    layered = alt.layer(seeds, means, _chance_rule(), data=rows).properties(width=width, height=height)
    return _configured(_faceted(layered, rows, "panel", "mask", columns, title, legend))
