"""Instability analysis (issue 25): the interpolation path, the barrier, and the job on
smoke-sized data (stored, resumable, two copies from one start with different seeds).

Each test is written to fail under a specific bug (``tests/mutation_check.py I``):
I1 the interpolation does not apply the mask, I2 both copies share one seed.
"""

from pathlib import Path

import pandas as pd
import pytest
import torch

from lottery import config
from lottery.engine import instability
from lottery.engine.instability import InstabilityJob, barrier, interpolate, path_alphas, path_errors
from lottery.engine.encoded import domain_data
from lottery.engine.jobs import TicketChain
from lottery.engine.masks import full_mask
from lottery.engine.model import init_model
from lottery.engine.store import RunStore
from lottery.experiment import validate as experiment
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
        seen.extend({"start": s, "mask": m, "seed": seed, "state": r.state}
                    for s, m, r in zip(starts, masks, results))
        return results
    mp.setattr(instability, "train_models", spy)


@pytest.fixture(scope="module")
def measured(mirror, tmp_path_factory):
    """One job (TICKET-RANDOM, rounds 0 and 2) run once into a module store."""
    store = RunStore(tmp_path_factory.mktemp("instability-runs"))
    seen: list = []
    with pytest.MonkeyPatch.context() as mp:
        _spy(mp, seen)
        rows = InstabilityJob(SETTINGS, "books", 0, "random", ROUNDS, points=5).run(store)
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
    flat = [any(abs(a - 0.5) <= 0.01 for a in r["endpoint_acc"]) for r in rows]
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
