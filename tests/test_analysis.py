"""The analyses on synthetic results: curves, tables, gaps, paired t-intervals."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from lottery.engine.jobs import results_frame
from lottery.stats import analysis
from synthetic import tickets_frame, transfer_frame


def test_sparsity_ranges_partition_the_axis():
    assert [r.name for r in analysis.SPARSITY_RANGES] == ["0–90%", "90–96%", "> 96%"]
    assert [r.bound for r in analysis.SPARSITY_RANGES] == ["≤ 90%", "90–96%", "> 96%"]
    for a, b in zip(analysis.SPARSITY_RANGES, analysis.SPARSITY_RANGES[1:]):
        assert a.hi == b.lo
    import pandas as pd

    s = pd.Series([0.35, 0.9, 0.95, 0.96, 0.99])
    assert analysis.MODERATE.contains(s).tolist() == [True, True, False, False, False]
    assert analysis.TRANSITION.contains(s).tolist() == [False, False, True, True, False]
    assert analysis.EXTREME.contains(s).tolist() == [False, False, False, False, True]


def test_ticket_curves_full_model_line_and_stats():
    df = tickets_frame()
    curves = analysis.ticket_curves(df)
    full = curves[(curves["strategy"] == "FULL-MODEL") & (curves["domain"] == "books")]
    assert sorted(full["round"]) == [0, 1, 2, 3]
    assert full["mean"].nunique() == 1
    r0 = df[(df["domain"] == "books") & (df["strategy"] == "TICKET-RESET") & (df["round"] == 0)]
    assert full["mean"].iloc[0] == pytest.approx(r0["test_acc"].mean())
    row = curves[(curves["strategy"] == "TICKET-RANDOM") & (curves["domain"] == "books")
                 & (curves["round"] == 2)].iloc[0]
    raw = df[(df["strategy"] == "TICKET-RANDOM") & (df["domain"] == "books") & (df["round"] == 2)]
    assert row["mean"] == pytest.approx(raw["test_acc"].mean())
    assert row["std"] == pytest.approx(raw["test_acc"].std(ddof=1))
    assert row["lo"] == pytest.approx(row["mean"] - row["std"])
    assert row["x"] == pytest.approx(-math.log10(1 - row["sparsity"]))
    assert full["x"].tolist() == pytest.approx([-math.log10(1 - s) for s in full["sparsity"]])
    assert set(curves["name"]) == {"Books", "Electronics"}


def test_accuracy_table_prints_mean_pm_std():
    curves = analysis.ticket_curves(tickets_frame())
    table = analysis.accuracy_table(curves, "name", ["TICKET-RESET", "TICKET-RANDOM"],
                                    facet_title="domain")
    assert list(table.columns) == ["TICKET-RESET", "TICKET-RANDOM"]
    assert table.index.names == ["domain", "round", "sparsity"]
    assert table.loc[("Books", 1, "35%"), "TICKET-RESET"].count(" ± ") == 1
    assert "at chance" not in table.loc[("Books", 1, "35%"), "TICKET-RESET"]
    df = tickets_frame()
    hit = (df["domain"] == "books") & (df["strategy"] == "TICKET-RANDOM") & (df["round"] == 2)
    df.loc[hit & (df["seed"] < 2), "test_acc"] = 0.5          # two networks collapse
    table = analysis.accuracy_table(analysis.ticket_curves(df), "name", ["TICKET-RANDOM"])
    assert table.loc[("Books", 2, "58%"), "TICKET-RANDOM"].endswith("(2 at chance)")


def test_strategy_gaps_by_named_range():
    curves = analysis.ticket_curves(tickets_frame(rounds=9))  # 0.35 x 9 rounds: 97.9%
    gaps = analysis.strategy_gaps(curves, "TICKET-RESET", "TICKET-RANDOM")
    assert set(gaps) == set(analysis.SPARSITY_RANGES)
    assert gaps[analysis.MODERATE] > 0 and gaps[analysis.EXTREME] > gaps[analysis.MODERATE]
    shallow = analysis.strategy_gaps(analysis.ticket_curves(tickets_frame()), "TICKET-RESET",
                                     "TICKET-RANDOM")
    assert math.isnan(shallow[analysis.EXTREME])  # 3 rounds reach 72.5%
    assert analysis.strategy_gaps(curves, "TICKET-RESET", "MASKS-RESET") == {}


def test_ticket_overview_per_domain():
    overview = analysis.ticket_overview(analysis.ticket_curves(tickets_frame()))
    assert list(overview.index) == ["Books", "Electronics"]
    assert overview.loc["Books", "matches FULL-MODEL up to"] == "73%"  # RESET only gains
    assert overview.loc["Books", "last round sparsity"] == "73%"


def test_paired_differences_match_scipy_t_interval():
    df = tickets_frame()
    diffs = analysis.paired_differences(df, "TICKET-RESET", "TICKET-RANDOM")
    row = diffs[(diffs["domain"] == "books") & (diffs["round"] == 2)].iloc[0]
    a = df[(df["strategy"] == "TICKET-RESET") & (df["domain"] == "books") & (df["round"] == 2)]
    b = df[(df["strategy"] == "TICKET-RANDOM") & (df["domain"] == "books") & (df["round"] == 2)]
    d = a.sort_values("seed")["test_acc"].to_numpy() - b.sort_values("seed")["test_acc"].to_numpy()
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert row["n"] == 3
    assert row["mean_diff"] == pytest.approx(d.mean())
    assert row["ci_low"] == pytest.approx(lo)
    assert row["ci_high"] == pytest.approx(hi)
    # round 0 is the same network for both strategies: zero difference, zero width
    r0 = diffs[(diffs["domain"] == "books") & (diffs["round"] == 0)].iloc[0]
    assert r0["mean_diff"] == 0 and r0["ci_low"] == pytest.approx(0)


def test_paired_differences_single_seed_has_no_interval():
    diffs = analysis.paired_differences(tickets_frame(seeds=(0,)), "TICKET-RESET", "TICKET-RANDOM")
    assert diffs["ci_low"].isna().all()
    assert analysis.diff_table(diffs, "domain")["95% CI low"].eq("n/a").all()


def test_transition_points_find_where_intervals_leave_zero():
    diffs = analysis.paired_differences(tickets_frame(rounds=4), "TICKET-RESET", "TICKET-RANDOM")
    points = analysis.transition_points(diffs[diffs["round"] > 0], "domain")
    # RESET gains 3 points per round on RANDOM with tiny noise: significant from round 1
    assert points.loc["books", "first sparsity with CI > 0"] == "35%"
    assert points.loc["books", "CI > 0 from there on"] == "35%"
    flipped = analysis.paired_differences(tickets_frame(rounds=4), "TICKET-RANDOM", "TICKET-RESET")
    assert analysis.transition_points(flipped, "domain").loc["books", "first sparsity with CI > 0"] == "none"


def test_phase_tables_survive_no_transfer_pairs():
    diffs = analysis.paired_differences(results_frame([]), "MASKS-RESET", "MASKS-RANDOM", group="pair")
    assert diffs.empty and "ci_low" in diffs.columns and "x" in diffs.columns
    assert analysis.transition_points(diffs, "pair").empty
    assert analysis.diff_table(diffs, "pair").empty


def test_spread_by_range_tables_std_in_points():
    table = analysis.spread_by_range(tickets_frame(rounds=9), ["TICKET-RESET", "TICKET-RANDOM"])
    assert list(table.columns) == [r.name for r in analysis.SPARSITY_RANGES]
    assert table.index.name == "std (pts) at sparsity"
    assert float(table.loc["TICKET-RESET", "0–90%"]) > 0


def test_target_frame_is_the_targets_own_reset_ticket():
    t = tickets_frame()
    pairs = [("books", "electronics"), ("electronics", "books")]
    target = analysis.target_frame(t, pairs)
    assert set(target["strategy"]) == {"TICKET-TARGET"}
    assert set(target["pair"]) == {"Books → Electronics", "Electronics → Books"}
    one = target[target["pair"] == "Books → Electronics"]
    assert set(one["domain"]) == {"electronics"} and set(one["source"]) == {"books"}
    own = t[(t["domain"] == "electronics") & (t["strategy"] == "TICKET-RESET")]
    assert sorted(one["test_acc"]) == sorted(own["test_acc"])
    assert analysis.target_frame(t, []).empty


def test_transfer_curves_use_targets_reset_as_ticket_target():
    t = tickets_frame()
    tr = transfer_frame()
    curves = analysis.transfer_curves(t, tr, [("books", "electronics")])
    assert set(curves["strategy"]) == {"TICKET-TARGET", "MASKS-RESET", "MASKS-RANDOM"}
    assert set(curves["pair"]) == {"Books → Electronics"}
    target = curves[(curves["strategy"] == "TICKET-TARGET") & (curves["round"] == 1)]["mean"].iloc[0]
    own = t[(t["domain"] == "electronics") & (t["strategy"] == "TICKET-RESET") & (t["round"] == 1)]
    assert target == pytest.approx(own["test_acc"].mean())
    with pytest.raises(ValueError, match="no transfer results"):
        analysis.transfer_curves(t, tr, [("electronics", "books")])


def test_transfer_overview_columns_name_the_ranges():
    curves = analysis.transfer_curves(tickets_frame(), transfer_frame(), [("books", "electronics")])
    overview = analysis.transfer_overview(curves)
    assert list(overview.columns) == [
        "MASKS-RESET − TARGET (≤ 90%)", "MASKS-RESET − TARGET (> 96%)",
        "MASKS-RANDOM − TARGET (≤ 90%)", "MASKS-RANDOM − TARGET (> 96%)"]
    assert overview.iloc[0, 1] == "n/a"  # 3 rounds do not pass 96%
