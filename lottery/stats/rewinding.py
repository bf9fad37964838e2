"""Beyond the paper: does rewinding (late resetting) fix what resetting to θ0 lacks?

Frankle et al. (2019, "Stabilizing the lottery ticket hypothesis") found that at high
sparsity, resetting survivors to their values after k iterations (θ_k) instead of θ0
keeps tickets trainable where resetting to θ0 fails. Here the two questions, with the
statistics of the paper's claims (:mod:`lottery.stats.inference`: one number per seed, paired
by seed, t-intervals over seeds, Bonferroni within the family):

1. past 96% sparsity, is TICKET-REWIND better than TICKET-RESET, and does it narrow the
   gap to FULL-MODEL (REWIND − FULL vs RESET − FULL)?
2. does it collapse less (an exact sign-flip test over seeds on the collapses per seed)?

:func:`sweep_table` compares several k on one domain (how the default was chosen).
"""

from __future__ import annotations

import pandas as pd

from lottery.experiment.labels import strategy_label
from lottery.stats import inference
from lottery.stats.analysis import collapsed, EXTREME

#: The strategies compared (keys of the strategy table).
REWIND, RESET, FULL = "rewind", "reset", "full"


def _per_seed(df: pd.DataFrame, a: str, b: str) -> pd.Series:
    """Per seed: the mean over domains of (a − b) averaged over the rounds past 96%."""
    return inference.pooled(inference.seed_contrast(df, a, b, "domain", EXTREME))


def rewind_statistics(tickets: pd.DataFrame, alpha: float = inference.ALPHA) -> dict:
    """The two questions on ``tickets`` (results with TICKET-REWIND and TICKET-RESET in
    the same domains and seeds); None if TICKET-REWIND is absent."""
    t = tickets[tickets["domain"].isin(tickets[tickets["strategy"] == REWIND]["domain"])]
    if not (t["strategy"] == REWIND).any():
        return {}
    t = inference.with_full_model(t)
    level = inference.level_for(3, alpha)
    vs_reset = inference.t_interval(_per_seed(t, REWIND, RESET), level)
    rewind_gap = inference.t_interval(_per_seed(t, REWIND, FULL), level)
    reset_gap = inference.t_interval(_per_seed(t, RESET, FULL), level)
    stability = inference.stability_test(t[t["procedure"] == "tickets"] if "procedure" in t else t,
                                         RESET, REWIND, "domain", EXTREME)
    return {"domains": sorted(set(t[t["strategy"] == REWIND]["domain"])),
            "seeds": int(t["seed"].nunique()), "level": level,
            "rewind_minus_reset": vs_reset, "rewind_minus_full": rewind_gap,
            "reset_minus_full": reset_gap, "stability": stability}


def verdict(stats: dict) -> str:
    """One sentence from the intervals (no interval on a side: "no evidence")."""
    if not stats:
        return f"not tested (no {strategy_label(REWIND)} runs in this build)"
    d = stats["rewind_minus_reset"]
    if d.n == 0:
        return "not tested: no round of this build passes 96% sparsity"
    s = stats["stability"]
    fewer = s is not None and s.p_more_collapses_a < inference.ALPHA
    better = ("better than" if d.above_zero else "worse than" if d.below_zero
              else "not distinguishable from")
    rewind, reset = strategy_label(REWIND), strategy_label(RESET)
    return (f"past 96% {rewind} is {better} {reset} ({d.text()}); it "
            f"{'collapses significantly less often' if fewer else 'does not collapse significantly less often'}"
            f"{'' if s is None else f' (at chance: {rewind} {s.collapsed_b}/{s.networks_b}, {reset} {s.collapsed_a}/{s.networks_a})'}")


def _accuracy_column(above: bool) -> str:
    """A column of :func:`sweep_table`: TICKET-REWIND's mean test accuracy past 96%
    (``above``) or at or below."""
    return f"{strategy_label(REWIND)} {'>' if above else '≤'} 96% (%)"


def sweep_table(frames: dict[int, pd.DataFrame], reference: pd.DataFrame) -> pd.DataFrame:
    """One row per k: TICKET-REWIND's mean test accuracy past 96% and at or below, the
    paired REWIND − RESET past 96% (95% t-interval over seeds), and collapses.
    ``frames[k]`` holds the TICKET-REWIND runs with k; ``reference`` the TICKET-RESET
    and FULL-MODEL runs of the same domain and seeds."""
    rows = []
    for k, df in sorted(frames.items()):
        both = pd.concat([reference[reference["strategy"] == RESET], df[df["strategy"] == REWIND]],
                         ignore_index=True)
        d = inference.t_interval(_per_seed(both, REWIND, RESET))
        r = df[(df["strategy"] == REWIND) & (df["round"] > 0)]
        high = EXTREME.contains(r["sparsity"])
        rows.append({"k (iterations)": k,
                     _accuracy_column(above=False): round(100 * r[~high]["test_acc"].mean(), 1),
                     _accuracy_column(above=True): round(100 * r[high]["test_acc"].mean(), 1),
                     "REWIND − RESET > 96%": d.text(),
                     "at chance": f"{int(collapsed(r).sum())}/{len(r)}"})
    return pd.DataFrame(rows).set_index("k (iterations)")


def choose_k(table: pd.DataFrame, within_pts: float = 1.0) -> int:
    """The smallest k whose accuracy past 96% is within ``within_pts`` of the best k's."""
    high = table[_accuracy_column(above=True)]
    ok = table[high >= high.max() - within_pts]
    return int(ok.index.min())


def iterations_per_epoch(n_train: int, batch_size: int) -> int:
    return -(-n_train // batch_size)


def share_of_round0(k: int, n_train: int, batch_size: int, epochs: int) -> float:
    return k / (iterations_per_epoch(n_train, batch_size) * epochs)

