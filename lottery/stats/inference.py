"""The statistics behind every verdict: paired contrasts over seeds, corrected intervals,
exact sign-flip tests over seeds, collapsed networks, spread and rank-correlation tests.

The unit of replication is the **seed**. Within one (domain, seed) every strategy sees
the same data order and dropout noise (common random numbers, :mod:`lottery.engine.jobs`),
so two strategies are compared *paired by seed*. A statement about a sparsity range
becomes one number per (group, seed) — the mean over that range's rounds of
``acc(a) − acc(b)`` — and a t-interval over the seeds (:func:`t_interval`). Rounds of
one seed are not independent replicates, so they are averaged, never counted as ``n``.

When a claim is tested in m groups (domains, transfer pairs, parts of a claim) every
interval is a Bonferroni interval at level ``1 − α/m``, so the chance that *any* of the
claim's intervals misses its true value is at most α (5%).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

# CHANCE, COLLAPSE_PTS and collapsed live in analysis (its tables count collapses too);
# they are re-exported here for the chapters.
from lottery.stats.analysis import SparsityRange, collapsed, EXTREME, full_model_rows

ALPHA = 0.05

PRUNED = SparsityRange("all pruned", 0.0, 1.0)
BELOW_TRANSITION = SparsityRange("≤ 96%", 0.0, 0.96)


@dataclass(frozen=True)
class Interval:
    """Mean over seeds with a two-sided t-interval at ``level`` and the t-test p-value."""

    mean: float
    low: float
    high: float
    n: int
    level: float
    p_value: float
    sd: float = float("nan")   # standard deviation of the per-seed values

    @property
    def above_zero(self) -> bool:
        return self.low > 0

    @property
    def below_zero(self) -> bool:
        return self.high < 0

    def text(self) -> str:
        """``+3.1 pts [+1.0, +5.2]`` (points; the interval at ``level``)."""
        if math.isnan(self.mean):
            return "n/a"
        if math.isnan(self.low):
            why = f"n = {self.n}" if self.n < 2 else "no spread between seeds"
            return f"{100 * self.mean:+.1f} pts (no interval: {why})"
        return f"{100 * self.mean:+.1f} pts [{100 * self.low:+.1f}, {100 * self.high:+.1f}]"


def level_for(family: int, alpha: float = ALPHA) -> float:
    """Bonferroni: each of ``family`` intervals at ``1 − α/family``."""
    return 1.0 - alpha / max(family, 1)


def t_interval(values: Sequence[float], level: float = 1 - ALPHA) -> Interval:
    """Mean of ``values`` (one per seed) with a t-interval (scipy) and the two-sided p-value
    of "mean = 0". Fewer than two values or no spread at all give NaN bounds/p."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    nan = float("nan")
    if n == 0:
        return Interval(nan, nan, nan, 0, level, nan)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, nan, nan, n, level, nan)
    if float(np.ptp(x)) < 1e-12:
        # identical differences (typically: networks stuck at the same accuracy, e.g. both
        # collapsed) say nothing about the spread between seeds: no interval
        return Interval(mean, nan, nan, n, level, nan, 0.0)
    with warnings.catch_warnings():   # nearly equal values: scipy warns, the numbers stand
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_1samp(x, 0.0)
        ci = res.confidence_interval(confidence_level=level)
    return Interval(mean, float(ci.low), float(ci.high), n, level, float(res.pvalue),
                    float(x.std(ddof=1)))


