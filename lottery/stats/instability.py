"""Instability analysis over seeds: the error barrier per strategy and round, with a
t-interval, and the share of seeds whose network is stable to SGD noise.

Rows come from :func:`lottery.engine.instability.run_instability` (one per strategy,
domain, seed and round; ``barrier`` is an error difference in [−1, 1]). The unit of
replication is the seed (:mod:`lottery.stats.inference`): the domains of one seed are
averaged first, never counted as ``n``. A pair whose copy collapsed (one endpoint
within :data:`~lottery.stats.analysis.COLLAPSE_PTS` of chance: it answers one class) has
a path that says nothing about a shared basin (flat, barrier about 0, when both copies
collapsed; a "barrier" that measures the collapse when one did); such pairs are left
out of the barrier and the stable share, and counted (``n_collapsed``).

Rows may mix ticket strategies (TICKET-RESET, -RANDOM, -REWIND in one domain) and
transfer strategies (MASKS-RESET, -RANDOM in one task's target): every table is keyed by
(strategy, round), and the strategies' keys tell the two apart.

:func:`collapse_table` splits the pairs by how many copies collapsed: both, exactly one
(*split*: the same start and mask, and SGD noise alone decided whether training failed,
an extreme form of instability) or neither. :func:`collapse_comparison` is
**exploratory**: it was defined after the first course build showed the collapses, so it
is no test of a stated hypothesis (that one is :func:`hypothesis_test`, unchanged).
"""

from __future__ import annotations

import pandas as pd

from lottery.stats.analysis import CHANCE, COLLAPSE_PTS
from lottery.stats.inference import ALPHA, Interval, t_interval
from lottery.stats.verdicts import INCONCLUSIVE, SeedTest, verdict

#: A network is *stable* when its barrier is at most this (2 points of test error;
#: Frankle et al. 2020 use 2% as well).
STABLE_BARRIER = 0.02

KEYS = ["strategy", "round"]


def collapsed_copies(df: pd.DataFrame) -> pd.Series:
    """How many of a pair's two copies (0, 1 or 2) have a test accuracy within
    ``COLLAPSE_PTS`` of chance."""
    return df["endpoint_acc"].map(lambda accs: sum(abs(a - CHANCE) <= COLLAPSE_PTS + 1e-12 for a in accs))


def collapsed_pair(df: pd.DataFrame) -> pd.Series:
    """True where either copy's test accuracy is within ``COLLAPSE_PTS`` of chance."""
    return collapsed_copies(df) > 0


def n_collapsed(df: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, round): how many (domain, seed) pairs were left out as collapsed."""
    return (df.assign(collapsed=collapsed_pair(df)).groupby(KEYS, sort=True)["collapsed"].sum()
            .astype(int).rename("n_collapsed").reset_index())


def _with_collapsed(table: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every (strategy, round) of ``df``, its collapsed pairs counted, and
    its sparsity from all pairs where none was left to average."""
    if not len(df):
        return table
    out = table.merge(n_collapsed(df), on=KEYS, how="right")
    every = df.groupby(KEYS, sort=True)["sparsity"].mean().reset_index()
    return out.assign(sparsity=out["sparsity"].fillna(out[KEYS].merge(every, on=KEYS, how="left")["sparsity"]))


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
    return _with_collapsed(table, df)


def stable(df: pd.DataFrame, threshold: float = STABLE_BARRIER) -> pd.DataFrame:
    """Per (strategy, round): the share of seeds whose (domain-averaged) barrier is at most
    ``threshold``, and the number of seeds."""
    seeds = per_seed(df).assign(stable=lambda d: d["barrier"] <= threshold)
    out = (seeds.groupby(KEYS, sort=True)
           .agg(sparsity=("sparsity", "mean"), stable_share=("stable", "mean"), n_seeds=("seed", "nunique"))
           .reset_index())
    return _with_collapsed(out, df)


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


def collapse_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, round): sparsity, pairs ((domain, seed) rows), pairs whose two copies
    both collapsed, pairs *split* (exactly one copy collapsed), pairs with neither, and
    the number of seeds."""
    columns = KEYS + ["sparsity", "pairs", "both", "split", "neither", "n_seeds"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    n = collapsed_copies(df)
    counted = df.assign(both=n == 2, split=n == 1, neither=n == 0)
    return (counted.groupby(KEYS, sort=True)
            .agg(sparsity=("sparsity", "mean"), pairs=("seed", "size"), both=("both", "sum"),
                 split=("split", "sum"), neither=("neither", "sum"), n_seeds=("seed", "nunique"))
            .reset_index()[columns])


#: The exploratory comparisons of :func:`collapse_comparison`: (re-initialised, reset).
COMPARISONS = (("random", "reset"), ("masks_random", "masks_reset"))


def collapse_share(df: pd.DataFrame, a: str, b: str, above: float = TRANSITION,
                   level: float = 1 - ALPHA) -> Interval:
    """EXPLORATORY (defined after the first course build showed the collapses): per seed,
    the share of its pairs past ``above`` sparsity with a collapsed copy (split or both)
    for strategy ``a`` minus the same share for ``b``, paired by seed (seeds with pairs
    of both); a t-interval over the seeds (:func:`lottery.stats.inference.t_interval`)."""
    past = df[df["sparsity"] > above]
    shares = (past.assign(failed=collapsed_pair(past).astype(float))
              .groupby(["strategy", "seed"])["failed"].mean().unstack("strategy"))
    if a not in shares or b not in shares:
        return t_interval([], level)
    return t_interval((shares[a] - shares[b]).dropna().tolist(), level)


def collapse_comparison(df: pd.DataFrame, comparisons=COMPARISONS, above: float = TRANSITION) -> pd.DataFrame:
    """EXPLORATORY: :func:`collapse_share` for each (a, b) of ``comparisons`` that the
    rows hold, in points (share × 100) with its 95% interval and the paired seeds."""
    rows = []
    for a, b in comparisons:
        iv = collapse_share(df, a, b, above)
        if iv.n:
            rows.append({"a": a, "b": b, "difference_pts": 100 * iv.mean, "low_pts": 100 * iv.low,
                         "high_pts": 100 * iv.high, "n_seeds": iv.n, "text": iv.text()})
    return pd.DataFrame(rows, columns=["a", "b", "difference_pts", "low_pts", "high_pts", "n_seeds", "text"])
