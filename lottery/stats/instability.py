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
from lottery.stats.verdicts import INCONCLUSIVE, SeedTest, verdict

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


#: The paper's transition (§5.2): resetting starts to matter past 96% sparsity.
TRANSITION = 0.96
#: The strategies the hypothesis compares (the phase chapter trains these).
STRATEGIES = ("reset", "random")


def transition_rounds(prune_fraction: float, rounds: int) -> tuple[int, int] | None:
    """The last round at or below :data:`TRANSITION` sparsity and the first above it (a
    rule fixed by the paper's 96%, before any barrier is seen); None if the pruning never
    crosses it or no pruned round lies below it."""
    sparsity = {r: 1 - (1 - prune_fraction) ** r for r in range(1, rounds + 1)}
    below = [r for r, s in sparsity.items() if s <= TRANSITION]
    above = [r for r, s in sparsity.items() if s > TRANSITION]
    return (below[-1], above[0]) if below and above else None


def hypothesis_test(df: pd.DataFrame, below: int, above: int, group: str) -> SeedTest:
    """The stated hypothesis — "where RESET − RANDOM opens, RANDOM becomes unstable and
    RESET stays stable" — as one test over seeds: per seed, the barrier difference
    RANDOM − RESET at round ``above`` minus the same difference at round ``below``
    (domains averaged within the seed; a seed enters only if none of its four pairs
    collapsed). The hypothesis predicts a positive change (``kind="above"``)."""
    seeds = per_seed(df).pivot_table(index="seed", columns=["strategy", "round"], values="barrier")
    needed = [("random", above), ("reset", above), ("random", below), ("reset", below)]
    if not all(c in seeds.columns for c in needed):
        return SeedTest(group, "barrier RANDOM − RESET, change", f"round {below} → {above}", ())
    seeds = seeds[needed].dropna()
    change = ((seeds[("random", above)] - seeds[("reset", above)])
              - (seeds[("random", below)] - seeds[("reset", below)]))
    return SeedTest(group, "barrier RANDOM − RESET, change", f"round {below} → {above}",
                    tuple(float(v) for v in change), kind="above")


def hypothesis_verdict(test: SeedTest) -> str:
    """The verdict by the claims' rules (:func:`lottery.stats.verdicts.verdict`)."""
    return verdict([test.state()]) if test.n >= 2 else INCONCLUSIVE
