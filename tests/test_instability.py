"""Instability analysis (issue 25): the interpolation path, the barrier, and the job on
smoke-sized data (stored, resumable, two copies from one start with different seeds).

Each test is written to fail under a specific bug (``tests/mutation_check.py I``):
I1 the interpolation does not apply the mask, I2 both copies share one seed, I3 transfer
instability takes the target's own masks, I4 the rewind copies start from θ0, I5 the
collapse table counts a split pair as both collapsed, I6 the plan counts an instability
step as one training, I7 transfer instability trains on the source's data.
"""

from pathlib import Path

import pandas as pd
import pytest
import torch

from lottery import config
from lottery.book import plan, stability
from lottery.engine import instability
from lottery.engine.instability import InstabilityJob, barrier, interpolate, path_alphas, path_errors
from lottery.engine.encoded import domain_data
from lottery.engine.jobs import TicketChain
from lottery.engine.masks import full_mask
from lottery.engine.model import init_model
from lottery.engine.starts import initial_model
from lottery.engine.store import RunStore
from lottery.experiment import selection, validate as experiment
from lottery.stats import instability as stats

SETTINGS = experiment.resolve(config.override(config.get_profile("smoke"), **{
    "prune.rounds": 2, "train.max_epochs": 1}))
ROUNDS = (0, 2)


def _spy(mp, seen):
    """Record what every instability training starts from and ends with."""
    real = instability.train_models

    def spy(models, masks, *args, seed, **kwargs):
        starts = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in models]
        results = real(models, masks, *args, seed=seed, **kwargs)
        seen.extend({"start": s, "mask": m, "seed": seed, "state": r.state, "train": args[0]}
                    for s, m, r in zip(starts, masks, results))
        return results
    mp.setattr(instability, "train_models", spy)


@pytest.fixture(scope="module")
def measured(mirror, tmp_path_factory):
    """One job (TICKET-RANDOM, rounds 0 and 2) run once into a module store."""
    return _spied_run(tmp_path_factory, "instability-runs", InstabilityJob(SETTINGS, "books", 0, "random", ROUNDS, points=5))


def _spied_run(tmp_path_factory, name, job):
    """``job`` run once into a fresh store, its trainings recorded: (store, rows, seen)."""
    store = RunStore(tmp_path_factory.mktemp(name))
    seen: list = []
    with pytest.MonkeyPatch.context() as mp:
        _spy(mp, seen)
        rows = job.run(store)
    return store, rows, seen


@pytest.fixture
def trainings(monkeypatch):
    seen: list = []
    _spy(monkeypatch, seen)
    return seen


def _random_state_and_mask(seed: int):
    g = torch.Generator().manual_seed(seed)
    model = init_model(50, SETTINGS.model, seed, 0)
    state = {k: torch.randn(v.shape, generator=g) for k, v in model.state_dict().items()}
    mask = {k: torch.rand(m.shape, generator=g) < 0.3 for k, m in full_mask(model).items()}
    return state, mask


def test_barrier_is_the_peak_over_the_mean_of_the_endpoints():
    assert barrier([0.10, 0.30, 0.20]) == pytest.approx(0.30 - 0.15)
    assert barrier([0.2, 0.2, 0.2]) == 0.0
    assert barrier([0.1, 0.2]) == pytest.approx(0.05)         # a monotone path: the worse endpoint
    assert path_alphas(5) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_interpolated_networks_keep_pruned_weights_at_exactly_zero():
    a, mask = _random_state_and_mask(1)
    b, _ = _random_state_and_mask(2)          # pruned entries of a and b are far from 0
    for alpha in path_alphas(11):
        w = interpolate(a, b, alpha, mask)
        for name, t in w.items():
            if name in mask:
                assert torch.equal(t[~mask[name]], torch.zeros_like(t[~mask[name]])), (alpha, name)
                alive = mask[name]
                assert torch.allclose(t[alive], ((1 - alpha) * a[name] + alpha * b[name])[alive], atol=1e-6)
            else:                               # biases: not pruned, plain convex combination
                assert torch.allclose(t, (1 - alpha) * a[name] + alpha * b[name], atol=1e-6)
    start, end = interpolate(a, b, 0.0, mask), interpolate(a, b, 1.0, mask)
    for name in mask:                           # the endpoints are the masked networks exactly
        assert torch.equal(start[name], a[name] * mask[name]) and torch.equal(end[name], b[name] * mask[name])


