"""Fast tests of the book layer: chapter settings, analyses, renderer, golden copies, CLI.

No chapter is executed here (see test_book_build.py for that).
"""

from __future__ import annotations

import json
import math

import nbformat
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lottery import book, cli, config, plots


# ------------------------------------------------------------------ chapter settings
def test_chapter_settings_defaults_follow_the_profile():
    run = book.chapter_settings("smoke")
    smoke = config.get_profile("smoke")
    assert run.settings == smoke
    assert run.domains == smoke.data.domains
    assert run.seeds == smoke.seeds
    assert run.pairs == smoke.transfer_pairs
    assert run.sparsities[-1] == pytest.approx(
        config.sparsity_after(smoke.prune.prune_fraction_per_round, smoke.prune.rounds))


def test_chapter_settings_overrides_and_selection():
    run = book.chapter_settings("course", domains=["Books", "CDs"], seeds=[1], rounds=4,
                                max_epochs=2, overrides={"train.lr": 3e-4})
    assert run.domains == ("books", "music")
    assert run.seeds == (1,)
    assert run.settings.prune.rounds == 4
    assert run.settings.train.max_epochs == 2
    assert run.settings.train.lr == 3e-4
    # selecting domains does not change the settings (the shared vocabulary stays)
    assert run.settings.data == config.get_profile("course").data
    # the profile's pairs are kept only where both domains are selected
    assert all(a in run.domains and b in run.domains for a, b in run.pairs)


def test_chapter_settings_adds_domains_outside_the_profile():
    run = book.chapter_settings("smoke", domains=["dvd"])
    assert run.domains == ("dvd",)
    assert run.settings.data.domains == ("books", "electronics", "dvd")


@pytest.mark.parametrize("kwargs, name", [
    ({"profile": "huge"}, "profile"),
    ({"rounds": -1}, "rounds"),
    ({"rounds": "8"}, "rounds"),
    ({"max_epochs": 0}, "max_epochs"),
    ({"seeds": []}, "seeds"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"seeds": [0.5]}, "seeds"),
    ({"domains": []}, "domains"),
    ({"domains": ["atlantis"]}, "domains"),
    ({"pairs": [["books"]]}, "pairs"),
    ({"pairs": [["books", "books"]]}, "pairs"),
    ({"pairs": [["books", "dvd"]]}, "pairs"),  # dvd is not a smoke domain
    ({"overrides": {"train.nope": 1}}, "overrides"),
])
def test_chapter_settings_errors_name_the_parameter(kwargs, name):
    kwargs = {"profile": "smoke", **kwargs}
    with pytest.raises(ValueError, match=f"parameter '{name}'"):
        book.chapter_settings(**kwargs)


# ------------------------------------------------------------------ formatting
@pytest.mark.parametrize("s, text", [
    (0.0, "0%"), (0.35, "35%"), (1 - 0.65 ** 2, "58%"), (0.9, "90%"), (0.965, "96.5%"),
    (1 - 0.65 ** 11, "99.12%"), (1 - 0.5 ** 7, "99.22%"), (0.9998, "99.98%"), (float("nan"), "n/a"),
])
def test_sparsity_label(s, text):
    assert book.sparsity_label(s) == text


def test_pct_and_pts():
    assert book.pct(0.8123) == "81.2%"
    assert book.pts(-0.031) == "-3.1 pts"
    assert book.pts(float("nan")) == "n/a"


# ------------------------------------------------------------------ synthetic results
def _tickets_frame(seeds=(0, 1, 2), rounds=3, domains=("books", "electronics")):
    rng = np.random.default_rng(0)
    rows = []
    for d in domains:
        for seed in seeds:
            full = 0.8 + 0.01 * seed
            for strat, drift in (("TICKET-RESET", 0.01), ("TICKET-RANDOM", -0.02),
                                 ("RANDOM-PRUNING", -0.05)):
                for r in range(rounds + 1):
                    acc = full if r == 0 else full + drift * r + rng.normal(0, 0.003)
                    rows.append({"procedure": "tickets", "strategy": strat, "domain": d,
                                 "source": d, "target": d, "seed": seed, "round": r,
                                 "sparsity": config.sparsity_after(0.35, r),
                                 "val_acc": acc, "test_acc": acc, "epochs": 1, "seconds": 1.0})
    return pd.DataFrame(rows)


