"""Claim verdicts follow the statistics of (synthetic) measurements."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lottery import config
from lottery.experiment import selection
from lottery.stats import claims, inference, power, similarity, verdicts
from lottery.stats.inference import Interval
from lottery.stats.verdicts import SeedTest
from synthetic import jsd_frame, tickets_frame, transfer_frame

C2 = "2. TICKET-RESET beats FULL-MODEL at 0–90% sparsity (Fig. 3)"
C4 = "4. TICKET-RESET ≈ TICKET-RANDOM up to 96% sparsity (Fig. 3)"
C5 = "5. Phase transition: past 96% TICKET-RANDOM drops faster and is unstable (Fig. 3)"
C7 = "7. Books and Electronics masks lose 3–5 pts up to 90% (Fig. 4)"
C8 = "8. Past 96%, MASKS-RESET better and steadier than MASKS-RANDOM (Fig. 4)"


def iv(low: float, high: float) -> Interval:
    return Interval((low + high) / 2, low, high, 5, 0.95, 0.01)


def test_verdict_rules():
    V = verdicts
    assert V.verdict([V.SUPPORT, V.SUPPORT_IUT]) == claims.REPRODUCED     # intersection-union
    assert V.verdict([V.SUPPORT_IUT, V.SUPPORT_IUT]) == claims.REPRODUCED
    assert V.verdict([V.SUPPORT, V.OPEN]) == claims.PARTLY
    assert V.verdict([V.SUPPORT_IUT, V.OPEN]) == claims.INCONCLUSIVE     # no family-level support
    assert V.verdict([V.SUPPORT, V.AGAINST]) == claims.NOT               # a contrary domain refutes
    assert V.verdict([V.PARTIAL, V.OPEN]) == claims.PARTLY
    assert V.verdict([V.OPEN]) == claims.INCONCLUSIVE
    assert V.verdict([]) == claims.INCONCLUSIVE
    # equivalence (TOST) and the 3-5 pt band: either can also reject
    assert V.equivalence_state(iv(-0.015, 0.012), iv(-0.019, 0.016), 0.02) == V.SUPPORT
    assert V.equivalence_state(iv(-0.015, 0.012), iv(-0.025, 0.02), 0.02) == V.SUPPORT_IUT
    assert V.equivalence_state(iv(0.03, 0.08), iv(0.025, 0.09), 0.02) == V.AGAINST
    assert V.equivalence_state(iv(0.005, 0.04), iv(0.0, 0.045), 0.02) == V.OPEN
    assert V.band_state(iv(-0.048, -0.032), iv(-0.049, -0.031), (-0.05, -0.03)) == V.SUPPORT
    assert V.band_state(iv(-0.031, -0.002), iv(-0.035, 0.001), (-0.05, -0.03)) == V.PARTIAL
    assert V.band_state(iv(-0.01, 0.01), iv(-0.012, 0.012), (-0.05, -0.03)) == V.AGAINST   # tight, no loss
    assert V.band_state(iv(-0.12, -0.08), iv(-0.13, -0.07), (-0.05, -0.03)) == V.AGAINST   # far larger
    assert V.band_state(iv(-0.06, 0.01), iv(-0.07, 0.02), (-0.05, -0.03)) == V.OPEN


def test_tests_use_the_right_levels():
    up = SeedTest("g", "a − b", "", (0.01, 0.03, 0.02, 0.04, 0.00), "above", family=3)
    assert up.interval().level == pytest.approx(0.95) and up.family_level == pytest.approx(1 - 0.05 / 3)
    same = SeedTest("g", "a − b", "", (0.01, 0.03, 0.02, 0.04, 0.00), "equivalent")
    assert same.interval().level == pytest.approx(0.90)           # TOST: two one-sided 5% tests
    # inside ±2 at 90% but not at 95%: "similar" by TOST
    x = (-0.002, 0.004, 0.01, 0.016, 0.022)
    assert inference.t_interval(x, 0.95).high > 0.02 >= inference.t_interval(x, 0.90).high
    assert SeedTest("g", "", "", x, "equivalent").state() in (verdicts.SUPPORT, verdicts.SUPPORT_IUT)
    # both 95% intervals above 0, the Bonferroni ones not: reproduced (intersection-union)
    a = (0.004, 0.012, 0.008, 0.016, 0.002)
    t1, t2 = (SeedTest("g", "", "", a, "above", 2) for _ in range(2))
    assert t1.interval().low > 0 and t1.family_interval().low < 0
    assert verdicts.verdict([t1.state(), t2.state()]) == claims.REPRODUCED


def test_power_numbers():
    # (t(0.975, 4) + t(0.8, 4)) / sqrt(5) = (2.776 + 0.941) / 2.236
    assert power.mde(1.0, 5, 0.95) == pytest.approx(1.6625, abs=1e-3)
    assert power.mde(0.05, 10, 0.95) < power.mde(0.05, 5, 0.95)
    assert np.isnan(power.mde(float("nan"), 5, 0.95)) and np.isnan(power.mde(1.0, 1, 0.95))
    n = power.seeds_needed(0.05, 0.95)
    assert stats.t.ppf(0.975, n - 1) * 0.05 / math.sqrt(n) <= 0.02 < stats.t.ppf(0.975, n - 2) * 0.05 / math.sqrt(n - 1)
    assert power.seeds_needed(0.0, 0.95) == 2 and power.seeds_needed(float("nan"), 0.95) is None
    assert power.sign_flip_seeds(0.05 / 3) == 6 and power.sign_flip_seeds(0.05) == 5


def test_t_interval_and_bonferroni_widen():
    x = [0.01, 0.03, 0.02, 0.04, 0.00]
    one, three = inference.t_interval(x), inference.t_interval(x, inference.level_for(3))
    assert one.low < one.mean < one.high and one.n == 5
    assert three.low < one.low and three.high > one.high       # Bonferroni is wider
    assert inference.level_for(3) == pytest.approx(1 - 0.05 / 3)
    assert np.isnan(inference.t_interval([0.1]).low)            # one seed: no interval
    same = inference.t_interval([0.02] * 4)                      # no spread: no interval
    assert same.mean == pytest.approx(0.02) and np.isnan(same.low) and "no spread" in same.text()
    assert SeedTest("g", "", "", (0.02,) * 4).state() == verdicts.OPEN


def noisy(effect_low: float, effect_high: float, noise: float, seeds=range(8),
          domains=("books", "electronics", "kitchen_housewares"), rounds=9,
          collapse_random_high: bool = False) -> pd.DataFrame:
    """RESET − RANDOM = effect_low up to 96%, effect_high beyond; seed noise ``noise``."""
    rng = np.random.default_rng(1)
    rows = []
    for d in domains:
        for seed in seeds:
            base = 0.75 + rng.normal(0, noise)
            for r in range(rounds + 1):
                s = config.sparsity_after(0.5, r)
                reset = base + (0.01 if 0 < r and s <= 0.9 else 0) + rng.normal(0, noise)
                gap = effect_low if s <= 0.96 else effect_high
                random = reset - gap + rng.normal(0, noise)
                if collapse_random_high and s > 0.96 and seed % 4 != 3:
                    random = 0.5
                for strat, acc in (("reset", base if r == 0 else reset),
                                   ("random", base if r == 0 else random)):
                    rows.append({"procedure": "tickets", "strategy": strat, "domain": d, "source": d,
                                 "target": d, "seed": seed, "round": r, "sparsity": s,
                                 "test_acc": acc})
    return pd.DataFrame(rows)


def by_claim(df: pd.DataFrame) -> dict[str, claims.Claim]:
    return {c.claim: c for c in claims.claim_list(df, None, None, ())}


def test_phase_transition_is_a_difference_of_gaps():
    # a constant 5-pt gap at every sparsity: RESET ≈ RANDOM fails, and there is no transition
    flat = by_claim(noisy(0.05, 0.05, 0.002))
    assert flat[C4].verdict == claims.NOT
    gap = [d for d in flat[C5].details if "minus" in d["comparison"]][0]
    assert abs(gap["mean_pts"]) < 1 and flat[C5].verdict in (claims.NOT, claims.INCONCLUSIVE)
    # the paper's pattern: similar below 96%, a gap that opens beyond, RANDOM collapsing
    # (in every other seed: 8 seeds, so an exact sign-flip test over seeds can reach α/3)
    paper = by_claim(noisy(0.0, 0.08, 0.002, collapse_random_high=True))
    assert paper[C4].verdict == claims.REPRODUCED
    assert paper[C5].verdict == claims.REPRODUCED
    assert "collapsed 0/" in paper[C5].measured
    # with five seeds the sign-flip test cannot reach α/3 (p ≥ 1/32): the stability part is open
    five = by_claim(noisy(0.0, 0.08, 0.002, seeds=range(5), collapse_random_high=True))
    assert five[C5].verdict == claims.PARTLY and five[C5].seeds_needed >= 6
    # the same means under heavy seed noise cannot be decided
    vague = by_claim(noisy(0.0, 0.08, 0.08, seeds=range(5)))
    assert vague[C4].verdict == claims.INCONCLUSIVE


def test_claims_verdicts_on_the_synthetic_frames():
    run = selection.chapter_settings("smoke", rounds=3)
    table = claims.claims(tickets_frame(), transfer_frame(), None, run)
    assert set(table["verdict"]) <= set(claims.VERDICTS) | {v for v in table["verdict"]
                                                               if v.startswith("not tested")}
    assert table.loc[C2, "verdict"] == claims.REPRODUCED      # +1 pt per round, tiny noise
    assert table.loc[C4, "verdict"] == claims.NOT             # 3 pts apart per round
    assert table.loc[C5, "verdict"].startswith("not tested")  # 3 rounds reach 73%
    # MASKS-RESET loses ~7 pts (its interval reaches the −3…−5 band: partial), MASKS-RANDOM
    # ~10 pts (its interval misses the band): the band is rejected
    c7 = {d["comparison"]: d["state"] for d in claims.details(claims.claim_list(
        tickets_frame(), transfer_frame(), None, run.pairs)).query("claim == '7'").to_dict("records")}
    assert c7 == {"MASKS-RESET − TARGET": verdicts.PARTIAL, "MASKS-RANDOM − TARGET": verdicts.AGAINST}
    assert table.loc[C7, "verdict"] == claims.NOT
    assert table.loc[C8, "verdict"].startswith("not tested")
    counts = claims.verdict_counts(table)
    assert counts["n_claims"] == len(table) == sum(
        counts[k] for k in ("n_reproduced", "n_partly", "n_not_reproduced", "n_inconclusive",
                            "n_untested"))
    deep = claims.claims(tickets_frame(rounds=9), transfer_frame(rounds=9, noise=0.002), None,
                         selection.chapter_settings("smoke"))
    assert not deep.loc[C5, "verdict"].startswith("not tested")
    assert deep.loc[C8, "verdict"] in (claims.REPRODUCED, claims.PARTLY)


def test_claims_without_pairs_skip_the_transfer_claims():
    run = selection.chapter_settings("smoke", pairs=[])
    verdicts = claims.claims(tickets_frame(), transfer_frame(), None, run)
    assert not any("Fig. 4" in c for c in verdicts.index)


def test_claims_jsd_verdict():
    names = ["books", "electronics", "dvd", "music", "kitchen_housewares"]
    jsd = jsd_frame({frozenset(("electronics", "kitchen_housewares")): 1.0,
                     frozenset(("music", "kitchen_housewares")): 50.0}, names)
    run = selection.chapter_settings("course")
    name = "1. Domain similarity (Fig. 1)"
    verdicts = claims.claims(tickets_frame(), None, jsd, run)
    assert verdicts.loc[name, "verdict"] == claims.REPRODUCED
    assert "Electronics–Home" in verdicts.loc[name, "this book"]
    swapped = jsd_frame({frozenset(("electronics", "kitchen_housewares")): 1.0,
                         frozenset(("books", "dvd")): 50.0}, names)
    # half of the statement contradicted: the conjunction is not reproduced
    assert claims.claims(tickets_frame(), None, swapped, run).loc[name, "verdict"] == claims.NOT


def test_collapses_and_stability():
    df = noisy(0.0, 0.08, 0.002, collapse_random_high=True)
    c = inference.collapsed(df)
    assert c.sum() > 0 and (df[c]["test_acc"] == 0.5).all()
    st = inference.stability_test(df, "reset", "random", "domain",
                                  inference.SparsityRange("x", 0.96, 1.0))
    assert st.collapsed_a == 0 and st.collapsed_b > 0 and st.less_stable("b", 0.05)
    assert not st.less_stable("a", 0.05)
    table = inference.collapse_table(df, ["strategy"]).set_index("strategy")
    assert table.loc["reset", "collapsed"] == 0


def test_rank_correlation_and_transfer_vs_divergence():
    strong = inference.rank_correlation([1, 2, 3, 4, 5, 6, 7, 8, 9], [9, 8, 7, 6, 5, 4, 3, 2, 1])
    assert strong.rho == pytest.approx(-1.0) and strong.p_value < 0.01
    rng = np.random.default_rng(0)
    none = inference.rank_correlation(rng.normal(size=9), rng.normal(size=9))
    assert none.p_value > 0.05
    names = ["books", "electronics"]
    jsd = jsd_frame({}, names)
    table, corr = similarity.transfer_vs_divergence(tickets_frame(), transfer_frame(), jsd,
                                                (("books", "electronics"),))
    assert list(table.index) == ["Books → Electronics"] and np.isnan(corr.rho)   # one task
    assert "too few" in similarity.correlation_answer(corr)


def test_claims_cli_json(tmp_path, monkeypatch, capsys):
    """`lottery claims --json` prints every claim with the fields scripts rely on."""
    from lottery.cli import app as cli
    from lottery.engine import runner

    monkeypatch.setattr(runner, "run_tickets", lambda *a, **k: tickets_frame(rounds=9))
    monkeypatch.setattr(runner, "run_transfer", lambda *a, **k: transfer_frame(rounds=9))
    from lottery.stats import divergence
    monkeypatch.setattr(divergence, "jsd_matrix", lambda *a, **k: jsd_frame({}, ["books", "electronics"]))
    assert cli.main(["claims", "--profile", "smoke", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) >= 5
    assert {"claim", "paper", "measured", "interval", "test", "verdict", "details"} <= set(out[0])
    with pytest.raises(SystemExit) as exit_:
        cli.main(["claims", "--profile", "smoke", "--set", "train.lr=abc"])
    assert exit_.value.code == 2 and "train.lr" in capsys.readouterr().err


def _relabelled(monkeypatch, prefix: str = "X-") -> None:
    """Every label of the strategy table renamed (keys, colours, rules unchanged)."""
    import dataclasses

    from lottery.config import strategies as table

    rows = tuple(dataclasses.replace(s, label=prefix + s.label) for s in table.STRATEGIES)
    monkeypatch.setattr(table, "STRATEGIES", rows)
    monkeypatch.setattr(table, "_BY_KEY", {s.key: s for s in rows})
    monkeypatch.setattr(table, "_BY_LABEL", {s.label: s for s in rows})


def test_renaming_every_label_cannot_move_the_science(monkeypatch):
    """Results frames, filters and joins use the strategy table's keys: with every label
    renamed the claims' verdicts, intervals and numbers stay, only the text changes."""
    pairs = (("books", "electronics"), ("music", "electronics"))
    tickets = tickets_frame(seeds=range(5), rounds=9, domains=("books", "electronics", "music"))
    moved = transfer_frame(pairs=pairs, seeds=range(5), rounds=9, noise=0.004)
    jsd = jsd_frame({}, ["books", "electronics", "music"])

    def measure():
        found = claims.claim_list(tickets, moved, jsd, pairs)
        numbers = [[{k: v for k, v in d.items() if k != "comparison"} for d in c.details] for c in found]
        stats = {k: (v.mean, v.low, v.high) if isinstance(v, Interval) else v
                 for k, v in claims.key_statistics(tickets).items()}
        # every interval of every verdict is in the details (mean, low, high, level, p)
        return ([(c.claim, c.verdict) for c in found], repr(numbers), repr(stats),
                " ".join(c.measured + c.interval for c in found))

    verdicts, numbers, stats, text = measure()
    assert sum(not v.startswith("not tested") for _, v in verdicts) >= 6
    _relabelled(monkeypatch)
    verdicts2, numbers2, stats2, text2 = measure()
    assert (verdicts2, numbers2, stats2) == (verdicts, numbers, stats)
    assert "X-TICKET-RANDOM" in text2 and "X-TICKET-RANDOM" not in text     # only the text moves
