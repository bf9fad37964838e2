"""Ticket finding and transfer on real (smoke-sized) data: inits, masks, resume, errors.

Each test here is written to fail under a specific engine bug (the closing note of the
architecture issue lists mutation → failing test).
"""

import os
from dataclasses import replace
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lottery import config
from lottery.config import strategies
from lottery.engine import jobs as procedures, results, runner, starts as start_fns
from lottery.engine.jobs import TicketChain, TransferChain, ticket_key
from lottery.engine.store import RunStore, load_tensors
from lottery.experiment import validate as experiment

REPO = Path(__file__).resolve().parents[1]
#: p = 0.35 (the paper's) so keep counts are odd and rounding matters; 2 rounds, 1 epoch.
SETTINGS = experiment.resolve(config.override(config.get_profile("smoke"), **{
    "prune.rounds": 2, "train.max_epochs": 1, "prune.prune_fraction_per_round": 0.35}))


@pytest.fixture
def starts(monkeypatch):
    """Record the weights and masks every training starts from, exactly as the engine
    passes them (the spy does not apply the mask: the training loop must)."""
    seen = []
    real = procedures.train_models

    def spy(models, masks, *args, **kwargs):
        for model, mask in zip(models, masks):
            seen.append(({k: v.detach().clone() for k, v in model.state_dict().items()}, mask))
        return real(models, masks, *args, **kwargs)
    monkeypatch.setattr(procedures, "train_models", spy)
    return seen