def _transfer_frame(pairs=(("books", "electronics"),), seeds=(0, 1, 2), rounds=3):
    rows = []
    for a, b in pairs:
        for seed in seeds:
            for strat, drift in (("MASKS-RESET", -0.01), ("MASKS-RANDOM", -0.03)):
                for r in range(1, rounds + 1):
                    acc = 0.78 + drift * r + 0.002 * seed
                    rows.append({"procedure": "transfer", "strategy": strat, "domain": b,
                                 "source": a, "target": b, "seed": seed, "round": r,
                                 "sparsity": config.sparsity_after(0.35, r), "val_acc": acc,
                                 "test_acc": acc, "epochs": 1, "seconds": 2.0})
    return pd.DataFrame(rows)


def test_ticket_curves_full_model_line_and_stats():
    df = _tickets_frame()
    curves = book.ticket_curves(df)
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
    assert set(curves["name"]) == {"Books", "Electronics"}


def test_accuracy_table_prints_mean_pm_std():
    curves = book.ticket_curves(_tickets_frame())
    table = book.accuracy_table(curves, "name", ["TICKET-RESET", "TICKET-RANDOM"],
                                facet_title="domain")
    assert list(table.columns) == ["TICKET-RESET", "TICKET-RANDOM"]
    assert table.index.names == ["domain", "round", "sparsity"]
    assert table.loc[("Books", 1, "35%"), "TICKET-RESET"].count(" ± ") == 1


def test_paired_differences_match_scipy_t_interval():
    df = _tickets_frame()
    diffs = book.paired_differences(df, "TICKET-RESET", "TICKET-RANDOM")
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
    diffs = book.paired_differences(_tickets_frame(seeds=(0,)), "TICKET-RESET", "TICKET-RANDOM")
    assert diffs["ci_low"].isna().all()
    assert book.diff_table(diffs, "domain")["95% CI low"].eq("n/a").all()


def test_transition_points_find_where_intervals_leave_zero():
    diffs = book.paired_differences(_tickets_frame(rounds=4), "TICKET-RESET", "TICKET-RANDOM")
    points = book.transition_points(diffs[diffs["round"] > 0], "domain")
    # RESET gains 3 points per round on RANDOM with tiny noise: significant from round 1
    assert points.loc["books", "first sparsity with CI > 0"] == "35%"
    assert points.loc["books", "CI > 0 from there on"] == "35%"
    flipped = book.paired_differences(_tickets_frame(rounds=4), "TICKET-RANDOM", "TICKET-RESET")
    assert book.transition_points(flipped, "domain").loc["books", "first sparsity with CI > 0"] == "none"


def test_phase_tables_survive_no_transfer_pairs():
    from lottery import tickets

    empty = tickets.results_frame([])
    diffs = book.paired_differences(empty, "MASKS-RESET", "MASKS-RANDOM", group="pair")
    assert diffs.empty and "ci_low" in diffs.columns
    assert book.transition_points(diffs, "pair").empty
    assert book.diff_table(diffs, "pair").empty


def test_transfer_curves_use_targets_reset_as_ticket_target():
    t = _tickets_frame()
    tr = _transfer_frame()
    curves = book.transfer_curves(t, tr, [("books", "electronics")])
    assert set(curves["strategy"]) == {"TICKET-TARGET", "MASKS-RESET", "MASKS-RANDOM"}
    assert set(curves["pair"]) == {"Books → Electronics"}
    target = curves[(curves["strategy"] == "TICKET-TARGET") & (curves["round"] == 1)]["mean"].iloc[0]
    own = t[(t["domain"] == "electronics") & (t["strategy"] == "TICKET-RESET") & (t["round"] == 1)]
    assert target == pytest.approx(own["test_acc"].mean())
    with pytest.raises(ValueError, match="no transfer results"):
        book.transfer_curves(t, tr, [("electronics", "books")])


def test_claims_verdicts_follow_the_data():
    run = book.chapter_settings("smoke", rounds=3)
    verdicts = book.claims(_tickets_frame(), _transfer_frame(), None, run)
    assert "verdict" in verdicts.columns
    by = verdicts["verdict"].to_dict()
    # synthetic RESET beats the full model by +1 pt per round: reproduced
    assert by["TICKET-RESET beats FULL-MODEL at 0–90% sparsity (Fig. 3)"] == "reproduced"
    # RESET and RANDOM differ by 3 pts per round: "similar below 96%" is not reproduced
    assert by["TICKET-RESET ≈ TICKET-RANDOM below 96% (Fig. 3)"] == "not reproduced"
    # 3 rounds reach 72.5%: the phase-transition claim cannot be tested
    assert by["Phase transition above 96%: RESET better and steadier than RANDOM (Fig. 3)"] \
        .startswith("not tested")
    counts = book.verdict_counts(verdicts)
    assert counts["n_claims"] == len(verdicts) == sum(
        counts[k] for k in ("n_reproduced", "n_partly", "n_not_reproduced", "n_untested"))
    assert counts["n_untested"] >= 1 and counts["n_not_reproduced"] >= 1
    deep = _tickets_frame(rounds=9)
    verdicts = book.claims(deep, _transfer_frame(rounds=9), None, book.chapter_settings("smoke"))
    assert verdicts.loc["Phase transition above 96%: RESET better and steadier than RANDOM "
                        "(Fig. 3)", "verdict"] != "not tested"


