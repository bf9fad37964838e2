"""The analyses on synthetic results: curves, tables, gaps, paired t-intervals."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from lottery.engine.results import results_frame
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
    full = curves[(curves["strategy"] == "full") & (curves["domain"] == "books")]
    assert sorted(full["round"]) == [0, 1, 2, 3]
    assert full["mean"].nunique() == 1
    r0 = df[(df["domain"] == "books") & (df["strategy"] == "reset") & (df["round"] == 0)]
    assert full["mean"].iloc[0] == pytest.approx(r0["test_acc"].mean())
    row = curves[(curves["strategy"] == "random") & (curves["domain"] == "books")
                 & (curves["round"] == 2)].iloc[0]
    raw = df[(df["strategy"] == "random") & (df["domain"] == "books") & (df["round"] == 2)]
    assert row["mean"] == pytest.approx(raw["test_acc"].mean())
    assert row["std"] == pytest.approx(raw["test_acc"].std(ddof=1))
    assert row["lo"] == pytest.approx(row["mean"] - row["std"])
    assert row["x"] == pytest.approx(-math.log10(1 - row["sparsity"]))
    assert full["x"].tolist() == pytest.approx([-math.log10(1 - s) for s in full["sparsity"]])
    assert set(curves["name"]) == {"Books", "Electronics"}


def test_accuracy_table_prints_mean_pm_std():
    curves = analysis.ticket_curves(tickets_frame())
    table = analysis.accuracy_table(curves, "name", ["reset", "random"],
                                    facet_title="domain")
    assert list(table.columns) == ["TICKET-RESET", "TICKET-RANDOM"]
    assert table.index.names == ["domain", "round", "sparsity"]
    assert table.loc[("Books", 1, "35%"), "TICKET-RESET"].count(" ± ") == 1
    assert "at chance" not in table.loc[("Books", 1, "35%"), "TICKET-RESET"]
    df = tickets_frame()
    hit = (df["domain"] == "books") & (df["strategy"] == "random") & (df["round"] == 2)
    df.loc[hit & (df["seed"] < 2), "test_acc"] = 0.5          # two networks collapse
    table = analysis.accuracy_table(analysis.ticket_curves(df), "name", ["random"])
    assert table.loc[("Books", 2, "58%"), "TICKET-RANDOM"].endswith("(2 at chance)")


def test_strategy_gaps_by_named_range():
    curves = analysis.ticket_curves(tickets_frame(rounds=9))  # 0.35 x 9 rounds: 97.9%
    gaps = analysis.strategy_gaps(curves, "reset", "random")
    assert set(gaps) == set(analysis.SPARSITY_RANGES)
    assert gaps[analysis.MODERATE] > 0 and gaps[analysis.EXTREME] > gaps[analysis.MODERATE]
    shallow = analysis.strategy_gaps(analysis.ticket_curves(tickets_frame()), "reset", "random")
    assert math.isnan(shallow[analysis.EXTREME])  # 3 rounds reach 72.5%
    assert analysis.strategy_gaps(curves, "reset", "masks_reset") == {}


def test_ticket_overview_per_domain():
    overview = analysis.ticket_overview(analysis.ticket_curves(tickets_frame()))
    assert list(overview.index) == ["Books", "Electronics"]
    assert overview.loc["Books", "matches FULL-MODEL up to"] == "73%"  # RESET only gains
    assert overview.loc["Books", "last round sparsity"] == "73%"


def test_paired_differences_match_scipy_t_interval():
    df = tickets_frame()
    diffs = analysis.paired_differences(df, "reset", "random")
    row = diffs[(diffs["domain"] == "books") & (diffs["round"] == 2)].iloc[0]
    a = df[(df["strategy"] == "reset") & (df["domain"] == "books") & (df["round"] == 2)]
    b = df[(df["strategy"] == "random") & (df["domain"] == "books") & (df["round"] == 2)]
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
    diffs = analysis.paired_differences(tickets_frame(seeds=(0,)), "reset", "random")
    assert diffs["ci_low"].isna().all()
    assert analysis.diff_table(diffs, "domain")["95% CI low"].eq("n/a").all()


def test_transition_points_find_where_intervals_leave_zero():
    diffs = analysis.paired_differences(tickets_frame(rounds=4), "reset", "random")
    points = analysis.transition_points(diffs[diffs["round"] > 0], "domain")
    # RESET gains 3 points per round on RANDOM with tiny noise: significant from round 1
    assert points.loc["books", "first sparsity with CI > 0"] == "35%"
    assert points.loc["books", "CI > 0 from there on"] == "35%"
    flipped = analysis.paired_differences(tickets_frame(rounds=4), "random", "reset")
    assert analysis.transition_points(flipped, "domain").loc["books", "first sparsity with CI > 0"] == "none"


def test_phase_tables_survive_no_transfer_pairs():
    diffs = analysis.paired_differences(results_frame([]), "masks_reset", "masks_random", group="pair")
    assert diffs.empty and "ci_low" in diffs.columns and "x" in diffs.columns
    assert analysis.transition_points(diffs, "pair").empty
    assert analysis.diff_table(diffs, "pair").empty


def test_spread_by_range_tables_std_in_points():
    table = analysis.spread_by_range(tickets_frame(rounds=9), ["reset", "random"])
    assert list(table.columns) == [r.name for r in analysis.SPARSITY_RANGES]
    assert table.index.name == "std (pts) at sparsity"
    assert float(table.loc["TICKET-RESET", "0–90%"]) > 0


def test_target_frame_is_the_targets_own_reset_ticket():
    t = tickets_frame()
    pairs = [("books", "electronics"), ("electronics", "books")]
    target = analysis.target_frame(t, pairs)
    assert set(target["strategy"]) == {"target"}
    assert set(target["pair"]) == {"Books → Electronics", "Electronics → Books"}
    one = target[target["pair"] == "Books → Electronics"]
    assert set(one["domain"]) == {"electronics"} and set(one["source"]) == {"books"}
    own = t[(t["domain"] == "electronics") & (t["strategy"] == "reset")]
    assert sorted(one["test_acc"]) == sorted(own["test_acc"])
    assert analysis.target_frame(t, []).empty


def test_transfer_curves_use_targets_reset_as_ticket_target():
    t = tickets_frame()
    tr = transfer_frame()
    curves = analysis.transfer_curves(t, tr, [("books", "electronics")])
    assert set(curves["strategy"]) == {"target", "masks_reset", "masks_random"}
    assert set(curves["pair"]) == {"Books → Electronics"}
    target = curves[(curves["strategy"] == "target") & (curves["round"] == 1)]["mean"].iloc[0]
    own = t[(t["domain"] == "electronics") & (t["strategy"] == "reset") & (t["round"] == 1)]
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


def test_frames_carry_keys_and_print_labels():
    df = tickets_frame()
    assert set(df["strategy"]) == {"reset", "random", "random_pruning"}
    curves = analysis.ticket_curves(df)
    assert set(curves["strategy"]) == {"full", "reset", "random", "random_pruning"}
    diffs = analysis.paired_differences(df, "reset", "random")
    assert set(diffs["comparison"]) == {"TICKET-RESET − TICKET-RANDOM"}
    assert list(analysis.ticket_overview(curves).columns[:2]) == ["FULL-MODEL", "best TICKET-RESET"]


def test_one_full_model_builder_for_curves_and_contrasts():
    from lottery.stats import inference

    df = tickets_frame()
    curves = analysis.ticket_curves(df)
    per_seed = inference.with_full_model(df)
    full = per_seed[per_seed["strategy"] == "full"]
    reset = df[(df["strategy"] == "reset")]
    assert sorted(full["round"].unique()) == [1, 2, 3]      # every pruned round, per seed
    for (d, r), g in full.groupby(["domain", "round"]):
        r0 = reset[(reset["domain"] == d) & (reset["round"] == 0)]
        assert sorted(g["test_acc"]) == sorted(r0["test_acc"])
        line = curves[(curves["strategy"] == "full") & (curves["domain"] == d) & (curves["round"] == r)]
        assert line["mean"].iloc[0] == pytest.approx(g["test_acc"].mean())
        own = reset[(reset["domain"] == d) & (reset["round"] == r)]
        assert sorted(g["sparsity"]) == sorted(own["sparsity"])


def test_rows_stored_with_labels_are_read_back_with_keys(tmp_path):
    """Run stores written before rows carried keys hold labels ("TICKET-RESET"): they are
    read as keys, from the same run folders."""
    from lottery.engine.jobs import TicketChain, TransferChain, step_name, transfer_step
    from lottery.engine.store import RunStore
    from lottery.experiment import validate as experiment

    s = experiment.from_profile("smoke", {"prune.rounds": 2})
    store = RunStore(tmp_path)
    row = {"procedure": "tickets", "domain": "books", "source": "books", "target": "books", "seed": 0,
           "sparsity": 0.0, "val_acc": 0.7, "test_acc": 0.7, "epochs": 1, "epochs_run": 1, "seconds": 1.0}
    chain = TicketChain(s, "books", 0, ("reset",))
    run = chain.run_dir(store)
    run.write_step(step_name("full", 0), {**row, "strategy": "FULL-MODEL", "round": 0})
    for r in (1, 2):
        run.write_step(step_name("reset", r), {**row, "strategy": "TICKET-RESET", "round": r})
    rows = chain.stored_rows(store)
    assert [(r["strategy"], r["round"]) for r in rows] == [("reset", 0), ("reset", 1), ("reset", 2)]
    assert run.metrics(step_name("reset", 1))["strategy"] == "TICKET-RESET"   # files unchanged
    moved = TransferChain(s, "books", "electronics", 0, "masks_reset")
    for r in moved.rounds:
        moved.run_dir(store).write_step(transfer_step(r), {**row, "procedure": "transfer",
                                                           "strategy": "MASKS-RESET", "round": r})
    assert {r["strategy"] for r in moved.stored_rows(store)} == {"masks_reset"}
    df = results_frame([{**row, "strategy": "TICKET-RESET", "round": 1},
                        {**row, "strategy": "random", "round": 1},
                        {**row, "strategy": "random_pruning", "round": 1}])
    # keys, listed in the order of their labels (RANDOM-PRUNING, TICKET-RANDOM, TICKET-RESET)
    assert list(df["strategy"]) == ["random_pruning", "random", "reset"]