def sign_flip_p(values: Sequence[float], alternative: str = "greater") -> float:
    """Exact p-value of "the per-seed values are symmetric around 0" against
    ``alternative`` (``greater``: they lean positive), over all 2^n sign flips of the
    mean (scipy's one-sample permutation test; exact up to n = 20). The seed is the unit:
    with n seeds the smallest possible p is 2^-n (1/32 for five seeds)."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0 or not np.any(x):
        return float("nan") if len(x) == 0 else 1.0
    if len(x) == 1:   # two sign flips; scipy needs two values
        lean = x[0] > 0 if alternative == "greater" else x[0] < 0
        return 0.5 if lean or alternative == "two-sided" else 1.0
    res = stats.permutation_test((x,), np.mean, permutation_type="samples", alternative=alternative,
                                 n_resamples=np.inf if len(x) <= 20 else 99_999, random_state=0)
    return float(res.pvalue)


# ---------------------------------------------------------------------------- contrasts
def with_full_model(tickets: pd.DataFrame) -> pd.DataFrame:
    """Add FULL-MODEL rows (key ``full``): round 0 of TICKET-RESET repeated at every
    pruned round of TICKET-RESET (same domain and seed), so "ticket − full model" pairs
    by round (:func:`lottery.stats.analysis.full_model_rows`)."""
    t = tickets[tickets["procedure"] == "tickets"] if "procedure" in tickets else tickets
    reset = t[t["strategy"] == "reset"]
    pruned = reset[reset["round"] > 0].drop(columns=["test_acc"])
    rows = full_model_rows(reset, pruned, on=["domain", "seed"])
    return pd.concat([tickets, rows], ignore_index=True)


def seed_contrast(df: pd.DataFrame, a: str, b: str, group: str = "domain",
                  within: SparsityRange = PRUNED, drop_collapsed: bool = False) -> pd.DataFrame:
    """Per (group, seed): mean over the pruned rounds in ``within`` of acc(a) − acc(b)
    (strategy keys), paired by (group, seed, round). ``drop_collapsed``: leave out the
    (group, seed, round) cells where either network collapsed. Columns ``group, seed,
    diff, rounds``."""
    keys = [group, "seed", "round"]
    d = df[df["round"] > 0].assign(_collapsed=lambda x: collapsed(x))
    left = d[d["strategy"] == a][keys + ["test_acc", "sparsity", "_collapsed"]]
    right = d[d["strategy"] == b][keys + ["test_acc", "_collapsed"]]
    m = left.merge(right, on=keys, suffixes=("_a", "_b"))
    m = m[within.contains(m["sparsity"])]
    if drop_collapsed:
        m = m[~(m["_collapsed_a"] | m["_collapsed_b"])]
    m["diff"] = m["test_acc_a"] - m["test_acc_b"]
    out = m.groupby([group, "seed"], sort=False).agg(diff=("diff", "mean"), rounds=("round", "nunique"))
    return out.reset_index()


def pooled(per_seed: pd.DataFrame, group: str = "domain") -> pd.Series:
    """Per seed: the mean over groups, for the seeds present in every group."""
    wide = per_seed.pivot_table(index="seed", columns=group, values="diff")
    return wide.dropna().mean(axis=1)


def gap_change(df: pd.DataFrame, a: str, b: str, group: str = "domain",
               low: SparsityRange = BELOW_TRANSITION,
               high: SparsityRange | None = None, drop_collapsed: bool = False) -> pd.DataFrame:
    """The phase transition as a number per (group, seed): (a − b above 96%) minus
    (a − b at or below 96%). Positive: the gap opens up past the transition.
    ``drop_collapsed``: without the cells where either network collapsed."""
    hi = seed_contrast(df, a, b, group, high or EXTREME, drop_collapsed)
    lo = seed_contrast(df, a, b, group, low, drop_collapsed)
    m = hi.merge(lo, on=[group, "seed"], suffixes=("_high", "_low"))
    return m.assign(diff=m["diff_high"] - m["diff_low"])[[group, "seed", "diff", "diff_high", "diff_low"]]


# ---------------------------------------------------------------------------- collapses
def collapse_table(df: pd.DataFrame, by: Sequence[str] = ("strategy",)) -> pd.DataFrame:
    """Collapsed networks / trained networks per ``by`` (pruned rounds and round 0)."""
    c = df.assign(collapsed=collapsed(df))
    out = c.groupby(list(by), sort=False)["collapsed"].agg(collapsed="sum", networks="count")
    out["share"] = out["collapsed"] / out["networks"]
    return out.reset_index()


@dataclass(frozen=True)
class StabilityTest:
    """Is one strategy less stable than the other? The **seed** is the unit: collapses
    cluster within a seed across rounds and domains, so networks are not independent.

    Two one-sided exact sign-flip tests (:func:`sign_flip_p`) each way, over seeds:

    * collapses: per seed, collapsed networks of b minus those of a (all groups and
      rounds of the range);
    * spread (Brown–Forsythe with the seed as unit): among networks that did not
      collapse, the absolute deviation from their (group, round, strategy) median over
      seeds, averaged per seed and strategy; per seed, b's minus a's.
    """

    collapsed_a: int
    collapsed_b: int
    networks_a: int
    networks_b: int
    excess: tuple[int, ...]   # per seed: collapses of b − collapses of a
    mad_a: float  # mean absolute deviation from the median, non-collapsed networks
    mad_b: float
    p_more_collapses_b: float
    p_more_collapses_a: float
    p_more_spread_b: float
    p_more_spread_a: float

    @property
    def seeds(self) -> int:
        return len(self.excess)

    def less_stable(self, which: str, alpha: float) -> bool:
        """``which`` ("a" or "b") collapses more often or spreads more, at ``alpha`` each."""
        p = ((self.p_more_collapses_b, self.p_more_spread_b) if which == "b"
             else (self.p_more_collapses_a, self.p_more_spread_a))
        return any(x < alpha for x in p if not math.isnan(x))

    def text(self, a: str, b: str) -> str:
        p_coll = min(self.p_more_collapses_b, self.p_more_collapses_a)
        p_spread = min(self.p_more_spread_b, self.p_more_spread_a)
        return (f"collapsed {self.collapsed_a}/{self.networks_a} {a} vs {self.collapsed_b}/"
                f"{self.networks_b} {b}, per-seed excess of {b} {list(self.excess)} "
                f"(exact sign-flip p = {p_coll:.3f}); spread of the others "
                f"{100 * self.mad_a:.1f} vs {100 * self.mad_b:.1f} pts (per-seed sign-flip "
                f"p = {p_spread:.3f})")


def _per_seed_spread(kept: pd.DataFrame, group: str) -> pd.DataFrame:
    """Mean absolute deviation from the (group, round, strategy) median, per seed and
    strategy (columns: strategies; index: seed)."""
    dev = (kept["test_acc"] - kept.groupby([group, "round", "strategy"])["test_acc"]
           .transform("median")).abs()
    return kept.assign(dev=dev).pivot_table(index="seed", columns="strategy", values="dev", aggfunc="mean")


def stability_test(df: pd.DataFrame, a: str, b: str, group: str,
                   within: SparsityRange) -> StabilityTest | None:
    """:class:`StabilityTest` over the pruned rounds in ``within``; None if a strategy is absent."""
    d = df[df["strategy"].isin([a, b]) & within.contains(df["sparsity"]) & (df["round"] > 0)]
    if not ((d["strategy"] == a).any() and (d["strategy"] == b).any()):
        return None
    d = d.assign(collapsed=collapsed(d))
    counts = d.pivot_table(index="seed", columns="strategy", values="collapsed", aggfunc="sum")
    counts = counts.reindex(columns=[a, b]).dropna()
    excess = (counts[b] - counts[a]).astype(int)
    spread = _per_seed_spread(d[~d["collapsed"]], group).reindex(columns=[a, b])
    paired = spread.dropna()
    d_spread = paired[b] - paired[a]
    nan = float("nan")
    return StabilityTest(
        int(d[d["strategy"] == a]["collapsed"].sum()), int(d[d["strategy"] == b]["collapsed"].sum()),
        int((d["strategy"] == a).sum()), int((d["strategy"] == b).sum()), tuple(int(x) for x in excess),
        float(spread[a].mean()) if spread[a].notna().any() else nan,
        float(spread[b].mean()) if spread[b].notna().any() else nan,
        sign_flip_p(excess, "greater"), sign_flip_p(excess, "less"),
        sign_flip_p(d_spread, "greater") if len(d_spread) else nan,
        sign_flip_p(d_spread, "less") if len(d_spread) else nan)


# ---------------------------------------------------------------------------- correlation
@dataclass(frozen=True)
class RankCorrelation:
    rho: float
    p_value: float  # two-sided permutation p-value
    n: int
    resamples: int  # permutations used; n! when exact
    exact: bool = False

    def significant(self, alpha: float = ALPHA) -> bool:
        return not math.isnan(self.p_value) and self.p_value < alpha


#: Up to this many points the permutation p-value is exact (all n! orderings: 362,880).
EXACT_UP_TO = 9


def rank_correlation(x: Sequence[float], y: Sequence[float], resamples: int = 9999,
                     seed: int = 0) -> RankCorrelation:
    """Spearman's ρ between ``x`` and ``y`` (unrounded values) with a two-sided
    permutation p-value: exact over all n! pairings for n ≤ :data:`EXACT_UP_TO`,
    else ``resamples`` seeded random pairings (scipy)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        return RankCorrelation(float("nan"), float("nan"), len(x), 0)

    rx, ry = stats.rankdata(x), stats.rankdata(y)

    def rho(a: np.ndarray, axis: int = -1) -> np.ndarray:  # Pearson of ranks, vectorised
        a = a - a.mean(axis=axis, keepdims=True)
        b = ry - ry.mean()
        return (a * b).sum(axis=axis) / np.sqrt((a * a).sum(axis=axis) * (b * b).sum())

    exact = len(x) <= EXACT_UP_TO
    res = stats.permutation_test((rx,), rho, permutation_type="pairings",
                                 n_resamples=np.inf if exact else resamples,
                                 alternative="two-sided", random_state=seed, vectorized=True)
    used = math.factorial(len(x)) if exact else resamples
    return RankCorrelation(float(res.statistic), float(res.pvalue), len(x), used, exact)
