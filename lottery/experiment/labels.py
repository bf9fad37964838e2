"""Display labels and units: how the book writes domains, pairs, strategies, accuracies
and sparsities.

One place for each rule, so that a table, a glued number in the prose and a chart axis
say the same thing the same way (the paper's domain names, "TICKET-RESET", "81.2%",
"+3.1 pts", "99.22%"). Domain *names* are resolved by :func:`lottery.data.resolve_domain`;
this module only turns resolved names into text.

Strategies: results frames, filters, joins and dictionaries use the strategy table's
*keys* (``reset``, ``masks_random``, ...; :mod:`lottery.config.strategies`); the paper's
labels (``TICKET-RESET``) are text for a reader and come from the table here, when a
table, chart or sentence is made. Renaming a label then changes what is printed, never
what is compared.
"""

from __future__ import annotations

import math
import pandas as pd

from lottery import data
from lottery.config import PAPER_DOMAINS, strategies

#: Sparsities this close to 1 are drawn (and labelled) as 1 - 1e-9: keeps log10 finite.
_MIN_DENSITY = 1e-9


def display_name(domain: str) -> str:
    """The paper's name for a domain (``music`` -> ``CDs``), else the domain itself."""
    return str(data.paper_name(domain))


def domain_rank(name: str) -> tuple[int, str]:
    """Sort key for the one domain order of every table and chart: the paper's (Books,
    Electronics, Movies, CDs, Home), then any other domain alphabetically. Takes
    dataset names or display names."""

    order = list(PAPER_DOMAINS)
    shown = display_name(name) if name not in order else name
    return (order.index(shown), "") if shown in order else (len(order), str(name))


def in_domain_order(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``df`` stably sorted by :func:`domain_rank` of ``columns`` (e.g. source, target)."""
    keys = [df[c].map(domain_rank) for c in columns]
    order = sorted(range(len(df)), key=lambda i: tuple(k.iloc[i] for k in keys))
    return df.iloc[order].reset_index(drop=True)


def pair_label(source: str, target: str) -> str:
    """A transfer task as the book titles it: ``Books → Electronics``."""
    return f"{display_name(source)} → {display_name(target)}"


def pair_name(pair: tuple[str, str], sep: str = "–") -> str:
    """An unordered pair of domains (JSD): ``Electronics–Home``."""
    return f"{display_name(pair[0])}{sep}{display_name(pair[1])}"


def strategy_key(name: str) -> str:
    """The strategy table's key for a key or a label: ``TICKET-RESET`` -> ``reset``
    (run stores written before results carried keys hold labels)."""
    return strategies.strategy(name).key


def strategy_label(key: str) -> str:
    """The paper's name of a strategy, as the book prints it: ``reset`` -> ``TICKET-RESET``."""
    return strategies.strategy(key).label


def strategy_short(key: str) -> str:
    """A strategy's label without its family (the part before the first "-"), for
    compact comparisons in text: ``reset`` -> ``RESET``, ``masks_random`` -> ``RANDOM``."""
    return strategy_label(key).split("-", 1)[-1]


def show_strategies(df: pd.DataFrame, column: str = "strategy") -> pd.DataFrame:
    """``df`` with the strategy keys of ``column`` replaced by their labels, for display."""
    return df.assign(**{column: df[column].map(strategy_label)})


def by_strategy_label(column: pd.Series) -> pd.Series:
    """Sort key (``sort_values(key=...)``): the ``strategy`` column in the order of the
    labels, the order the book lists strategies in; any other column unchanged."""
    return column.map(strategy_label) if column.name == "strategy" else column


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x: float | None, digits: int = 1) -> str:
    """``0.8123 -> '81.2%'``; NaN -> 'n/a'."""
    return "n/a" if _missing(x) else f"{100 * x:.{digits}f}%"


def pts(x: float | None, digits: int = 1) -> str:
    """Accuracy difference in percentage points with sign: ``0.031 -> '+3.1 pts'``."""
    return "n/a" if _missing(x) else f"{100 * x:+.{digits}f} pts"


def nines(sparsity: float | pd.Series) -> float | pd.Series:
    """Position on the paper-like sparsity axis: ``-log10(1 - sparsity)``.

    Equal steps of pruning (each round removes the same share of survivors) become
    equal steps on this axis, so 0%, 35%, 58%, ..., 99% and 99.9% are spread out the
    way the paper's non-uniform ticks are; it is also the number of decimals a
    sparsity label needs.
    """
    if isinstance(sparsity, pd.Series):
        return sparsity.map(nines).astype(float)
    return -math.log10(max(1.0 - float(sparsity), _MIN_DENSITY))


def sparsity_label(s: float | None) -> str:
    """Sparsity with as many decimals as it takes to tell it from 100%:
    35%, 58%, 90%, 96.5%, 99.1%, 99.98% (the same rule as the charts' axis labels)."""
    if _missing(s):
        return "n/a"
    if s <= 0:
        return "0%"
    digits = max(0, int(math.ceil(nines(s) - 1e-9)) - 1)
    text = f"{100 * s:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "%"


def duration(seconds: float, seconds_below: float = 60, at_least: int = 0) -> str:
    """``45 s``, ``6 min``, ``1.6 h``: seconds under ``seconds_below`` (shown as at
    least ``at_least``), minutes under 90, hours beyond."""
    if seconds < seconds_below:
        return f"{max(at_least, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