def test_barrier_of_two_identical_networks_is_zero(mirror):
    data = domain_data(SETTINGS.data, SETTINGS.vocab, "books")
    model = init_model(data.vocab.size, SETTINGS.model, 3, data.vocab.pad_id)
    state, mask = model.state_dict(), full_mask(model)
    for alpha in path_alphas(7):                # a network interpolated with itself is itself
        w = interpolate(state, state, alpha, mask)
        assert all(torch.equal(w[k], state[k] * mask[k] if k in mask else state[k]) for k in state)
    errors = path_errors(state, state, mask, data, SETTINGS, path_alphas(7))
    assert len(set(errors)) == 1
    assert barrier(errors) == 0.0


def test_job_stores_a_path_whose_endpoints_are_the_two_copies(measured):
    store, rows, seen = measured
    assert [(r["strategy"], r["round"]) for r in rows] == [("random", 0), ("random", 2)]
    assert len(seen) == 2 * len(ROUNDS)
    for row in rows:
        assert row["alphas"] == [0.0, 0.25, 0.5, 0.75, 1.0] and len(row["test_error"]) == 5
        a, b = row["endpoint_acc"]
        assert row["test_error"][0] == pytest.approx(1 - a, abs=1e-12)
        assert row["test_error"][-1] == pytest.approx(1 - b, abs=1e-12)
        assert row["barrier"] == pytest.approx(barrier(row["test_error"]))
        assert row["barrier"] >= -1e-12
        assert row["test_acc"] == pytest.approx((a + b) / 2)
    assert rows[0]["sparsity"] == 0.0 and rows[1]["sparsity"] > 0.5
    run = InstabilityJob(SETTINGS, "books", 0, "random", ROUNDS, points=5).run_dir(store)
    assert run.path.name.startswith("instability-") and run.done("round_00") and run.done("round_02")


def test_copies_start_from_one_masked_init_with_different_seeds(measured):
    store, _, seen = measured
    tickets = TicketChain(SETTINGS, "books", 0, ("random",)).run_dir(store)
    for r, (a, b) in zip(ROUNDS, [seen[0:2], seen[2:4]]):
        assert all(torch.equal(a["start"][k], b["start"][k]) for k in a["start"])
        expected = tickets.tensors("full/round_00" if r == 0 else f"random/round_{r:02d}", "mask")
        assert all(torch.equal(m["mask"][k], expected[k]) for m in (a, b) for k in expected)
        assert a["seed"] != b["seed"]
        assert any(not torch.equal(a["state"][k], b["state"][k]) for k in a["state"])   # other SGD noise
    theta0 = tickets.load_file("theta0.pt")
    assert all(torch.equal(seen[0]["start"][k], theta0[k]) for k in theta0)     # round 0: the dense θ0
    assert not torch.equal(seen[2]["start"]["hidden.weight"], theta0["hidden.weight"])   # a fresh draw
    assert {s["seed"] for s in seen[0:2]} != {s["seed"] for s in seen[2:4]}


def test_rerun_trains_nothing_and_extends_by_a_round(measured, trainings):
    store, rows, _ = measured
    job = InstabilityJob(SETTINGS, "books", 0, "random", ROUNDS, points=5)
    assert job.stored_rows(store) == rows
    assert job.run(store) == rows and trainings == []
    more = InstabilityJob(SETTINGS, "books", 0, "random", (0, 1, 2), points=5).run(store)
    assert len(trainings) == 2 and [r["round"] for r in more] == [0, 1, 2]
    assert [more[0], more[2]] == rows


def test_run_key_differs_per_strategy_and_points(tmp_path):
    store = RunStore(tmp_path)
    base = InstabilityJob(SETTINGS, "books", 0, "random", (1,))
    paths = {base.path(store), InstabilityJob(SETTINGS, "books", 0, "reset", (1,)).path(store),
             InstabilityJob(SETTINGS, "books", 0, "random", (1,), points=21).path(store),
             InstabilityJob(SETTINGS, "books", 1, "random", (1,)).path(store)}
    assert len(paths) == 4
    assert InstabilityJob(SETTINGS, "books", 0, "random", (0, 2)).path(store) == base.path(store)
    assert base.path(store) != TicketChain(SETTINGS, "books", 0, ("random",)).path(store)
    assert not list(Path(tmp_path).iterdir())              # nothing created by planning
    with pytest.raises(ValueError):
        InstabilityJob(SETTINGS, "books", 0, "random", (3,))
    with pytest.raises(ValueError):
        InstabilityJob(SETTINGS, "books", 0, "masks_reset", (1,))


