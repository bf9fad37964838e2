"""The paper's statements (§5), each tested on this build's results, with a verdict, the
power behind it and whether it survives a perturbation of the seeds.

Every claim is a set of tests over seeds (:mod:`lottery.stats.verdicts`): a paired
difference per seed, averaged over the rounds of the sparsity range the paper names,
with a t-interval; the verdict follows from the tests by fixed rules (intersection-union
for "in every domain", TOST for "similar" and for the 3–5 point band, exact sign-flip
tests over seeds for stability), never typed by hand. Claims 1–8 are the eight findings
the book has always tested; 9–12 are the further statements of §5.2/§5.3, tested where
the profile allows and listed as *not tested* (with the reason) where it does not.

The transfer claims (6–10) live in :mod:`lottery.stats.transfer_claims`; robustness (a
verdict recomputed without each seed and over bootstrap resamples of the seeds) in
:mod:`lottery.stats.robustness`. ``lottery claims --profile P --json`` prints the table
with ``verdict``, ``mde``, ``seeds_needed`` and ``robust`` for scripts.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from lottery.experiment.labels import display_name, pair_name, strategy_label, strategy_short
from lottery.experiment.selection import ChapterSettings
from lottery.stats import inference as inf
from lottery.stats import robustness
from lottery.stats import verdicts as v
from lottery.stats.analysis import EXTREME, MODERATE, SparsityRange
from lottery.stats.divergence import jsd_extremes
from lottery.stats.record import Claim, make_claim, untested
from lottery.stats.transfer_claims import transfer_claims
from lottery.stats.transition import transition
from lottery.stats.verdicts import SeedTest

REPRODUCED, PARTLY, NOT, INCONCLUSIVE = v.REPRODUCED, v.PARTLY, v.NOT, v.INCONCLUSIVE
VERDICTS = v.VERDICTS
#: The domains the paper names in its claims (FDU-MTL names).
FIG3_DOMAINS = ("books", "electronics", "kitchen_housewares")
CDS = "music"
ABOVE_999 = SparsityRange("> 99.9%", 0.999, 1.0)

__all__ = ["Claim", "claim_list", "table", "details", "verdict_counts", "key_statistics"]


def _values(per: pd.DataFrame) -> tuple[float, ...]:
    return v.per_seed(per.sort_values("seed")["diff"])


# ---------------------------------------------------------------------------- the claims
def claim_similarity(jsd: pd.DataFrame | None) -> Claim:
    name, paper = "1. Domain similarity (Fig. 1)", "Electronics–Home most similar, CDs–Home least"
    if jsd is None or jsd["domain_a"].nunique() < 3:
        return untested(name, paper, "needs three or more domains")
    have = set(jsd["domain_a"])
    lo, hi = {"electronics", "kitchen_housewares"}, {"music", "kitchen_housewares"}
    if not (lo | hi) <= have:
        return untested(name, paper, "needs Electronics, CDs and Home")
    ex = jsd_extremes(jsd)
    pairs = jsd[jsd["domain_a"] < jsd["domain_b"]].sort_values("jsd")
    rank = {frozenset((a, b)): i + 1 for i, (a, b) in enumerate(zip(pairs["domain_a"], pairs["domain_b"]))}
    measured = (f"most similar {pair_name(ex['most_similar'])} ({ex['most_similar_jsd_x1e5']:.1f}), "
                f"least {pair_name(ex['least_similar'])} ({ex['least_similar_jsd_x1e5']:.1f}); "
                f"Electronics–Home ranks {rank[frozenset(lo)]} and CDs–Home "
                f"{rank[frozenset(hi)]} of {len(rank)} (1 = most similar)")
    states = [v.SUPPORT if set(ex["most_similar"]) == lo else v.AGAINST,
              v.SUPPORT if set(ex["least_similar"]) == hi else v.AGAINST]
    return Claim(name, paper, measured, "— (no seeds: one vocabulary, one count per domain)",
                 "ranking of the pairwise JSDs", v.verdict(states))


def claim_reset_beats_full(tickets: pd.DataFrame) -> Claim:
    name = "2. TICKET-RESET beats FULL-MODEL at 0–90% sparsity (Fig. 3)"
    paper = "better in Books, Electronics, Home"
    doms = [d for d in FIG3_DOMAINS if d in set(tickets["domain"])]
    per = inf.seed_contrast(inf.with_full_model(tickets), "reset", "full", within=MODERATE)
    per = per[per["domain"].isin(doms)]
    doms = [d for d in doms if d in set(per["domain"])]
    if not doms:
        return untested(name, paper, "needs Books, Electronics or Home with rounds ≤ 90%")
    tests = [SeedTest(display_name(d), "RESET − FULL", MODERATE.name, _values(per[per["domain"] == d]),
                  "above", len(doms)) for d in doms]
    return make_claim(name, paper, "RESET − FULL, mean of rounds ≤ 90%: " + ", ".join(
        f"{t.group} {100 * t.interval().mean:+.1f} pts" for t in tests), tests,
        "paired t over seeds per domain; reproduced = every domain's 95% interval above 0 "
        "(intersection-union)")


def claim_reset_best(tickets: pd.DataFrame) -> Claim:
    name = "3. TICKET-RESET is the best strategy in every domain (Fig. 3)"
    paper = "TICKET-RESET best for all datasets"
    found = []
    for other in ("random", "random_pruning"):
        per = inf.seed_contrast(tickets, "reset", other)
        found += [(d, other, _values(per[per["domain"] == d])) for d in dict.fromkeys(per["domain"])]
    if not found:
        return untested(name, paper, "needs a second strategy")
    tests = [SeedTest(display_name(d), f"RESET − {strategy_label(o)}", inf.PRUNED.name, x, "above", len(found))
             for d, o, x in found]
    worst = min(tests, key=lambda t: t.interval().mean)
    wins = sum(t.state() in (v.SUPPORT, v.SUPPORT_IUT) for t in tests)
    return make_claim(name, paper, f"{wins} of {len(tests)} comparisons in favour of RESET at 95%; "
                      f"weakest: {worst.group} {worst.comparison} {worst.interval().text()}", tests,
                      "paired t over seeds, all pruned rounds; reproduced = every comparison's 95% "
                      "interval above 0 (intersection-union)",
                      labels=[f"{t.group} vs {strategy_short(o)}" for t, (_, o, _) in zip(tests, found)])


def claim_reset_similar_random(tickets: pd.DataFrame) -> Claim:
    name = "4. TICKET-RESET ≈ TICKET-RANDOM up to 96% sparsity (Fig. 3)"
    paper = "similar test accuracy until about 96%"
    per = inf.seed_contrast(tickets, "reset", "random", within=inf.BELOW_TRANSITION)
    if per.empty:
        return untested(name, paper, "needs TICKET-RANDOM")
    pooled = inf.pooled(per)
    test = SeedTest("all domains", "RESET − RANDOM", inf.BELOW_TRANSITION.name, v.per_seed(pooled.sort_index()),
                "equivalent")
    iv = test.interval()
    at = {m: v.verdict([v.equivalence_state(iv, iv, m)]) for m in v.EQUIVALENCE_MARGINS}
    by_domain = pooled_by_domain(per)
    return make_claim(name, paper,
                      f"RESET − RANDOM at ≤ 96%, domains averaged per seed: {100 * iv.mean:+.1f} pts "
                      f"(per domain: {by_domain}); verdict at a margin of "
                      + ", ".join(f"±{100 * m:g} pts: {w}" for m, w in at.items()),
                      [test], f"TOST over {iv.n} seeds (90% interval inside ±"
                      f"{100 * v.EQUIVALENCE_PTS:g} pts = similar; entirely outside = not similar)")


def pooled_by_domain(per: pd.DataFrame) -> str:
    return ", ".join(f"{display_name(d)} {100 * g['diff'].mean():+.1f}"
                     for d, g in per.groupby("domain", sort=False))


def claim_phase_transition(tickets: pd.DataFrame) -> Claim:
    return transition(tickets, "reset", "random", "domain",
                      "5. Phase transition: past 96% TICKET-RANDOM drops faster and is unstable (Fig. 3)",
                      "RANDOM highly unstable, drops off much faster than RESET after 96%")


def claim_cds_full_worst(tickets: pd.DataFrame) -> Claim:
    name = "11. The CDs full model is the worst (§5.3, of §5.2)"
    paper = "FULL-MODEL achieved the worst performance in the CDs domain"
    base = tickets[(tickets["strategy"] == "reset") & (tickets["round"] == 0)]
    wide = base.pivot_table(index="seed", columns="domain", values="test_acc")
    others = [d for d in wide.columns if d != CDS]
    if CDS not in wide.columns or not others:
        return untested(name, paper, "needs CDs and another domain")
    wide = wide.dropna()
    tests = [SeedTest(f"CDs vs {display_name(d)}", "FULL-MODEL: CDs − other", "round 0",
                  v.per_seed(wide[CDS] - wide[d]), "below", len(others)) for d in others]
    return make_claim(name, paper, "CDs − other domain, full model: " + ", ".join(
        f"{display_name(d)} {100 * t.interval().mean:+.1f} pts" for d, t in zip(others, tests)), tests,
        "paired t over seeds (same θ0 in every domain); reproduced = every 95% interval below 0")


def claim_stable_above_999(tickets: pd.DataFrame) -> Claim:
    name = "12. TICKET-RESET stays stable above 99.9% sparsity (§5.2)"
    paper = "TICKET-RESET remains relatively stable, even over 99.9%"
    reset = tickets[(tickets["strategy"] == "reset") & ABOVE_999.contains(tickets["sparsity"])]
    rounds = sorted(reset["round"].unique())
    if len(rounds) < 2:
        reached = tickets["sparsity"].max()
        return untested(name, paper, f"needs two rounds above 99.9%; this profile stops at {reached:.1%}")
    wide = reset.pivot_table(index="seed", columns="round", values="test_acc").dropna()
    test = SeedTest("all domains", f"round {rounds[-1]} − round {rounds[0]}", ABOVE_999.name,
                v.per_seed(wide[rounds[-1]] - wide[rounds[0]]), "equivalent")
    return make_claim(name, paper, f"TICKET-RESET, last minus first round above 99.9%, domains "
                      f"averaged per seed: {100 * test.interval().mean:+.1f} pts", [test],
                      f"TOST over seeds (90% interval inside ±{100 * v.EQUIVALENCE_PTS:g} pts = stable)")


# ---------------------------------------------------------------------------- all of them
def claim_list(tickets: pd.DataFrame, transfer: pd.DataFrame | None, jsd: pd.DataFrame | None,
               pairs: Sequence[tuple[str, str]]) -> list[Claim]:
    """Every claim (transfer claims only when there are pairs and results), in order."""
    t = tickets[tickets["procedure"] == "tickets"]
    out = [claim_similarity(jsd), claim_reset_beats_full(t), claim_reset_best(t),
           claim_reset_similar_random(t), claim_phase_transition(t)]
    out += transfer_claims(t, transfer, pairs)
    out += [claim_cds_full_worst(t), claim_stable_above_999(t)]
    return sorted(out, key=lambda c: int(c.claim.split(".", 1)[0]))


def robust_claims(tickets: pd.DataFrame, transfer: pd.DataFrame | None, jsd: pd.DataFrame | None,
                  pairs: Sequence[tuple[str, str]], boot: int = robustness.BOOTSTRAP) -> list[Claim]:
    """:func:`claim_list` with each verdict's robustness to a perturbation of the seeds
    (:mod:`lottery.stats.robustness`)."""
    t = tickets[tickets["procedure"] == "tickets"]
    return robustness.add_robustness(claim_list(t, transfer, jsd, pairs), t, transfer,
                                     lambda a, b: claim_list(a, b, jsd, pairs), boot)


def status(c: Claim) -> str:
    """How the book shows a verdict: robust, or provisional with the seeds it would need."""
    if not c.tested:
        return "—"
    if c.robust is None:
        return "robustness not computed"
    if c.robust:
        return "robust" if c.details else "robust (no seeds)"
    need = f"; its weakest test needs {c.seeds_needed} seeds for ±2 pts" if c.seeds_needed else ""
    return f"provisional ({c.seeds} seeds{need})"


def table(found: Sequence[Claim]) -> pd.DataFrame:
    """Claims as a table (index: claim; columns paper, this book, interval, test, verdict,
    status, mde, seeds needed, robust, robustness)."""
    df = pd.DataFrame([{**c.record(), "status": status(c)} for c in found]).drop(columns="details")
    return df.rename(columns={"measured": "this book"}).set_index("claim")


def claims(tickets_df: pd.DataFrame, transfer_df: pd.DataFrame | None,
           jsd: pd.DataFrame | None, settings: ChapterSettings) -> pd.DataFrame:
    """The claims table the verdict chapter prints (index: claim)."""
    return table(claim_list(tickets_df, transfer_df, jsd, settings.pairs))


def details(found: Sequence[Claim]) -> pd.DataFrame:
    """Every interval behind the verdicts, one row per test."""
    return pd.DataFrame([{"claim": c.claim.split(".", 1)[0], **d} for c in found for d in c.details])


def verdict_counts(verdicts: pd.DataFrame) -> dict[str, int]:
    """How many claims got each kind of verdict (for the prose)."""
    col = verdicts["verdict"]
    out = {"n_claims": len(col),
           "n_reproduced": int((col == REPRODUCED).sum()),
           "n_partly": int((col == PARTLY).sum()),
           "n_not_reproduced": int((col == NOT).sum()),
           "n_inconclusive": int((col == INCONCLUSIVE).sum()),
           "n_untested": int(col.str.startswith("not tested").sum())}
    if "robust" in verdicts:
        tested = ~col.str.startswith("not tested")
        out["n_robust"] = int((verdicts["robust"].fillna(False).astype(bool) & tested).sum())
        out["n_tested"] = int(tested.sum())
    return out


# ---------------------------------------------------------------------------- summaries
def key_statistics(tickets: pd.DataFrame) -> dict[str, Any]:
    """The numbers the ablation compares across settings (domains averaged per seed):
    per-seed values as :class:`~lottery.stats.verdicts.SeedTest` objects, and collapses."""
    t = tickets[tickets["procedure"] == "tickets"]

    def pooled(per: pd.DataFrame, label: str, kind: str = "above") -> SeedTest:
        values = v.per_seed(inf.pooled(per).sort_index()) if len(per) else ()
        return SeedTest("all domains", label, "", values, kind)

    full = inf.seed_contrast(inf.with_full_model(t), "reset", "full", within=MODERATE)
    low = inf.seed_contrast(t, "reset", "random", within=inf.BELOW_TRANSITION)
    high = inf.seed_contrast(t, "reset", "random", within=EXTREME)
    change = inf.gap_change(t, "reset", "random")
    pruned = t[t["round"] > 0]
    base = t[(t["strategy"] == "reset") & (t["round"] == 0)]
    return {"full model": inf.t_interval(base.groupby("seed")["test_acc"].mean()),
            "RESET − FULL ≤ 90%": pooled(full, "RESET − FULL ≤ 90%"),
            "RESET − RANDOM ≤ 96%": pooled(low, "RESET − RANDOM ≤ 96%", "equivalent"),
            "RESET − RANDOM > 96%": pooled(high, "RESET − RANDOM > 96%"),
            "gap change": pooled(change, "gap change"),
            "collapsed": int(inf.collapsed(pruned).sum()) + int(inf.collapsed(base).sum()),
            "networks": len(pruned) + len(base)}
