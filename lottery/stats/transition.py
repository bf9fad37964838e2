"""The phase transition as a claim (claims 5 and 8): past 96%, one strategy falls behind
the other — the gap above 96% is larger than at or below it — and is less stable,
with the seed as the unit of every test."""

from __future__ import annotations

import pandas as pd

from lottery.experiment.labels import strategy_short
from lottery.stats import inference as inf
from lottery.stats import power
from lottery.stats import verdicts as v
from lottery.stats.analysis import EXTREME
from lottery.stats.record import Claim, make_claim, untested
from lottery.stats.verdicts import SeedTest


def transition(df: pd.DataFrame, a: str, b: str, group: str, name: str, paper: str) -> Claim:
    """Claims 5 and 8: past 96%, ``b`` falls behind ``a`` (the gap above 96% larger than
    at or below it) and is less stable (exact sign-flip tests over seeds)."""
    change = inf.gap_change(df, a, b, group)
    if change.empty:
        return untested(name, paper, "needs rounds on both sides of 96% and both strategies")
    family = 3  # the gap test and the two stability tests
    per_seed = change.groupby("seed")
    gap = SeedTest("all", f"({strategy_short(a)} − {strategy_short(b)}) above minus at/below 96%", "both",
               v.per_seed(per_seed["diff"].mean()), "above", family)
    above = SeedTest("all", f"{strategy_short(a)} − {strategy_short(b)}", EXTREME.name,
                 v.per_seed(per_seed["diff_high"].mean()), "above", family)
    clean = inf.gap_change(df, a, b, group, drop_collapsed=True)
    clean_test = SeedTest("all", "gap change without collapsed cells", "both",
                      v.per_seed(clean.groupby("seed")["diff"].mean()), "above", family)
    stab = inf.stability_test(df, a, b, group, EXTREME)
    alpha = inf.ALPHA / family
    short_a, short_b = strategy_short(a), strategy_short(b)
    measured = (f"{short_a} − {short_b}: {100 * above.interval().mean:+.1f} pts above 96%, gap "
                f"{100 * gap.interval().mean:+.1f} pts larger than at ≤ 96% "
                f"({100 * clean_test.interval().mean:+.1f} without collapsed cells); "
                + (stab.text(short_a, short_b) if stab else "no stability data"))
    return make_claim(name, paper, measured, [gap], (
        f"gap change: paired t over seeds ({group}s averaged per seed); stability: exact "
        f"sign-flip tests over seeds (collapses: one class for ≥ 95% of test reviews; spread of "
        f"the others), one-sided; Bonferroni over {family}"),
        extra_states=[v.stability_state(stab, alpha)],
        extra_seeds=power.sign_flip_seeds(alpha), descriptive=[above, clean_test])