def test_run_instability_loads_the_stored_rows_and_the_stats_summarise_them(measured, trainings):
    store, rows, _ = measured
    df = instability.run_instability(SETTINGS, ["books"], [0], ["random"], ROUNDS, store=store, points=5)
    assert trainings == [] and list(df["round"]) == [0, 2]
    table = stats.barrier_table(df)
    flat = [any(abs(a - 0.5) <= 0.01 + 1e-12 for a in r["endpoint_acc"]) for r in rows]   # 0.49 is within
    assert list(table["n_collapsed"]) == [int(f) for f in flat]
    kept = table.dropna(subset=["barrier_pts"])
    assert list(kept["barrier_pts"]) == pytest.approx([100 * r["barrier"] for r, f in zip(rows, flat) if not f])


def test_barrier_table_averages_domains_within_a_seed_first():
    df = pd.DataFrame([{"strategy": "reset", "round": 1, "domain": d, "seed": s, "sparsity": 0.35,
                        "barrier": b, "endpoint_acc": [0.7, 0.72]} for d, s, b in [("books", 0, 0.00), ("dvd", 0, 0.02),
                                                      ("books", 1, 0.04), ("dvd", 1, 0.04),
                                                      ("books", 2, 0.01), ("dvd", 2, 0.01)]])
    table = stats.barrier_table(df)
    row = table.iloc[0]
    assert row["n_seeds"] == 3 and row["barrier_pts"] == pytest.approx(100 * (0.01 + 0.04 + 0.01) / 3)
    assert row["low_pts"] < row["barrier_pts"] < row["high_pts"]
    share = stats.stable(df)
    assert share.iloc[0]["stable_share"] == pytest.approx(2 / 3) and share.iloc[0]["n_seeds"] == 3


def test_collapsed_pairs_are_left_out_and_counted():
    """A collapsed copy answers one class: its path is flat and its barrier 0 says
    nothing about stability, so it must not count as a stable seed."""
    df = pd.DataFrame([{"strategy": "random", "round": 7, "domain": "books", "seed": s, "sparsity": 0.99,
                        "barrier": b, "endpoint_acc": acc}
                       for s, b, acc in [(0, 0.0, [0.5, 0.5]), (1, 0.10, [0.70, 0.71]), (2, 0.0, [0.505, 0.69])]])
    share = stats.stable(df).iloc[0]
    assert share["n_seeds"] == 1 and share["stable_share"] == 0 and share["n_collapsed"] == 2
    row = stats.barrier_table(df).iloc[0]
    assert row["barrier_pts"] == pytest.approx(10.0) and row["n_collapsed"] == 2


def test_the_rounds_around_96_percent_are_fixed_by_the_pruning_alone():
    assert stats.transition_rounds(0.5, 7) == (4, 5)        # course: 93.8% and 96.9%
    assert stats.transition_rounds(0.35, 20) == (7, 8)      # paper: 95.1% and 96.8%
    assert stats.transition_rounds(0.5, 3) is None          # never past 96%


def test_the_hypothesis_is_one_test_over_seeds_of_the_barrier_change():
    """Per seed: (RANDOM − RESET) above minus (RANDOM − RESET) below; a seed with a
    collapsed pair is left out; RANDOM unstable only past 96% is 'reproduced'."""
    rows = []
    for seed in range(6):
        for strategy, r, b in [("reset", 4, 0.01), ("random", 4, 0.02), ("reset", 5, 0.01), ("random", 5, 0.10)]:
            acc = [0.5, 0.5] if (seed == 5 and strategy == "random" and r == 5) else [0.7, 0.72]
            rows.append({"strategy": strategy, "round": r, "domain": "books", "seed": seed, "sparsity": 0.9,
                         "barrier": b + 0.001 * seed * (strategy == "random" and r == 5), "endpoint_acc": acc})
    test = stats.hypothesis_test(pd.DataFrame(rows), 4, 5, "Books")
    assert test.n == 5 and test.kind == "above"
    assert test.values == pytest.approx([0.08 + 0.001 * seed for seed in range(5)])
    assert stats.hypothesis_verdict(test) == "reproduced"
    flipped = pd.DataFrame(rows).assign(barrier=lambda d: -d["barrier"])
    assert stats.hypothesis_verdict(stats.hypothesis_test(flipped, 4, 5, "Books")) == "not reproduced"