def _without_time(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _masked(state, mask):
    return {k: v * mask[k] if k in mask else v for k, v in state.items()}


def test_reset_starts_from_theta0_and_random_from_a_new_draw_each_round(mirror, tmp_path, starts):
    store = RunStore(tmp_path)
    rows = TicketChain(SETTINGS, "books", 0, ("reset", "random")).run(store)
    run = store.run("tickets", ticket_key(SETTINGS, "books", 0))
    theta0 = load_tensors(run.path / "theta0.pt")
    assert len(starts) == 1 + 2 + 2
    full_state, _ = starts[0]
    assert all(torch.equal(full_state[k], theta0[k]) for k in theta0)
    by = {}                                                       # (strategy, round) -> (state, mask)
    for (state, mask), key in zip(starts[1:], [("reset", 1), ("random", 1), ("reset", 2), ("random", 2)]):
        by[key] = (state, mask)
    for r in (1, 2):                                              # TICKET-RESET: θ0 exactly
        state, mask = by[("reset", r)]
        assert all(torch.equal(state[k], theta0[k]) for k in theta0)
        assert all(torch.equal(mask[k], run.tensors(f"reset/round_{r:02d}", "mask")[k]) for k in mask)
    for r in (1, 2):                                              # TICKET-RANDOM: fresh §4.3.1 draws
        state, mask = by[("random", r)]
        w = state["convs.0.weight"][mask["convs.0.weight"]]
        assert not torch.equal(w, theta0["convs.0.weight"][mask["convs.0.weight"]])
        assert w.abs().max() <= (6 / state["convs.0.weight"][0].numel()) ** 0.5
        emb = state["embedding.weight"][mask["embedding.weight"]]
        assert abs(emb.std().item() - 1) < 0.1
    m2 = by[("random", 2)][1]["hidden.weight"]                    # a new draw every round
    assert not torch.equal(by[("random", 1)][0]["hidden.weight"][m2], by[("random", 2)][0]["hidden.weight"][m2])
    assert [(r["strategy"], r["round"]) for r in rows] == [(s, r) for s in ("reset", "random")
                                                           for r in (0, 1, 2)]


def _exact_keep(alive: int, p: float) -> int:
    """ceil((1 - p) * alive) in exact integer arithmetic (p has two decimals)."""
    keep_pct = 100 - round(p * 100)
    return max(1, -(-alive * keep_pct // 100)) if alive else 0


def test_masks_follow_the_layerwise_schedule_with_exact_counts(mirror, tmp_path):
    store = RunStore(tmp_path)
    rows = TicketChain(SETTINGS, "books", 0, ("reset", "random", "random_pruning")).run(store)
    run = store.run("tickets", ticket_key(SETTINGS, "books", 0))
    reference = run.tensors("full/round_00", "mask")
    odd = 0
    for strategy in ("reset", "random", "random_pruning"):
        prev = reference
        for r in (1, 2):
            mask = run.tensors(f"{strategy}/round_{r:02d}", "mask")
            assert all(v.dtype == torch.bool for v in mask.values())
            for name in mask:                                     # layer by layer, rounded up
                alive = int(prev[name].sum())
                odd += alive % 2
                assert int(mask[name].sum()) == _exact_keep(alive, 0.35), (strategy, r, name)
                assert not (mask[name] & ~prev[name]).any()       # nested
            prev = mask
    assert odd > 0                                                # odd counts were exercised
    sparsity = {(r["strategy"], r["round"]): r["sparsity"] for r in rows}
    assert sparsity[("reset", 2)] == pytest.approx(config.sparsity_after(0.35, 2), abs=1e-3)
    assert sparsity[("reset", 2)] == sparsity[("random_pruning", 2)]
    reset2, control2 = run.tensors("reset/round_02", "mask"), run.tensors("random_pruning/round_02", "mask")
    assert not torch.equal(reset2["embedding.weight"], control2["embedding.weight"])
    weights1 = run.tensors("reset/round_01", "mask")              # magnitude: the largest survive
    trained = run.tensors("full/round_00", "weights")
    for name in ("hidden.weight", "convs.1.weight"):
        kept, dropped = trained[name][weights1[name]].abs(), trained[name][reference[name] & ~weights1[name]].abs()
        assert kept.min() >= dropped.max()


def test_rerun_skips_finished_rounds_and_extends(mirror, tmp_path, starts):
    store = RunStore(tmp_path)
    short = config.override(SETTINGS, **{"prune.rounds": 1})
    first = TicketChain(short, "books", 0, ("reset",)).run(store)
    assert len(starts) == 2
    again = TicketChain(short, "books", 0, ("reset",)).run(store)
    assert len(starts) == 2 and again == first                    # nothing retrained
    longer = TicketChain(SETTINGS, "books", 0, ("reset",)).run(store)
    assert len(starts) == 3 and longer[:2] == first               # only round 2 is new


def test_transfer_uses_the_source_masks_and_theta0(mirror, tmp_path, starts):
    store = RunStore(tmp_path)
    TicketChain(SETTINGS, "electronics", 0, ("reset",)).run(store)   # the target's own masks exist too
    n = len(starts)
    rows = TransferChain(SETTINGS, "books", "electronics", 0, "masks_reset").run(store)
    src = store.run("tickets", ticket_key(SETTINGS, "books", 0))
    tgt = store.run("tickets", ticket_key(SETTINGS, "electronics", 0))
    theta0 = load_tensors(src.path / "theta0.pt")
    transfer_starts = starts[-2:]
    assert len(starts) == n + 3 + 2                               # source tickets first, then 2 rounds
    for r, (state, mask) in zip((1, 2), transfer_starts):
        source_mask = src.tensors(f"reset/round_{r:02d}", "mask")
        target_mask = tgt.tensors(f"reset/round_{r:02d}", "mask")
        assert all(torch.equal(mask[k], source_mask[k]) for k in mask)
        assert not all(torch.equal(mask[k], target_mask[k]) for k in mask)
        assert all(torch.equal(state[k], theta0[k]) for k in theta0)
    assert [(r["source"], r["target"], r["domain"], r["strategy"]) for r in rows] == \
        [("books", "electronics", "electronics", "masks_reset")] * 2
    n = len(starts)
    rand = TransferChain(SETTINGS, "books", "electronics", 0, "masks_random").run(store)
    assert len(starts) == n + 2                                   # source tickets not retrained
    for state, mask in starts[-2:]:
        m = mask["hidden.weight"]
        assert not torch.equal(state["hidden.weight"][m], theta0["hidden.weight"][m])   # a fresh draw
    assert [r["sparsity"] for r in rand] == [r["sparsity"] for r in rows]


def test_transfer_rounds_train_only_the_chosen_rounds_with_the_same_numbers(mirror, tmp_path, starts):
    """A transfer round is an independent training: a subset gives the same numbers."""
    store = RunStore(tmp_path)
    every = TransferChain(SETTINGS, "books", "electronics", 0, "masks_reset").run(store)
    only = experiment.resolve(replace(SETTINGS, transfer_rounds=(2,)))
    other = RunStore(tmp_path / "other")
    n = len(starts)
    rows = TransferChain(only, "books", "electronics", 0, "masks_reset").run(other)
    assert len(starts) == n + 3 + 1                               # source chain, then round 2 only
    assert [r["round"] for r in rows] == [2]
    assert _without_time(rows) == _without_time(every[1:])
    with pytest.raises(ValueError, match="transfer_rounds"):
        experiment.resolve(replace(SETTINGS, transfer_rounds=(0,)))


def test_invalid_settings_give_clear_errors(mirror, tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ValueError, match="prune_fraction_per_round"):
        runner.run_tickets(config.override(SETTINGS, **{"prune.prune_fraction_per_round": 1.0}), store=store)
    with pytest.raises(ValueError, match="prune.rounds"):
        runner.run_tickets(config.override(SETTINGS, **{"prune.rounds": -1}), store=store)
    with pytest.raises(ValueError, match="train.max_epochs"):
        runner.run_tickets(config.override(SETTINGS, **{"train.max_epochs": "abc"}), store=store)
    with pytest.raises(ValueError, match="seeds must be a non-empty"):
        runner.run_tickets(config.override(SETTINGS, seeds=[]), store=store)
    with pytest.raises(ValueError, match="garden"):
        runner.run_tickets(SETTINGS, domains=["garden"], store=store)
    with pytest.raises(ValueError, match="not among this profile's domains"):
        runner.run_tickets(SETTINGS, domains=["music"], store=store)
    with pytest.raises(ValueError, match="not in data.domains"):
        runner.run_transfer(SETTINGS, pairs=[("books", "music")], store=store)
    with pytest.raises(ValueError, match="source and target must differ"):
        runner.run_transfer(SETTINGS, pairs=[("books", "Books")], store=store)
    with pytest.raises(ValueError, match="unknown tickets strategy"):
        runner.run_tickets(SETTINGS, strategies=["lucky"], store=store)
    with pytest.raises(ValueError, match="unknown setting"):
        config.override(SETTINGS, **{"prune.p": 0.2})


def test_domain_aliases_resolve_once_to_the_same_runs(mirror):
    a = experiment.resolve(config.override(SETTINGS, **{"data.domains": ["B", "Electronics"],
                                                        "transfer_pairs": [["B", "E"]]}))
    assert a.data.domains == ("books", "electronics") and a.transfer_pairs == (("books", "electronics"),)
    assert ticket_key(a, "books", 0) == ticket_key(SETTINGS, "books", 0)


def test_results_table_is_tidy(mirror, tmp_path):
    df = runner.run_tickets(SETTINGS, seeds=[0], strategies=["reset"], progress=False, store=RunStore(tmp_path))
    assert list(df.columns) == results.RESULT_COLUMNS
    assert sorted(df["round"]) == [0, 0, 1, 1, 2, 2] and set(df.domain) == {"books", "electronics"}
    assert df.test_acc.between(0, 1).all()


def test_the_control_runs_only_in_control_domains(mirror, tmp_path):
    s = config.override(SETTINGS, **{"control_domains": ["books"], "prune.rounds": 1})
    df = runner.run_tickets(s, seeds=[0], progress=False, store=RunStore(tmp_path))
    control = df[df["strategy"] == "random_pruning"]
    assert set(control["domain"]) == {"books"}
    assert set(df[df["strategy"] == "random"]["domain"]) == {"books", "electronics"}


def test_any_process_executor_gives_the_same_rows(mirror, tmp_path):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    s = config.override(SETTINGS, **{"prune.rounds": 1})
    inline = runner.run_tickets(s, seeds=[0], strategies=["reset"], progress=False, workers=1,
                                store=RunStore(tmp_path / "a"))
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        other = runner.run_tickets(s, seeds=[0], strategies=["reset"], progress=False,
                                   store=RunStore(tmp_path / "b"), executor=pool)
    cols = [c for c in results.RESULT_COLUMNS if c != "seconds"]
    assert inline[cols].equals(other[cols])
    with ThreadPoolExecutor(2) as pool, pytest.raises(ValueError, match="processes"):
        runner.run_tickets(s, seeds=[0], strategies=["reset"], progress=False,
                           store=RunStore(tmp_path / "c"), executor=pool)


def test_the_training_sets_its_own_thread_count(mirror, tmp_path):
    """Calling the library from a 2-thread process writes the same numbers (train.threads
    is applied by the training), and the thread setting is part of the run key."""
    s = config.override(SETTINGS, **{"prune.rounds": 1})
    rows = []
    for threads, folder in ((1, "a"), (2, "b")):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            rows.append(TicketChain(s, "books", 0, ("reset",)).run(RunStore(tmp_path / folder)))
        finally:
            torch.set_num_threads(before)
    assert _without_time(rows[0]) == _without_time(rows[1])
    two = config.override(s, **{"train.threads": 2})
    assert ticket_key(two, "books", 0) != ticket_key(s, "books", 0)


def _cli(store, entry=("-m", "lottery.cli.app")):
    return [sys.executable, *entry, "tickets", "--profile", "smoke", "--set", "prune.rounds=3",
            "--domains", "books", "--seeds", "0", "--strategies", "reset", "random", "--workers", "1",
            "--quiet", "--runs", str(store)]


@pytest.mark.parametrize("kill_at", ["1", "3:mid", "4", "6:mid"])
def test_a_kill_at_any_step_resumes_to_the_same_numbers(mirror, tmp_path, kill_at):
    """tests/kill_at.py runs the CLI with the run store's test seam set to SIGKILL it
    right after its N-th stored step (N:mid: while writing it). The resumed run must
    equal an uninterrupted one, bitwise."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.run(_cli(killed, [str(REPO / "tests" / "kill_at.py")]),
                          env={**env, "LOTTERY_TEST_KILL_AT": kill_at}, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    run_dir = next(killed.glob("tickets-*"))
    finished = list(run_dir.glob("*/round_*/metrics.json"))
    n, _, when = kill_at.partition(":")
    assert len(finished) == int(n) - (when == "mid")              # deterministic interruption point
    for store in (killed, clean):
        subprocess.run(_cli(store), env=env, check=True, capture_output=True)
    s = experiment.resolve(config.override(config.get_profile("smoke"), **{"prune.rounds": 3}))
    rows = [TicketChain(s, "books", 0, ("reset", "random")).stored_rows(RunStore(p)) for p in (killed, clean)]
    assert RunStore(killed).run("tickets", ticket_key(s, "books", 0)).path == run_dir
    assert len(rows[0]) == 8
    assert _without_time(rows[0]) == _without_time(rows[1])
    assert [p for p in run_dir.rglob("*") if ".tmp" in p.name and (p / "metrics.json").exists()] == []


def test_stacked_strategies_match_separate_training(mirror, tmp_path):
    """train.stack_strategies trains a round's strategies as one model: same masks for
    round 1 (from the shared round 0), float-tolerance equal metrics, its own run hash."""
    stacked = config.override(SETTINGS, **{"train.stack_strategies": True})
    assert ticket_key(stacked, "books", 0) != ticket_key(SETTINGS, "books", 0)
    store = RunStore(tmp_path)
    keys = ("reset", "random", "random_pruning")
    alone = TicketChain(SETTINGS, "books", 0, keys).run(store)
    together = TicketChain(stacked, "books", 0, keys).run(store)
    assert [(r["strategy"], r["round"]) for r in together] == [(r["strategy"], r["round"]) for r in alone]
    n_val = SETTINGS.data.n_val
    for a, b in zip(alone, together):
        assert a["sparsity"] == b["sparsity"]
        assert abs(a["val_acc"] - b["val_acc"]) <= 2 / n_val, (a, b)
    run_a = store.run("tickets", ticket_key(SETTINGS, "books", 0))
    run_b = store.run("tickets", ticket_key(stacked, "books", 0))
    for s in keys:   # round 1 masks come from the same round-0 weights
        ma, mb = run_a.tensors(f"{s}/round_01", "mask"), run_b.tensors(f"{s}/round_01", "mask")
        assert all(torch.equal(ma[k], mb[k]) for k in ma)
        final = run_b.tensors(f"{s}/round_02", "mask")
        assert sum(int(m.sum()) for m in final.values()) < sum(int(m.sum()) for m in mb.values())
    again = TicketChain(stacked, "books", 0, keys).run(store)   # a re-run reads the stored rounds
    assert _without_time(again) == _without_time(together)


def test_strategy_table_drives_the_engine():
    """Every trained strategy has an init and a mask rule the engine knows; labels are unique."""
    labels = [s.label for s in strategies.STRATEGIES]
    assert len(set(labels)) == len(labels)
    for s in strategies.STRATEGIES:
        assert s.init in start_fns.INITS
        if s.procedure == "tickets":
            assert s.mask in start_fns.MASKS
    assert strategies.keys("tickets") == ("reset", "random", "random_pruning", "rewind")
    assert strategies.keys("transfer") == ("masks_reset", "masks_random", "masks_rewind")


def test_narrowing_the_domains_drops_profile_defaults_but_checks_given_values():
    s = experiment.from_profile("course", {"data.domains": ["B", "H"]})
    assert s.data.domains == ("books", "kitchen_housewares")
    assert s.transfer_pairs == (("books", "kitchen_housewares"),) and s.control_domains == ("books",)
    with pytest.raises(ValueError, match="transfer_pairs: domain 'music' is not in data.domains"):
        experiment.from_profile("course", {"data.domains": ["B", "H"], "transfer_pairs": [["music", "books"]]})
    with pytest.raises(ValueError, match="train.threads must be an integer >= 1"):
        experiment.from_profile("course", {"train.threads": 0})


REWIND = experiment.resolve(config.override(SETTINGS, **{"prune.rewind_iterations": 3}))


def test_rewind_starts_from_theta_k_the_weights_after_k_steps_of_round_0(mirror, tmp_path, starts):
    store = RunStore(tmp_path)
    TicketChain(REWIND, "books", 0, ("reset", "rewind")).run(store)
    run = store.run("tickets", ticket_key(REWIND, "books", 0))
    theta0 = load_tensors(run.path / "theta0.pt")
    theta_k = load_tensors(run.path / "theta_k3.pt")
    assert not all(torch.equal(theta_k[k], theta0[k]) for k in theta0)
    # an independent capture of round 0 at step 3 (same seed: same batches and dropout)
    seen = []

    def capture(net):
        seen.append({n: t.detach().clone() for n, t in net.state_dict().items()})
    data = procedures.domain_data(REWIND.data, REWIND.vocab, "books")
    ref = procedures.full_mask(procedures.init_model(data.vocab.size, REWIND.model, 0, data.vocab.pad_id))
    procedures._train(REWIND, data, ["full"], [ref], {"theta0": theta0}, 0, 0, capture)
    assert all(torch.equal(seen[2][k], theta_k[k]) for k in theta_k)
    assert not all(torch.equal(seen[-1][k], theta_k[k]) for k in theta_k)   # not the end of round 0
    rewound = [st for st, _ in starts if all(torch.equal(st[k], theta_k[k]) for k in theta_k)]
    assert len(rewound) == REWIND.prune.rounds                      # every TICKET-REWIND round
    r1 = run.tensors("rewind/round_01", "mask")                     # round 1 prunes the full model,
    assert all(torch.equal(r1[k], run.tensors("reset/round_01", "mask")[k]) for k in r1)  # as RESET


def test_rewinding_past_round_0_is_refused_and_the_default_keeps_old_hashes(mirror, tmp_path):
    from lottery.engine.store import canonical

    assert "rewind_iterations" not in canonical(config.get_profile("course").prune)
    assert canonical(REWIND.prune)["rewind_iterations"] == 3
    too_far = experiment.resolve(config.override(SETTINGS, **{"prune.rewind_iterations": 10_000}))
    with pytest.raises(ValueError, match="rewind_iterations = 10000"):
        TicketChain(too_far, "books", 0, ("rewind",)).run(RunStore(tmp_path))


def test_masks_rewind_retrains_the_source_masks_from_the_source_theta_k(mirror, tmp_path, starts):
    store = RunStore(tmp_path)
    rows = TransferChain(REWIND, "books", "electronics", 0, "masks_rewind").run(store)
    src = store.run("tickets", ticket_key(REWIND, "books", 0))
    theta_k = load_tensors(src.path / "theta_k3.pt")
    for r, (state, mask) in zip((1, 2), starts[-2:]):
        assert all(torch.equal(state[k], theta_k[k]) for k in theta_k)
        source_mask = src.tensors(f"reset/round_{r:02d}", "mask")
        assert all(torch.equal(mask[k], source_mask[k]) for k in mask)
    assert [r["strategy"] for r in rows] == ["masks_rewind"] * 2
