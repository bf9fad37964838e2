"""Does domain similarity predict how well masks transfer? Spearman's rho between the
JSD of each transfer task's domains and its transfer gap, with an exact permutation
p-value (all n! pairings up to nine tasks), computed on the unrounded values."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from lottery.experiment.labels import pair_label
from lottery.stats import inference as inf
from lottery.stats.transfer_claims import transfer_frame


def transfer_vs_divergence(tickets: pd.DataFrame, transfer: pd.DataFrame, jsd: pd.DataFrame,
                           pairs: Sequence[tuple[str, str]]) -> tuple[pd.DataFrame, inf.RankCorrelation]:
    """Does similarity predict transfer? Per pair the JSD and the transfer gap
    (MASKS-RESET − TICKET-TARGET, all pruned rounds, mean over seeds), and Spearman's ρ
    between them with a permutation p-value (negative ρ: closer domains transfer better)."""
    both = transfer_frame(tickets[tickets["procedure"] == "tickets"], transfer, pairs)
    per = inf.seed_contrast(both, "masks_reset", "target", group="pair")
    rows, raw = [], []
    for s, t in pairs:
        label = pair_label(s, t)
        v = jsd[(jsd["domain_a"] == s) & (jsd["domain_b"] == t)]["jsd_x1e5"]
        g = per[per["pair"] == label]["diff"]
        if len(v) and len(g):
            iv = inf.t_interval(g)
            raw.append((float(v.iloc[0]), iv.mean))
            rows.append({"pair": label, "JSD ×1e5": round(float(v.iloc[0]), 1),
                         "gap (pts)": round(100 * iv.mean, 1), "95% interval": iv.text()})
    table = pd.DataFrame(rows, columns=["pair", "JSD ×1e5", "gap (pts)", "95% interval"])
    corr = inf.rank_correlation([j for j, _ in raw], [g for _, g in raw])   # unrounded
    return table.set_index("pair"), corr


def correlation_answer(corr: inf.RankCorrelation, alpha: float = inf.ALPHA) -> str:
    """The sentence the transfer chapter prints about :func:`transfer_vs_divergence`."""
    if corr.n < 3:
        return "too few tasks to test"
    how = "exact" if corr.exact else f"{corr.resamples:,} random"
    if corr.significant(alpha):
        side = "more similar domains transfer better" if corr.rho < 0 else \
            "more *dissimilar* domains transfer better"
        return (f"a rank correlation significant at the 5% level ({how} permutation p = "
                f"{corr.p_value:.3f}, {corr.n} tasks): {side}")
    return (f"no evidence at the 5% level that similarity predicts the transfer gap ({how} "
            f"permutation p = {corr.p_value:.3f}, {corr.n} tasks); this is not evidence that it "
            f"does not: {corr.n} tasks detect only a strong correlation")