# ------------------------------------------------------------------ TICKET-REWIND and transferred masks

@pytest.fixture(scope="module")
def rewound(mirror, tmp_path_factory):
    """TICKET-REWIND at round 2 (smoke: θ_k after prune.rewind_iterations = 3 steps)."""
    return _spied_run(tmp_path_factory, "rewind-runs", InstabilityJob(SETTINGS, "books", 0, "rewind", (2,), points=3))


def test_rewind_copies_start_from_theta_k_with_the_rewind_mask(rewound):
    store, rows, seen = rewound
    assert [(r["strategy"], r["round"]) for r in rows] == [("rewind", 2)] and len(seen) == 2
    tickets = TicketChain(SETTINGS, "books", 0, ("rewind",)).run_dir(store)
    k = SETTINGS.prune.rewind_iterations
    theta_k, theta0 = tickets.load_file(f"theta_k{k}.pt"), tickets.load_file("theta0.pt")
    mask = tickets.tensors("rewind/round_02", "mask")
    assert k > 0 and not torch.equal(theta_k["hidden.weight"], theta0["hidden.weight"])
    for copy in seen:
        assert all(torch.equal(copy["start"][n], theta_k[n]) for n in theta_k)
        assert all(torch.equal(copy["mask"][n], mask[n]) for n in mask)
    assert seen[0]["seed"] != seen[1]["seed"]
    assert rows[0]["barrier"] == pytest.approx(barrier(rows[0]["test_error"]))


@pytest.fixture(scope="module")
def transferred(mirror, tmp_path_factory):
    """MASKS-RESET and MASKS-RANDOM of Books' masks in Electronics, round 2; Electronics'
    own TICKET-RESET run is stored too, so that taking its masks would go unnoticed
    unless the masks are compared."""
    store = RunStore(tmp_path_factory.mktemp("transfer-instability-runs"))
    TicketChain(SETTINGS, "electronics", 0, ("reset",)).run(store)
    rows, seen = {}, {}
    for k in ("masks_reset", "masks_random"):
        seen[k] = []
        with pytest.MonkeyPatch.context() as mp:
            _spy(mp, seen[k])
            rows[k] = InstabilityJob(SETTINGS, "electronics", 0, k, (2,), points=3, source="books").run(store)
    return store, rows, seen


def test_transfer_instability_retrains_the_sources_masks_on_the_targets_data(transferred):
    store, rows, seen = transferred
    source = TicketChain(SETTINGS, "books", 0, ("reset",)).run_dir(store)
    target = TicketChain(SETTINGS, "electronics", 0, ("reset",)).run_dir(store)
    mask, own = source.tensors("reset/round_02", "mask"), target.tensors("reset/round_02", "mask")
    assert any(not torch.equal(mask[n], own[n]) for n in mask)       # the two domains' masks differ
    train = domain_data(SETTINGS.data, SETTINGS.vocab, "electronics").train
    for k in ("masks_reset", "masks_random"):
        assert len(seen[k]) == 2 and seen[k][0]["seed"] != seen[k][1]["seed"]
        for copy in seen[k]:
            assert all(torch.equal(copy["mask"][n], mask[n]) for n in mask)
            assert torch.equal(copy["train"].labels, train.labels)
            assert all(torch.equal(a, b) for a, b in zip(copy["train"].ids, train.ids))
        (row,) = rows[k]
        assert (row["procedure"], row["strategy"], row["source"], row["target"], row["domain"], row["round"]) == (
            "instability", k, "books", "electronics", "electronics", 2)
        assert row["test_error"][0] == pytest.approx(1 - row["endpoint_acc"][0], abs=1e-12)


def test_masks_reset_starts_from_the_sources_theta0_and_masks_random_from_a_fresh_draw(transferred):
    store, _, seen = transferred
    source = TicketChain(SETTINGS, "books", 0, ("reset",)).run_dir(store)
    theta0, mask = source.load_file("theta0.pt"), source.tensors("reset/round_02", "mask")
    for copy in seen["masks_reset"]:
        assert all(torch.equal(copy["start"][n], theta0[n]) for n in theta0)
    data = domain_data(SETTINGS.data, SETTINGS.vocab, "electronics")
    fresh = initial_model("masks_random", {"theta0": theta0}, data.vocab.size, data.vocab.pad_id,
                          SETTINGS.model, 0, 2).state_dict()
    for copy in seen["masks_random"]:
        assert all(torch.equal(copy["start"][n], fresh[n]) for n in fresh)
        assert all(not torch.equal(copy["start"][n][mask[n]], theta0[n][mask[n]]) for n in mask)