def test_claims_jsd_verdict():
    names = ["books", "electronics", "dvd", "music", "kitchen_housewares"]
    rows = []
    for a in names:
        for b in names:
            v = 0.0 if a == b else 10.0
            if {a, b} == {"electronics", "kitchen_housewares"}:
                v = 1.0
            if {a, b} == {"music", "kitchen_housewares"}:
                v = 50.0
            rows.append({"domain_a": a, "domain_b": b, "jsd": v / 1e5, "jsd_x1e5": v})
    jsd = pd.DataFrame(rows)
    run = book.chapter_settings("course")
    verdicts = book.claims(_tickets_frame(), None, jsd, run)
    assert verdicts.loc["Domain similarity (Fig. 1)", "verdict"] == "reproduced"
    assert "Electronics–Home" in verdicts.loc["Domain similarity (Fig. 1)", "this book"]


def test_jsd_table_and_extremes():
    rows = []
    for a in ("books", "electronics", "music"):
        for b in ("books", "electronics", "music"):
            v = 0.0 if a == b else {frozenset(("books", "electronics")): 3.0,
                                    frozenset(("books", "music")): 7.0,
                                    frozenset(("electronics", "music")): 5.0}[frozenset((a, b))]
            rows.append({"domain_a": a, "domain_b": b, "jsd": v / 1e5, "jsd_x1e5": v})
    jsd = pd.DataFrame(rows)
    table = book.jsd_table(jsd)
    assert list(table.index) == ["Books", "Electronics", "CDs"]
    assert table.loc["Books", "CDs"] == 7.0
    ex = book.jsd_extremes(jsd)
    assert set(ex["most_similar"]) == {"books", "electronics"}
    assert set(ex["least_similar"]) == {"books", "music"}
    assert ex["mean_jsd_x1e5"] == pytest.approx(5.0)


def test_length_distribution_shares_sum_to_one():
    hist = book.length_distribution({"books": [1, 30, 2000, 60], "music": [5]}, bin_width=25, cap=100)
    for _, g in hist.groupby("domain"):
        assert g["share"].sum() == pytest.approx(1.0)
    books = hist[hist["domain"] == "books"].set_index("bin_start")["count"]
    assert books[0] == 1 and books[25] == 1 and books[50] == 1
    assert books[75] == 1  # 2000 is beyond the cap: counted in the last bin
    assert books.index.max() == 75


def test_compute_summary_totals():
    t = _tickets_frame()  # 2 domains x 3 seeds; round 0 listed under 3 strategies
    out = book.compute_summary(t, _transfer_frame())
    assert out.loc["tickets", "trained subnetworks"] == len(t) - 2 * 2 * 3
    assert out.loc["total", "trained subnetworks"] == len(t) - 12 + len(_transfer_frame())
    assert out.loc["transfer", "training time (min)"] == pytest.approx(len(_transfer_frame()) * 2 / 60, abs=0.05)


# ------------------------------------------------------------------ charts
def test_offline_renderer_has_no_cdn_and_stable_ids():
    import altair as alt

    plots.use_offline_renderer()
    chart = alt.Chart(pd.DataFrame({"a": [1, 2]})).mark_point().encode(x="a:Q")
    bundle = plots.render_offline(chart.to_dict())
    html = bundle["text/html"]
    assert "vegaEmbed(" in html and "cdn" not in html.lower() and "http" not in html.split("spec")[0]
    assert plots.render_offline(chart.to_dict())["text/html"] == html  # deterministic id
    assert any(k.startswith("application/vnd.vegalite") for k in bundle)
    # the active renderer is ours: the chart's mime bundle carries our HTML
    mime = chart._repr_mimebundle_()
    mime = mime[0] if isinstance(mime, tuple) else mime
    assert "lottery-chart-" in mime["text/html"]


def test_vega_bundle_defines_globals_without_leaking_consts(tmp_path):
    path = plots.write_vega_bundle(tmp_path)
    text = path.read_text()
    assert text.lstrip().startswith("/*") and "(function () {" in text[:200]
    assert "window.vegaEmbed=" in text.replace(" ", "")
    assert text.rstrip().endswith("})();")


