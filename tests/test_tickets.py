"""Ticket finding and transfer on real (smoke-sized) data: inits, masks, resume, errors."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lottery import config, tickets
from lottery.masks import apply_mask, full_mask, keep_count
from lottery.store import RunStore, load_tensors

REPO = Path(__file__).resolve().parents[1]
SETTINGS = config.override(config.get_profile("smoke"), **{"prune.rounds": 2, "train.max_epochs": 1})


@pytest.fixture
def starts(monkeypatch):
    """Record the masked weights every training round starts from."""
    seen = []
    real = tickets.train_masked

    def spy(model, mask, *args, **kwargs):
        apply_mask(model, mask)
        seen.append(({k: v.clone() for k, v in model.state_dict().items()}, mask))
        return real(model, mask, *args, **kwargs)
    monkeypatch.setattr(tickets, "train_masked", spy)
    return seen


def _metrics_without_time(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_reset_starts_from_theta0_times_mask_and_random_does_not(mirror, tmp_path, starts):
    store = RunStore(tmp_path)
    rows = tickets.find_tickets(SETTINGS, "books", 0, ["reset", "random"], store)
    run = store.run("tickets", tickets.ticket_key(SETTINGS, "books", 0))
    theta0 = load_tensors(run.path / "theta0.pt")
    assert len(starts) == 1 + 2 + 2
    full_state, full = starts[0]
    assert all(torch.equal(full_state[k], theta0[k] * full[k] if k in full else theta0[k]) for k in theta0)
    for state, mask in starts[1:3]:                               # TICKET-RESET rounds
        for k in theta0:
            expected = theta0[k] * mask[k] if k in mask else theta0[k]
            assert torch.equal(state[k], expected), k
    for state, mask in starts[3:5]:                               # TICKET-RANDOM rounds
        w = state["convs.0.weight"][mask["convs.0.weight"]]
        assert not torch.equal(w, theta0["convs.0.weight"][mask["convs.0.weight"]])
        bound = (6 / state["convs.0.weight"][0].numel()) ** 0.5
        assert w.abs().max() <= bound
        emb = state["embedding.weight"][mask["embedding.weight"]]
        assert abs(emb.std().item() - 1) < 0.1                     # fresh N(0, 1) draws
    assert [(r["strategy"], r["round"]) for r in rows] == [(s, r) for s in ("TICKET-RESET", "TICKET-RANDOM") for r in (0, 1, 2)]


def test_masks_follow_the_layerwise_schedule(mirror, tmp_path):
    store = RunStore(tmp_path)
    rows = tickets.find_tickets(SETTINGS, "books", 0, ["reset", "random_pruning"], store)
    run = store.run("tickets", tickets.ticket_key(SETTINGS, "books", 0))
    reference = run.tensors("full/round_00", "mask")
    for strategy in ("reset", "random_pruning"):
        prev = reference
        for r in (1, 2):
            mask = run.tensors(f"{strategy}/round_{r:02d}", "mask")
            assert all(v.dtype == torch.bool for v in mask.values())
            for name in mask:
                assert int(mask[name].sum()) == keep_count(int(prev[name].sum()), 0.5)
                assert not (mask[name] & ~prev[name]).any()         # nested
            prev = mask
    sparsity = {(r["strategy"], r["round"]): r["sparsity"] for r in rows}
    assert sparsity[("TICKET-RESET", 2)] == pytest.approx(config.sparsity_after(0.5, 2), abs=1e-3)
    assert sparsity[("TICKET-RESET", 2)] == sparsity[("RANDOM-PRUNING", 2)]
    reset2 = run.tensors("reset/round_02", "mask")
    random2 = run.tensors("random_pruning/round_02", "mask")
    assert not torch.equal(reset2["embedding.weight"], random2["embedding.weight"])


def test_rerun_skips_finished_rounds_and_extends(mirror, tmp_path, starts):
    store = RunStore(tmp_path)
    short = config.override(SETTINGS, **{"prune.rounds": 1})
    first = tickets.find_tickets(short, "books", 0, ["reset"], store)
    assert len(starts) == 2
    again = tickets.find_tickets(short, "books", 0, ["reset"], store)
    assert len(starts) == 2 and again == first                    # nothing retrained
    longer = tickets.find_tickets(SETTINGS, "books", 0, ["reset"], store)
    assert len(starts) == 3 and longer[:2] == first               # only round 2 is new


def test_transfer_reuses_source_masks_and_theta0(mirror, tmp_path, starts):
    store = RunStore(tmp_path)
    rows = tickets.transfer_tickets(SETTINGS, "books", "electronics", 0, "masks_reset", store)
    src = store.run("tickets", tickets.ticket_key(SETTINGS, "books", 0))
    theta0 = load_tensors(src.path / "theta0.pt")
    transfer_starts = starts[-2:]
    for r, (state, mask) in zip((1, 2), transfer_starts):
        source_mask = src.tensors(f"reset/round_{r:02d}", "mask")
        assert all(torch.equal(mask[k], source_mask[k]) for k in mask)
        assert torch.equal(state["hidden.weight"], theta0["hidden.weight"] * mask["hidden.weight"])
    assert [(r["source"], r["target"], r["domain"], r["strategy"]) for r in rows] == \
        [("books", "electronics", "electronics", "MASKS-RESET")] * 2
    n = len(starts)
    rand = tickets.transfer_tickets(SETTINGS, "books", "electronics", 0, "masks_random", store)
    assert len(starts) == n + 2                                   # source tickets not retrained
    assert [r["sparsity"] for r in rand] == [r["sparsity"] for r in rows]


def test_invalid_settings_give_clear_errors(mirror, tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ValueError, match="prune_fraction_per_round"):
        tickets.run_tickets(config.override(SETTINGS, **{"prune.prune_fraction_per_round": 1.0}), store=store)
    with pytest.raises(ValueError, match="rounds"):
        tickets.run_tickets(config.override(SETTINGS, **{"prune.rounds": -1}), store=store)
    with pytest.raises(ValueError, match="garden"):
        tickets.run_tickets(SETTINGS, domains=["garden"], store=store)
    with pytest.raises(ValueError, match="not among this profile's domains"):
        tickets.run_tickets(SETTINGS, domains=["music"], store=store)
    with pytest.raises(ValueError, match="source and target must differ"):
        tickets.run_transfer(SETTINGS, pairs=[("books", "Books")], store=store)
    with pytest.raises(ValueError, match="unknown strategy"):
        tickets.run_tickets(SETTINGS, strategies=["lucky"], store=store)
    with pytest.raises(ValueError, match="unknown setting"):
        config.override(SETTINGS, **{"prune.p": 0.2})


def test_results_table_is_tidy(mirror, tmp_path):
    df = tickets.run_tickets(SETTINGS, seeds=[0], strategies=["reset"], progress=False, store=RunStore(tmp_path))
    assert list(df.columns) == tickets.RESULT_COLUMNS
    assert sorted(df["round"]) == [0, 0, 1, 1, 2, 2] and set(df.domain) == {"books", "electronics"}
    assert df.test_acc.between(0, 1).all()


def _cli(store, *extra):
    cmd = [sys.executable, "-m", "lottery.cli", "tickets", "--profile", "smoke", "--set", "prune.rounds=3",
           "--domains", "books", "--seeds", "0", "--strategies", "reset", "random", "--workers", "1",
           "--quiet", "--runs", str(store), *extra]
    return cmd


def test_sigkill_at_any_moment_resumes_to_the_same_numbers(mirror, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(_cli(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list(killed.glob("tickets-*/reset/round_01/metrics.json")):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "first round never finished"
        time.sleep(0.05)
    time.sleep(0.3)                                               # somewhere inside a later round
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = next(killed.glob("tickets-*"))
    finished_before = sorted(p.parent.name for p in run_dir.glob("*/round_*/metrics.json"))
    assert len(finished_before) < 7, "the run finished before it was killed"
    for cmd_store in (killed, clean):
        subprocess.run(_cli(cmd_store), env=env, check=True, capture_output=True)
    store_k, store_c = RunStore(killed), RunStore(clean)
    key = tickets.ticket_key(config.override(config.get_profile("smoke"), **{"prune.rounds": 3}), "books", 0)
    rows = [tickets.ticket_rows(s.run("tickets", key), 3, ["reset", "random"]) for s in (store_k, store_c)]
    assert len(rows[0]) == 8
    assert _metrics_without_time(rows[0]) == _metrics_without_time(rows[1])
    leftovers = [p for p in run_dir.rglob("*") if ".tmp" in p.name]
    assert leftovers == [] or all(not (p / "metrics.json").exists() for p in leftovers)


def test_stacked_strategies_match_separate_training(mirror, tmp_path):
    """train.stack_strategies trains a round's strategies as one model: same masks for
    round 1 (from the shared round 0), float-tolerance equal metrics, its own run hash."""
    stacked = config.override(SETTINGS, **{"train.stack_strategies": True})
    assert tickets.ticket_key(stacked, "books", 0) != tickets.ticket_key(SETTINGS, "books", 0)
    store = RunStore(tmp_path)
    strategies = ["reset", "random", "random_pruning"]
    alone = tickets.find_tickets(SETTINGS, "books", 0, strategies, store)
    together = tickets.find_tickets(stacked, "books", 0, strategies, store)
    assert [(r["strategy"], r["round"]) for r in together] == [(r["strategy"], r["round"]) for r in alone]
    n_val = SETTINGS.data.n_val
    for a, b in zip(alone, together):
        assert a["sparsity"] == b["sparsity"]
        assert abs(a["val_acc"] - b["val_acc"]) <= 2 / n_val, (a, b)
    run_a = store.run("tickets", tickets.ticket_key(SETTINGS, "books", 0))
    run_b = store.run("tickets", tickets.ticket_key(stacked, "books", 0))
    for s in strategies:   # round 1 masks come from the same round-0 weights
        ma, mb = run_a.tensors(f"{s}/round_01", "mask"), run_b.tensors(f"{s}/round_01", "mask")
        assert all(torch.equal(ma[k], mb[k]) for k in ma)
        final = run_b.tensors(f"{s}/round_02", "mask")
        assert sum(int(m.sum()) for m in final.values()) < sum(int(m.sum()) for m in mb.values())
    again = tickets.find_tickets(stacked, "books", 0, strategies, store)   # a re-run reads the stored rounds
    assert _metrics_without_time(again) == _metrics_without_time(together)
