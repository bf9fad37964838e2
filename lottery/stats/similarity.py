"""Does domain similarity predict how well masks transfer? Spearman's rho between the
JSD of each transfer task's domains and its transfer gap, with a permutation p-value."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from lottery.experiment.labels import pair_label
from lottery.stats import inference as inf
from lottery.stats.claims import transfer_frame


def transfer_vs_divergence(tickets: pd.DataFrame, transfer: pd.DataFrame, jsd: pd.DataFrame,
                           pairs: Sequence[tuple[str, str]]) -> tuple[pd.DataFrame, inf.RankCorrelation]:
    """Does similarity predict transfer? Per pair the JSD and the transfer gap
    (MASKS-RESET − TICKET-TARGET, all pruned rounds, mean over seeds), and Spearman's ρ
    between them with a permutation p-value (negative ρ: closer domains transfer better)."""
    both = transfer_frame(tickets[tickets["procedure"] == "tickets"], transfer, pairs)
    per = inf.seed_contrast(both, "masks_reset", "target", group="pair")
    rows = []
    for s, t in pairs:
        label = pair_label(s, t)
        v = jsd[(jsd["domain_a"] == s) & (jsd["domain_b"] == t)]["jsd_x1e5"]
        g = per[per["pair"] == label]["diff"]
        if len(v) and len(g):
            iv = inf.t_interval(g)
            rows.append({"pair": label, "JSD ×1e5": round(float(v.iloc[0]), 1),
                         "gap (pts)": round(100 * iv.mean, 1), "95% interval": iv.text()})
    table = pd.DataFrame(rows, columns=["pair", "JSD ×1e5", "gap (pts)", "95% interval"])
    corr = inf.rank_correlation(table["JSD ×1e5"], table["gap (pts)"])
    return table.set_index("pair"), corr


def correlation_answer(corr: inf.RankCorrelation, alpha: float = inf.ALPHA) -> str:
    """The sentence the transfer chapter prints about :func:`transfer_vs_divergence`."""
    if corr.n < 3:
        return "too few tasks to test"
    if corr.p_value < alpha:
        side = "more similar domains transfer better" if corr.rho < 0 else \
            "more *dissimilar* domains transfer better"
        return f"a significant rank correlation at the 5% level: {side}"
    return "no significant rank correlation at the 5% level: similarity does not predict the transfer gap here"