def test_transfer_instability_has_its_own_key_and_one_clear_error(tmp_path):
    store = RunStore(tmp_path)
    moved = InstabilityJob(SETTINGS, "electronics", 0, "masks_reset", (1,), source="books")
    assert moved.key["source"] == "books" and moved.key["target"] == "electronics"
    paths = {moved.path(store), InstabilityJob(SETTINGS, "electronics", 0, "masks_random", (1,), source="books").path(store),
             InstabilityJob(SETTINGS, "books", 0, "masks_reset", (1,), source="electronics").path(store),
             InstabilityJob(SETTINGS, "electronics", 0, "reset", (1,)).path(store)}
    assert len(paths) == 4 and all(p.name.startswith("instability-") for p in paths)
    assert not list(Path(tmp_path).iterdir())
    for kwargs, text in [({"strategy": "reset", "source": "books"}, "take no source"),
                         ({"strategy": "masks_reset"}, "need one"),
                         ({"strategy": "masks_random", "source": "electronics"}, "two different domains")]:
        with pytest.raises(ValueError, match=text):
            InstabilityJob(SETTINGS, "electronics", 0, rounds=(1,), **kwargs)
    with pytest.raises(ValueError, match=r"1\.\.2"):
        InstabilityJob(SETTINGS, "electronics", 0, "masks_reset", (0, 1), source="books")


# ------------------------------------------------------------------ collapses, mixed rows

def _pairs(strategy, r, accs, sparsity=0.97):
    return [{"strategy": strategy, "round": r, "domain": d, "seed": s, "sparsity": sparsity, "barrier": 0.01,
             "endpoint_acc": acc} for (d, s), acc in accs.items()]


def test_the_collapse_table_counts_split_pairs():
    df = pd.DataFrame(_pairs("random", 5, {("books", 0): [0.5, 0.5], ("books", 1): [0.5, 0.7],
                                           ("books", 2): [0.71, 0.495], ("books", 3): [0.7, 0.72],
                                           ("dvd", 3): [0.52, 0.5]})
                      + _pairs("reset", 5, {("books", s): [0.7, 0.71] for s in range(4)})
                      + _pairs("masks_random", 5, {("electronics", 0): [0.5, 0.68]}))
    table = stats.collapse_table(df).set_index("strategy")
    assert table.loc["random", ["pairs", "both", "split", "neither", "n_seeds"]].tolist() == [5, 1, 3, 1, 4]
    assert table.loc["reset", ["pairs", "both", "split", "neither", "n_seeds"]].tolist() == [4, 0, 0, 4, 4]
    assert table.loc["masks_random", ["both", "split", "neither"]].tolist() == [0, 1, 0]
    assert stats.collapse_table(df.iloc[:0]).empty
    every = stats.barrier_table(df[df["strategy"] == "masks_random"]).iloc[0]   # its only pair collapsed
    assert every["n_collapsed"] == 1 and every["sparsity"] == 0.97 and pd.isna(every["barrier_pts"])


def test_the_exploratory_collapse_share_is_paired_by_seed_past_96_percent():
    random = {("books", 0): [0.5, 0.7], ("dvd", 0): [0.7, 0.7], ("books", 1): [0.5, 0.5], ("dvd", 1): [0.5, 0.7],
              ("books", 2): [0.7, 0.7], ("dvd", 2): [0.7, 0.7], ("books", 9): [0.5, 0.7], ("dvd", 9): [0.5, 0.7]}
    reset = {(d, s): [0.7, 0.7] for d in ("books", "dvd") for s in (0, 1, 2)}
    reset[("books", 2)] = [0.5, 0.7]
    df = pd.DataFrame(_pairs("random", 5, random) + _pairs("reset", 5, reset)
                      + _pairs("random", 4, {("books", 0): [0.5, 0.5]}, sparsity=0.94))   # below 96%: ignored
    iv = stats.collapse_share(df, "random", "reset")
    assert iv.n == 3 and iv.mean == pytest.approx((0.5 + 1.0 - 0.5) / 3)      # seed 9 has no RESET pair
    table = stats.collapse_comparison(df)
    assert list(table["a"]) == ["random"] and table.iloc[0]["difference_pts"] == pytest.approx(100 * iv.mean)