def test_sparsity_ticks_are_log_spaced_positions():
    spars = [config.sparsity_after(0.35, r) for r in range(21)]
    ticks = plots.sparsity_ticks(spars, max_ticks=9)
    assert len(ticks) <= 10 and ticks[0] == 0 and ticks[-1] == pytest.approx(plots.nines(spars[-1]), abs=1e-6)
    assert all(b > a for a, b in zip(ticks, ticks[1:]))


def test_accuracy_bands_spec_has_dropdown_tooltips_and_axis_labels():
    curves = book.ticket_curves(_tickets_frame())
    chart = plots.accuracy_bands(curves, facet="name", facet_title="domain",
                                 strategies=["FULL-MODEL", "TICKET-RESET"], title="t")
    spec = json.dumps(chart.to_dict())
    assert '"bind": {"input": "select"' in spec
    assert '"tooltip"' in spec
    assert "labelExpr" in spec and "pow(10, -datum.value)" in spec


# ------------------------------------------------------------------ chapters and goldens
def test_every_chapter_has_one_parameters_cell_with_profile():
    for ch in book.CHAPTERS:
        params = book.chapter_parameters(ch.name)
        assert params["profile"] == "course", ch.name
        assert all(v is None for k, v in params.items() if k != "profile"), ch.name
    assert set(book.EXECUTION_ORDER) == {c.name for c in book.CHAPTERS}


def test_check_parameters_rejects_unknown_names_and_bad_values():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['pairs'\] for chapter 'tickets'"):
        book.check_parameters("tickets", {"pairs": [["books", "electronics"]]})
    with pytest.raises(ValueError, match="parameter 'rounds'"):
        book.check_parameters("tickets", {"rounds": "eight"})
    with pytest.raises(ValueError, match="unknown chapter 'ticket'"):
        book.check_parameters("ticket", {})
    book.check_parameters("tickets", {"profile": "smoke", "domains": ["books"], "rounds": 2})


def test_cli_chapter_errors_are_one_line(capsys):
    with pytest.raises(SystemExit, match="unknown chapter 'nope'"):
        cli.main(["chapter", "nope"])
    with pytest.raises(SystemExit, match=r"unknown parameter\(s\) \['colour'\]"):
        cli.main(["chapter", "tickets", "-p", "colour", "1"])
    with pytest.raises(SystemExit, match="parameter 'seeds'"):
        cli.main(["chapter", "tickets", "-p", "seeds", "[]"])


def test_cli_chapter_list(capsys):
    assert cli.main(["chapter", "--list"]) == 0
    out = capsys.readouterr().out
    for ch in book.CHAPTERS:
        assert ch.name in out
    assert "rounds=None" in out


def test_kernel_runs_this_python():
    assert book.kernel_name() in ("python3", "lottery-book")


def test_golden_copy_strips_ignored_outputs_and_metadata(tmp_path):
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_code_cell("1 + 1", outputs=[nbformat.v4.new_output(
        "execute_result", data={"text/plain": "2"}, execution_count=1)])
    drop = nbformat.v4.new_code_cell("chart", metadata={"tags": [book.IGNORE_TAG]}, outputs=[
        nbformat.v4.new_output("display_data", data={"text/html": "<div>" + "x" * 10_000})])
    keep.metadata["papermill"] = {"duration": 1.0}
    nb.cells = [keep, drop]
    nb.metadata["papermill"] = {"parameters": {}}
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, str(path))
    golden = book.golden_copy(path)
    assert golden.cells[0].outputs[0]["data"]["text/plain"] == "2"
    assert golden.cells[1].outputs == []
    assert "papermill" not in golden.metadata and "papermill" not in golden.cells[0].metadata


def _code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"
            and "injected-parameters" not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("name", [c.name for c in book.CHAPTERS])
def test_golden_copies_match_the_chapter_sources(name):
    """The committed goldens must be regenerated when a chapter's code changes."""
    path = book.GOLDEN_DIR / f"{name}.ipynb"
    assert path.exists(), f"missing {path}; run `lottery book --update-golden`"
    golden = nbformat.read(str(path), as_version=4)
    assert _code_sources(golden) == _code_sources(book.read_chapter(name)), (
        f"{path.name} is out of date with notebooks/{book.chapter(name).source}; "
        "run `lottery book --update-golden`")
    injected = [c for c in golden.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
    assert path.stat().st_size < 200_000, "golden copies must stay small"
    for cell in golden.cells:
        for out in cell.get("outputs", []):
            assert "lottery-chart-" not in json.dumps(out.get("data", {})), \
                f"{name}: a chart output is in the golden copy (tag its cell {book.IGNORE_TAG})"
