"""Instability analysis over seeds: the error barrier per strategy and round, with a
t-interval, and the share of seeds whose network is stable to SGD noise.

Rows come from :func:`lottery.engine.instability.run_instability` (one per strategy,
domain, seed and round; ``barrier`` is an error difference in [−1, 1]). The unit of
replication is the seed (:mod:`lottery.stats.inference`): the domains of one seed are
averaged first, never counted as ``n``. A pair whose copy collapsed (one endpoint
within :data:`~lottery.stats.analysis.COLLAPSE_PTS` of chance: it answers one class) has
a flat path and a barrier of 0 that says nothing about stability; such pairs are left
out of the barrier and the stable share, and counted (``n_collapsed``).
"""

from __future__ import annotations

import pandas as pd

from lottery.stats.analysis import CHANCE, COLLAPSE_PTS
from lottery.stats.inference import ALPHA, t_interval

#: A network is *stable* when its barrier is at most this (2 points of test error;
#: Frankle et al. 2020 use 2% as well).
STABLE_BARRIER = 0.02

KEYS = ["strategy", "round"]


def collapsed_pair(df: pd.DataFrame) -> pd.Series:
    """True where either copy's test accuracy is within ``COLLAPSE_PTS`` of chance."""
    return df["endpoint_acc"].map(lambda accs: any(abs(a - CHANCE) <= COLLAPSE_PTS + 1e-12 for a in accs))


def n_collapsed(df: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, round): how many (domain, seed) pairs were left out as collapsed."""
    return (df.assign(collapsed=collapsed_pair(df)).groupby(KEYS, sort=True)["collapsed"].sum()
            .astype(int).rename("n_collapsed").reset_index())


def per_seed(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (strategy, round, seed): barrier and sparsity averaged over the domains
    whose pair did not collapse (a seed with none left has no row)."""
    kept = df[~collapsed_pair(df)]
    return (kept.groupby(KEYS + ["seed"], sort=True)
            .agg(barrier=("barrier", "mean"), sparsity=("sparsity", "mean"))
            .reset_index())


def barrier_table(df: pd.DataFrame, level: float = 1 - ALPHA) -> pd.DataFrame:
    """Per (strategy, round): sparsity, mean barrier over seeds in points of error
    (×100), its t-interval at ``level`` over seeds (NaN with fewer than two seeds or no
    spread), and the number of seeds."""
    rows = []
    for (strategy, r), g in per_seed(df).groupby(KEYS, sort=True):
        ci = t_interval(g["barrier"].tolist(), level)
        rows.append({"strategy": strategy, "round": r, "sparsity": g["sparsity"].mean(),
                     "barrier_pts": 100 * ci.mean, "low_pts": 100 * ci.low, "high_pts": 100 * ci.high,
                     "n_seeds": ci.n})
    table = pd.DataFrame(rows, columns=["strategy", "round", "sparsity", "barrier_pts", "low_pts",
                                        "high_pts", "n_seeds"])
    return table.merge(n_collapsed(df), on=KEYS, how="right") if len(df) else table


def stable(df: pd.DataFrame, threshold: float = STABLE_BARRIER) -> pd.DataFrame:
    """Per (strategy, round): the share of seeds whose (domain-averaged) barrier is at most
    ``threshold``, and the number of seeds."""
    seeds = per_seed(df).assign(stable=lambda d: d["barrier"] <= threshold)
    out = (seeds.groupby(KEYS, sort=True)
           .agg(sparsity=("sparsity", "mean"), stable_share=("stable", "mean"), n_seeds=("seed", "nunique"))
           .reset_index())
    return out.merge(n_collapsed(df), on=KEYS, how="right") if len(df) else out
