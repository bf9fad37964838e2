"""The eight claims of the paper's §5, each tested on this build's results.

Every claim is a test over seeds (:mod:`lottery.stats.inference`): a paired difference per
seed, averaged over the rounds of the sparsity range the paper names, with a
t-interval; claims tested in several domains, pairs or parts use Bonferroni intervals
(family-wise 95% per claim). The verdict is a rule over those intervals, never typed
by hand:

* **reproduced** — every interval lies on the paper's side (for "similar": inside
  ±2 pts);
* **partly reproduced** — some of them do (some domains, or one part of the claim);
* **not reproduced** — none does, and at least one lies on the other side (for
  "similar": entirely outside ±2 pts);
* **inconclusive** — every interval still covers the paper's value and its opposite:
  more seeds are needed to tell;
* **not tested** — the profile lacks the domains, pairs or sparsities the claim is about.

Strategies are compared by their keys in the strategy table
(:mod:`lottery.config.strategies`); the claims' wording quotes the paper, and the
measured text names strategies by their labels (:mod:`lottery.experiment.labels`).

``lottery claims --profile P --json`` prints the same table for scripts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import pandas as pd

from lottery.experiment.labels import display_name, pair_label, pair_name, strategy_label, strategy_short
from lottery.experiment.selection import ChapterSettings
from lottery.stats import inference as inf
from lottery.stats.analysis import SparsityRange, EXTREME, MODERATE, target_frame
from lottery.stats.divergence import jsd_extremes
from lottery.stats.inference import Interval

REPRODUCED, PARTLY, NOT, INCONCLUSIVE = ("reproduced", "partly reproduced", "not reproduced",
                                         "inconclusive")
VERDICTS = (REPRODUCED, PARTLY, NOT, INCONCLUSIVE)
#: The paper's "3–5% dropoff" of Books and Electronics masks after transfer (points).
LOSS_BAND = (-0.05, -0.03)
ABOVE_99 = SparsityRange("> 99%", 0.99, 1.0)
#: The domains the paper names in its claims (FDU-MTL names).
FIG3_DOMAINS = ("books", "electronics", "kitchen_housewares")
CDS, LOSS_SOURCES = "music", ("books", "electronics")


@dataclass
class Claim:
    """One claim: the paper's statement, this build's numbers, the test and the verdict."""

    claim: str
    paper: str
    measured: str
    interval: str
    test: str
    verdict: str
    details: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return asdict(self)


def _untested(claim: str, paper: str, why: str) -> Claim:
    return Claim(claim, paper, "—", "—", "—", f"not tested ({why})")


# ---------------------------------------------------------------------------- verdict rules
def directional(ivs: Sequence[Interval], sign: int = 1) -> str:
    """Verdict for "a − b has the paper's sign" over a family of intervals."""
    ok = [iv.above_zero if sign > 0 else iv.below_zero for iv in ivs]
    against = [iv.below_zero if sign > 0 else iv.above_zero for iv in ivs]
    if ivs and all(ok):
        return REPRODUCED
    if any(ok):
        return PARTLY
    return NOT if any(against) else INCONCLUSIVE


def equivalent(iv: Interval, margin: float = inf.EQUIVALENCE_PTS) -> str:
    """Verdict for "a ≈ b": interval inside ±margin, entirely outside it, or neither."""
    if iv.low >= -margin and iv.high <= margin:
        return REPRODUCED
    if iv.low > margin or iv.high < -margin:
        return NOT
    return INCONCLUSIVE


def in_band(iv: Interval, band: tuple[float, float] = LOSS_BAND) -> str:
    """Verdict for "a loss of 3–5 pts": a significant loss whose interval meets the band."""
    if iv.below_zero:
        return REPRODUCED if iv.low <= band[1] and iv.high >= band[0] else PARTLY
    return NOT if iv.above_zero else INCONCLUSIVE


def combine(parts: Sequence[str]) -> str:
    """Verdict of a claim from the verdicts of its parts."""
    if parts and all(v == REPRODUCED for v in parts):
        return REPRODUCED
    if any(v in (REPRODUCED, PARTLY) for v in parts):
        return PARTLY
    return NOT if any(v == NOT for v in parts) else INCONCLUSIVE


def _stability(test: inf.StabilityTest | None, alpha: float) -> str:
    """"b less stable than a": reproduced / not reproduced (a less stable) / inconclusive."""
    if test is None:
        return INCONCLUSIVE
    if test.less_stable("b", alpha):
        return REPRODUCED
    return NOT if test.less_stable("a", alpha) else INCONCLUSIVE


def _level_text(level: float, family: int, seeds: int) -> str:
    fam = f", Bonferroni over {family}" if family > 1 else ""
    return f"paired t over {seeds} seeds{fam} ({100 * level:.4g}% intervals)"


def _detail(group: str, comparison: str, within: str, iv: Interval) -> dict[str, Any]:
    return {"group": group, "comparison": comparison, "range": within, "seeds": iv.n,
            "mean_pts": round(100 * iv.mean, 2), "low_pts": round(100 * iv.low, 2),
            "high_pts": round(100 * iv.high, 2), "level": round(iv.level, 4),
            "p": round(iv.p_value, 4)}


def _per_group(per_seed: pd.DataFrame, group: str, level: float) -> dict[str, Interval]:
    return {g: inf.t_interval(per_seed[per_seed[group] == g]["diff"], level)
            for g in dict.fromkeys(per_seed[group])}


# ---------------------------------------------------------------------------- the claims
def claim_similarity(jsd: pd.DataFrame | None) -> Claim:
    name, paper = "1. Domain similarity (Fig. 1)", "Electronics–Home most similar, CDs–Home least"
    if jsd is None or jsd["domain_a"].nunique() < 3:
        return _untested(name, paper, "needs three or more domains")
    have = set(jsd["domain_a"])
    lo, hi = {"electronics", "kitchen_housewares"}, {"music", "kitchen_housewares"}
    if not (lo | hi) <= have:
        return _untested(name, paper, "needs Electronics, CDs and Home")
    ex = jsd_extremes(jsd)
    pairs = jsd[jsd["domain_a"] < jsd["domain_b"]].sort_values("jsd")
    rank = {frozenset((a, b)): i + 1 for i, (a, b) in enumerate(zip(pairs["domain_a"], pairs["domain_b"]))}
    measured = (f"most similar {pair_name(ex['most_similar'])} ({ex['most_similar_jsd_x1e5']:.1f}), "
                f"least {pair_name(ex['least_similar'])} ({ex['least_similar_jsd_x1e5']:.1f}); "
                f"Electronics–Home ranks {rank[frozenset(lo)]} and CDs–Home "
                f"{rank[frozenset(hi)]} of {len(rank)} (1 = most similar)")
    verdict = combine([REPRODUCED if set(ex["most_similar"]) == lo else NOT,
                       REPRODUCED if set(ex["least_similar"]) == hi else NOT])
    return Claim(name, paper, measured, "— (no seeds: one vocabulary, one count per domain)",
                 "ranking of the pairwise JSDs", verdict)


def claim_reset_beats_full(tickets: pd.DataFrame) -> Claim:
    name = "2. TICKET-RESET beats FULL-MODEL at 0–90% sparsity (Fig. 3)"
    paper = "better in Books, Electronics, Home"
    doms = [d for d in FIG3_DOMAINS if d in set(tickets["domain"])]
    per = inf.seed_contrast(inf.with_full_model(tickets), "reset", "full", within=MODERATE)
    per = per[per["domain"].isin(doms)]
    if per.empty:
        return _untested(name, paper, "needs Books, Electronics or Home with rounds ≤ 90%")
    level = inf.level_for(len(doms))
    ivs = _per_group(per, "domain", level)
    text = "; ".join(f"{display_name(d)} {iv.text()}" for d, iv in ivs.items())
    return Claim(name, paper, "RESET − FULL, mean of rounds ≤ 90%: "
                 + ", ".join(f"{display_name(d)} {100 * iv.mean:+.1f} pts" for d, iv in ivs.items()),
                 text, _level_text(level, len(doms), max(iv.n for iv in ivs.values())),
                 directional(list(ivs.values())),
                 [_detail(display_name(d), "RESET − FULL", MODERATE.name, iv) for d, iv in ivs.items()])


def claim_reset_best(tickets: pd.DataFrame) -> Claim:
    name = "3. TICKET-RESET is the best strategy in every domain (Fig. 3)"
    paper = "TICKET-RESET best for all datasets"
    tests = []
    for other in ("random", "random_pruning"):
        per = inf.seed_contrast(tickets, "reset", other)
        for d in dict.fromkeys(per["domain"]):
            tests.append((d, other, per[per["domain"] == d]["diff"]))
    if not tests:
        return _untested(name, paper, "needs a second strategy")
    level = inf.level_for(len(tests))
    ivs = [(d, o, inf.t_interval(v, level)) for d, o, v in tests]
    worst = min(ivs, key=lambda t: t[2].mean)
    return Claim(name, paper,
                 f"{sum(iv.above_zero for *_, iv in ivs)} of {len(ivs)} comparisons significantly in "
                 f"favour of RESET; weakest: {display_name(worst[0])} vs {strategy_label(worst[1])} "
                 f"{worst[2].text()}",
                 "; ".join(f"{display_name(d)} vs {strategy_short(o)} {iv.text()}" for d, o, iv in ivs),
                 _level_text(level, len(ivs), max(iv.n for *_, iv in ivs)) + ", all pruned rounds",
                 directional([iv for *_, iv in ivs]),
                 [_detail(display_name(d), f"RESET − {strategy_label(o)}", inf.PRUNED.name, iv)
                  for d, o, iv in ivs])


def claim_reset_similar_random(tickets: pd.DataFrame) -> Claim:
    name = "4. TICKET-RESET ≈ TICKET-RANDOM up to 96% sparsity (Fig. 3)"
    paper = "similar test accuracy until about 96%"
    per = inf.seed_contrast(tickets, "reset", "random", within=inf.BELOW_TRANSITION)
    if per.empty:
        return _untested(name, paper, "needs TICKET-RANDOM")
    iv = inf.t_interval(inf.pooled(per))
    per_domain = _per_group(per, "domain", inf.level_for(per["domain"].nunique()))
    return Claim(name, paper,
                 f"RESET − RANDOM at ≤ 96%, mean over domains: {100 * iv.mean:+.1f} pts "
                 f"(per domain: " + ", ".join(f"{display_name(d)} {100 * v.mean:+.1f}"
                                              for d, v in per_domain.items()) + ")",
                 iv.text(),
                 f"paired t over {iv.n} seeds (domains averaged per seed, 95% interval); "
                 f"similar = interval inside ±{100 * inf.EQUIVALENCE_PTS:g} pts", equivalent(iv),
                 [_detail("all domains", "RESET − RANDOM", inf.BELOW_TRANSITION.name, iv)]
                 + [_detail(display_name(d), "RESET − RANDOM", inf.BELOW_TRANSITION.name, v)
                    for d, v in per_domain.items()])


def _transition(df: pd.DataFrame, a: str, b: str, group: str, name: str, paper: str) -> Claim:
    """Claims 5 and 8: past 96%, ``b`` falls behind ``a`` (strategy keys; the gap above
    96% larger than below it, or b − a above 96% < 0 when nothing is below) and is less
    stable."""
    change = inf.gap_change(df, a, b, group)
    if change.empty:
        return _untested(name, paper, "needs rounds on both sides of 96% and both strategies")
    family = 3  # the gap test and the two stability tests
    level = inf.level_for(family)
    gap = inf.t_interval(change.groupby("seed")["diff"].mean(), level)
    above = inf.t_interval(change.groupby("seed")["diff_high"].mean(), level)
    stab = inf.stability_test(df, a, b, group, EXTREME)
    parts = [directional([gap]), _stability(stab, 1 - level)]
    short_a, short_b = strategy_short(a), strategy_short(b)
    measured = (f"{short_a} − {short_b}: {100 * above.mean:+.1f} pts above 96%, gap "
                f"{100 * gap.mean:+.1f} pts larger than at ≤ 96%; "
                + (stab.text(short_a, short_b) if stab else "no stability data"))
    return Claim(name, paper, measured, f"gap change {gap.text()}; above 96% {above.text()}",
                 f"gap change: paired t over {gap.n} seeds ({group}s averaged per seed); "
                 f"stability: Fisher + Brown–Forsythe one-sided; Bonferroni over {family} "
                 f"({100 * level:.4g}%)", combine(parts),
                 [_detail("all", f"({short_a} − {short_b}) above minus at/below 96%", "both", gap),
                  _detail("all", f"{short_a} − {short_b}", EXTREME.name, above)])


def claim_phase_transition(tickets: pd.DataFrame) -> Claim:
    return _transition(tickets, "reset", "random", "domain",
                       "5. Phase transition: past 96% TICKET-RANDOM drops faster and is unstable (Fig. 3)",
                       "RANDOM highly unstable, drops off much faster than RESET after 96%")


def transfer_frame(tickets: pd.DataFrame, transfer: pd.DataFrame,
                   pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    moved = [transfer[(transfer["source"] == s) & (transfer["target"] == t)]
             .assign(pair=pair_label(s, t)) for s, t in pairs]
    return pd.concat([target_frame(tickets, pairs), *moved], ignore_index=True)


def claim_cds_transfer(both: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> Claim:
    name = "6. CDs masks transfer best, beating TICKET-TARGET even above 99% (Fig. 4)"
    paper = "CDs MASKS-RESET and MASKS-RANDOM above TICKET-TARGET, even over 99%"
    cds = [pair_label(s, t) for s, t in pairs if s == CDS]
    if not cds:
        return _untested(name, paper, "needs a pair with source CDs")
    src = {pair_label(s, t): s for s, t in pairs}
    per = inf.seed_contrast(both, "masks_reset", "target", group="pair")
    per["cds"] = per["pair"].map(src) == CDS
    tests: list[tuple[str, pd.Series]] = []
    if (~per["cds"]).any():
        by = per.pivot_table(index="seed", columns="cds", values="diff").dropna()
        tests.append((f"CDs gap − other sources' gap ({strategy_label('masks_reset')} − TARGET, all rounds)",
                      by[True] - by[False]))
    for strategy in ("masks_reset", "masks_random"):
        top = inf.seed_contrast(both, strategy, "target", group="pair", within=ABOVE_99)
        top = top[top["pair"].isin(cds)]
        if len(top):
            tests.append((f"CDs {strategy_label(strategy)} − TARGET above 99%",
                          top.groupby("seed")["diff"].mean()))
    if len(tests) < 2:
        return _untested(name, paper, "needs rounds above 99%")
    level = inf.level_for(len(tests))
    ivs = [(t, inf.t_interval(v, level)) for t, v in tests]
    return Claim(name, paper, "; ".join(f"{t}: {100 * iv.mean:+.1f} pts" for t, iv in ivs),
                 "; ".join(iv.text() for _, iv in ivs),
                 _level_text(level, len(ivs), max(iv.n for _, iv in ivs)) + "; pairs averaged per seed",
                 directional([iv for _, iv in ivs]),
                 [_detail("CDs → *", t, "", iv) for t, iv in ivs])


def claim_transfer_loss(both: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> Claim:
    name = "7. Books and Electronics masks lose 3–5 pts up to 90% (Fig. 4)"
    paper = "3–5% drop-off up to 90% sparsity after transfer"
    sources = [s for s in LOSS_SOURCES if any(p[0] == s for p in pairs)]
    per = inf.seed_contrast(both, "masks_reset", "target", group="pair", within=MODERATE)
    if not sources or per.empty:
        return _untested(name, paper, "needs Books or Electronics sources and rounds ≤ 90%")
    src = {pair_label(s, t): s for s, t in pairs}
    per["source"] = per["pair"].map(src)
    level = inf.level_for(len(sources))
    ivs = {s: inf.t_interval(per[per["source"] == s].groupby("seed")["diff"].mean(), level)
           for s in sources}
    moved, target = strategy_label("masks_reset"), strategy_label("target")
    return Claim(name, paper, f"{moved} − {target} at ≤ 90%, pairs of each source averaged: "
                 + ", ".join(f"{display_name(s)} {100 * iv.mean:+.1f} pts" for s, iv in ivs.items()),
                 "; ".join(f"{display_name(s)} {iv.text()}" for s, iv in ivs.items()),
                 _level_text(level, len(ivs), max(iv.n for iv in ivs.values()))
                 + "; a loss meeting −3…−5 pts",
                 combine([in_band(iv) for iv in ivs.values()]),
                 [_detail(f"{display_name(s)} → *", f"{moved} − TARGET", MODERATE.name, iv)
                  for s, iv in ivs.items()])


def claim_transfer_transition(both: pd.DataFrame) -> Claim:
    return _transition(both, "masks_reset", "masks_random", "pair",
                       "8. Past 96%, MASKS-RESET better and steadier than MASKS-RANDOM (Fig. 4)",
                       "initial values matter for performance and stability deep in sparsification")


def claim_list(tickets: pd.DataFrame, transfer: pd.DataFrame | None, jsd: pd.DataFrame | None,
               pairs: Sequence[tuple[str, str]]) -> list[Claim]:
    """All eight claims (transfer claims only when there are pairs and results)."""
    t = tickets[tickets["procedure"] == "tickets"]
    out = [claim_similarity(jsd), claim_reset_beats_full(t), claim_reset_best(t),
           claim_reset_similar_random(t), claim_phase_transition(t)]
    if transfer is not None and len(transfer) and pairs:
        both = transfer_frame(t, transfer, pairs)
        out += [claim_cds_transfer(both, pairs), claim_transfer_loss(both, pairs),
                claim_transfer_transition(both)]
    return out


def table(found: Sequence[Claim]) -> pd.DataFrame:
    """Claims as a table (index: claim; columns paper, this book, interval, test, verdict)."""
    df = pd.DataFrame([c.record() for c in found]).drop(columns="details")
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
    v = verdicts["verdict"]
    return {"n_claims": len(v),
            "n_reproduced": int((v == REPRODUCED).sum()),
            "n_partly": int((v == PARTLY).sum()),
            "n_not_reproduced": int((v == NOT).sum()),
            "n_inconclusive": int((v == INCONCLUSIVE).sum()),
            "n_untested": int(v.str.startswith("not tested").sum())}


# ---------------------------------------------------------------------------- summaries
def key_statistics(tickets: pd.DataFrame) -> dict[str, Any]:
    """The numbers the ablation compares across settings (domains averaged per seed, 95%)."""
    t = tickets[tickets["procedure"] == "tickets"]
    full = inf.seed_contrast(inf.with_full_model(t), "reset", "full", within=MODERATE)
    low = inf.seed_contrast(t, "reset", "random", within=inf.BELOW_TRANSITION)
    high = inf.seed_contrast(t, "reset", "random", within=EXTREME)
    change = inf.gap_change(t, "reset", "random")
    pruned = t[t["round"] > 0]
    base = t[(t["strategy"] == "reset") & (t["round"] == 0)]

    def iv(per: pd.DataFrame) -> Interval:
        return inf.t_interval(inf.pooled(per)) if len(per) else inf.t_interval([])

    return {"full model": inf.t_interval(base.groupby("seed")["test_acc"].mean()),
            "RESET − FULL ≤ 90%": iv(full), "RESET − RANDOM ≤ 96%": iv(low),
            "RESET − RANDOM > 96%": iv(high),
            "gap change": iv(change) if len(change) else inf.t_interval([]),
            "collapsed": int(inf.collapsed(pruned).sum()) + int(inf.collapsed(base).sum()),
            "networks": len(pruned) + len(base)}