def test_barrier_tables_keep_ticket_and_transfer_strategies_apart():
    rows = [{"strategy": k, "round": r, "domain": d, "seed": s, "sparsity": 0.9 + 0.01 * r,
             "barrier": b + 0.01 * s, "endpoint_acc": [0.7, 0.7]}
            for k, d, b in [("reset", "books", 0.0), ("random", "books", 0.05), ("masks_reset", "electronics", 0.02),
                            ("masks_random", "electronics", 0.08)]
            for s in range(3 if k.startswith("masks") else 4) for r in (4, 5)]
    table = stats.barrier_table(pd.DataFrame(rows)).set_index(["strategy", "round"])
    assert len(table) == 8
    assert table.loc[("masks_random", 5), "n_seeds"] == 3 and table.loc[("random", 4), "n_seeds"] == 4
    assert table.loc[("masks_random", 5), "barrier_pts"] == pytest.approx(100 * (0.08 + 0.01))
    assert table.loc[("reset", 4), "barrier_pts"] == pytest.approx(100 * 0.015)
    share = stats.stable(pd.DataFrame(rows)).set_index(["strategy", "round"])["stable_share"]
    assert share[("masks_reset", 4)] == pytest.approx(1 / 3) and share[("masks_random", 5)] == 0


# ------------------------------------------------------------------ the chapter's workload and the plan

def test_the_plan_counts_the_sections_default_jobs_with_two_trainings_per_step():
    """The plan's instability jobs are the section's defaults (the chapter calls
    stability.for_chapter with its parameters, whose defaults are None: tests/test_plan.py)."""
    run = selection.chapter_settings("course")
    jobs = stability.for_chapter(run, {k: None for k in stability.PARAMETERS}).jobs(run.settings)
    planned = [j for j, _ in plan.chains(run.settings, "instability", run.domains, run.ticket_seeds, run.pairs)
               if isinstance(j, InstabilityJob)]
    assert planned == jobs
    ticket = {(j.strategy, j.seed, j.rounds) for j in jobs if j.source is None}
    moved = {(j.strategy, j.source, j.domain, j.seed, j.rounds) for j in jobs if j.source is not None}
    assert ticket == {(k, s, (4, 5)) for k in ("reset", "random", "rewind") for s in range(10)}
    assert moved == {(k, "books", "electronics", s, (4, 5)) for k in ("masks_reset", "masks_random") for s in range(5)}
    steps = sum(len(j.rounds) for j in jobs)
    assert steps == 80 and plan.profile_networks(config.get_profile("course"))["phase"] == 2 * steps


def test_the_phase_chapters_cost_and_progress_follow_the_instability_parameters(tmp_path):
    run = selection.chapter_settings("smoke")
    store = RunStore(tmp_path / "runs")
    assert stability.for_chapter(run).rounds == (2, 3)    # smoke never reaches 96%: its last two rounds
    base = plan.cost(run, "phase", {}, store=store)
    more = plan.cost(run, "phase", {"instability_rounds": [1, 2, 3]}, store=store)
    # round 1 added: Books' RESET, RANDOM, REWIND x 2 seeds, Books -> Electronics' MASKS-* x 2 seeds,
    # two trainings each
    assert more.networks - base.networks == 2 * (3 * 2 + 2 * 2) == more.to_train - base.to_train
    weights = plan.chapter_trainings("smoke", "phase", {"instability_rounds": [1, 2, 3]}, store)
    assert sum(weights.values()) == more.networks
    assert sorted(n for p, n in weights.items() if "instability-" in str(p)) == [2] * 30
    none = plan.cost(run, "phase", {"instability_rounds": [1, 2, 3], "instability_transfer": []}, store=store)
    assert more.networks - none.networks == 2 * 2 * 2 * 3
    for bad, text in [({"instability_rounds": [4]}, "parameter 'instability_rounds'"),
                      ({"instability_transfer": ["books", "books"]}, "parameter 'instability_transfer'")]:
        with pytest.raises(ValueError, match=text):
            stability.for_chapter(run, bad)
    assert not (tmp_path / "runs").exists()
