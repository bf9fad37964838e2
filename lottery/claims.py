"""The paper's claims next to this build's measurements, each with a computed verdict.

The last chapter prints :func:`claims`; its verdicts are rules over the analyses of
:mod:`lottery.analysis` (not words typed by hand), so a different profile or more
seeds can change them. The tolerances below are printed in the book.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lottery.analysis import (EXTREME, MODERATE, TRANSITION, paired_differences, spread,
                              target_frame)
from lottery.chapters import ChapterSettings
from lottery.labels import display_name, pair_label, pair_name, pts, sparsity_label
from lottery.report import jsd_extremes

SIMILAR_PTS = 0.01  # |difference| below 1 point counts as "similar"
#: MASKS-RESET "loses little" when its mean gap to TICKET-TARGET is above −5 points.
SMALL_LOSS_PTS = 0.05

_FIG3_BEAT = "TICKET-RESET beats FULL-MODEL at 0–90% sparsity (Fig. 3)"
_FIG4_EXTREME = "MASKS-RESET beats MASKS-RANDOM at extreme sparsity (Fig. 4)"


def _share_verdict(share: float) -> str:
    return "reproduced" if share >= 0.5 else "partly reproduced" if share > 0 else "not reproduced"


def _two_part_verdict(first: bool, second: bool) -> str:
    return ("reproduced" if first and second else "partly reproduced" if first or second
            else "not reproduced")


def claims(tickets_df: pd.DataFrame, transfer_df: pd.DataFrame | None,
           jsd: pd.DataFrame | None, settings: ChapterSettings) -> pd.DataFrame:
    """Each claim of the paper, what we measured, and a verdict computed from it."""
    max_s = float(tickets_df["sparsity"].max())
    rows: list[dict[str, str]] = []

    def add(claim: str, paper: str, measured: str, verdict: str) -> None:
        rows.append({"claim": claim, "paper": paper, "this book": measured, "verdict": verdict})

    untested = f"not tested (profile reaches {sparsity_label(max_s)})"

    # 1. JSD extremes (Fig. 1)
    if jsd is not None and jsd["domain_a"].nunique() > 1:
        ex = jsd_extremes(jsd)
        paper_lo = {"electronics", "kitchen_housewares"}
        paper_hi = {"music", "kitchen_housewares"}
        have = set(jsd["domain_a"])
        got_lo, got_hi = set(ex["most_similar"]), set(ex["least_similar"])
        measured = (f"most similar {pair_name(ex['most_similar'])} "
                    f"({ex['most_similar_jsd_x1e5']:.1f}), least similar "
                    f"{pair_name(ex['least_similar'])} ({ex['least_similar_jsd_x1e5']:.1f})")
        if not (paper_lo <= have and paper_hi <= have):
            verdict = "not tested (needs Electronics, CDs and Home)"
        else:
            verdict = _two_part_verdict(got_lo == paper_lo, got_hi == paper_hi)
        add("Domain similarity (Fig. 1)", "Electronics–Home most similar, CDs–Home least",
            measured, verdict)

    df = tickets_df[tickets_df["procedure"] == "tickets"]
    # 2. tickets beat the full model at moderate sparsity
    full = df[(df["strategy"] == "TICKET-RESET") & (df["round"] == 0)][["domain", "seed", "test_acc"]]
    reset = df[(df["strategy"] == "TICKET-RESET") & (df["round"] > 0)
               & MODERATE.contains(df["sparsity"])]
    if len(reset):
        m = reset.merge(full, on=["domain", "seed"], suffixes=("", "_full"))
        gain = (m["test_acc"] - m["test_acc_full"]).groupby(m["domain"]).mean()
        better = [display_name(d) for d, v in gain.items() if v > 0]
        measured = ", ".join(f"{display_name(d)} {pts(v)}" for d, v in gain.items())
        add(_FIG3_BEAT, "better in Books, Electronics, Home",
            f"mean gain over FULL-MODEL at ≤ 90%: {measured}",
            _share_verdict(len(better) / len(gain)))
    else:
        add(_FIG3_BEAT, "better in Books, Electronics, Home", "no pruned rounds", untested)

    # 3. RESET ≈ RANDOM until ~96% ; 4. RESET > RANDOM beyond, with less variance
    diffs = paired_differences(df, "TICKET-RESET", "TICKET-RANDOM")
    low = diffs[(diffs["round"] > 0) & (diffs["sparsity"] <= TRANSITION.hi)]
    if len(low):
        gap = float(low["mean_diff"].abs().mean())
        add("TICKET-RESET ≈ TICKET-RANDOM below 96% (Fig. 3)", "similar test accuracy",
            f"mean |RESET − RANDOM| = {100 * gap:.1f} pts",
            "reproduced" if gap < SIMILAR_PTS else "not reproduced")
    high = diffs[EXTREME.contains(diffs["sparsity"])]
    if len(high):
        d = float(high["mean_diff"].mean())
        sp = spread(df, "domain", ["TICKET-RESET", "TICKET-RANDOM"])
        sp = sp[EXTREME.contains(sp["sparsity"])].groupby("strategy")["std"].mean()
        measured = (f"RESET − RANDOM = {pts(d)}; std RESET {100 * sp.get('TICKET-RESET', np.nan):.1f}"
                    f" vs RANDOM {100 * sp.get('TICKET-RANDOM', np.nan):.1f} pts")
        verdict = _two_part_verdict(
            d > 0, sp.get("TICKET-RESET", 0) < sp.get("TICKET-RANDOM", 0))
    else:
        measured, verdict = "no rounds above 96%", untested
    add("Phase transition above 96%: RESET better and steadier than RANDOM (Fig. 3)",
        "RANDOM unstable, drops faster", measured, verdict)

    # 5./6. transfer
    if transfer_df is not None and len(transfer_df):
        for row in _transfer_claims(df, transfer_df, settings.pairs, untested):
            add(*row)
    return pd.DataFrame(rows).set_index("claim")


def _transfer_claims(df: pd.DataFrame, transfer_df: pd.DataFrame,
                     pairs: tuple[tuple[str, str], ...], untested: str) -> list[tuple[str, ...]]:
    """Claims 5 and 6 (Fig. 4): transferred masks vs TICKET-TARGET and vs MASKS-RANDOM."""
    moved = [transfer_df[(transfer_df["source"] == s) & (transfer_df["target"] == t)]
             .assign(pair=pair_label(s, t)) for s, t in pairs]
    both = pd.concat([target_frame(df, pairs), *moved], ignore_index=True)
    if not len(both):
        return []
    out = []
    d = paired_differences(both, "MASKS-RESET", "TICKET-TARGET", group="pair")
    moderate = d[(d["round"] > 0) & MODERATE.contains(d["sparsity"])]
    if len(moderate):
        drop = moderate.groupby("pair")["mean_diff"].mean()
        out.append(("Transferred masks lose little up to 90% (Fig. 4)",
                    "3–5 pts drop (Books, Electronics sources)",
                    "MASKS-RESET − TICKET-TARGET at ≤ 90%: "
                    + ", ".join(f"{p} {pts(v)}" for p, v in drop.items()),
                    "reproduced" if float(drop.min()) > -SMALL_LOSS_PTS else "not reproduced"))
    r = paired_differences(both, "MASKS-RESET", "MASKS-RANDOM", group="pair")
    high = r[EXTREME.contains(r["sparsity"])]
    paper = "initial values matter deep in sparsification"
    if len(high):
        v = float(high["mean_diff"].mean())
        out.append((_FIG4_EXTREME, paper, f"MASKS-RESET − MASKS-RANDOM above 96%: {pts(v)}",
                    "reproduced" if v > 0 else "not reproduced"))
    else:
        out.append((_FIG4_EXTREME, paper, "no rounds above 96%", untested))
    return out


def verdict_counts(verdicts: pd.DataFrame) -> dict[str, int]:
    """How many claims got each kind of verdict (for the prose)."""
    v = verdicts["verdict"]
    return {"n_claims": len(v),
            "n_reproduced": int((v == "reproduced").sum()),
            "n_partly": int((v == "partly reproduced").sum()),
            "n_not_reproduced": int((v == "not reproduced").sum()),
            "n_untested": int(v.str.startswith("not tested").sum())}
