"""The federated simulation (§7): payloads, masked FedAvg, byte counts, the run store,
and the Flower backend against the in-process one on real (smoke) ticket runs."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil

import numpy as np
import pytest
import torch

from lottery.config import ModelSettings
from lottery.engine.masks import full_mask
from lottery.engine.model import init_model
from lottery.experiment import validate as experiment
from lottery.federated import jobs as fr, protocol as fed


def _model_and_mask(density: float, seed: int = 0):
    model = init_model(300, ModelSettings(embed_dim=8, channels=4, hidden=4), seed, pad_id=0)
    mask = full_mask(model)
    g = torch.Generator().manual_seed(seed)
    mask = {n: m & (torch.rand(m.shape, generator=g) < density) for n, m in mask.items()}
    state = {n: (t * mask[n] if n in mask else t).clone() for n, t in model.state_dict().items()}
    return model, mask, state


@pytest.mark.parametrize("density", [0.5, 0.01])
def test_pack_sends_only_survivors_and_unpack_restores_the_state(density):
    _, mask, state = _model_and_mask(density)
    packed = fed.pack(state, mask)
    for n, t in state.items():
        expected = int(mask[n].sum()) if n in mask else t.numel()
        assert packed[n].size == expected and packed[n].dtype == np.float32
    back = fed.unpack(packed, mask, state)
    assert all(torch.equal(back[n], state[n]) for n in state)
    assert fed.nbytes(packed) == 4 * sum(v.size for v in packed.values())


def test_mask_code_is_the_smaller_encoding_and_decodes_exactly():
    for density, kind in [(0.5, np.uint8), (0.01, np.int32)]:
        _, mask, _ = _model_and_mask(density)
        code = fed.encode_mask(mask)
        emb = code["embedding.weight"]
        assert emb.dtype == kind
        n = mask["embedding.weight"].numel()
        assert emb.nbytes == min((n + 7) // 8, 4 * int(mask["embedding.weight"].sum()))
        back = fed.decode_mask(code, mask)
        assert all(torch.equal(back[k], mask[k]) for k in mask)


def test_fedavg_is_the_size_weighted_mean_and_stays_on_the_mask():
    _, mask, s1 = _model_and_mask(0.3, 0)
    s2 = {n: (t * 3 + 1) * mask[n] if n in mask else t * 3 + 1 for n, t in s1.items()}
    avg = fed.unpack(fed.fedavg([fed.pack(s1, mask), fed.pack(s2, mask)], [100, 300]), mask, s1)
    for n in s1:
        assert torch.allclose(avg[n], 0.25 * s1[n] + 0.75 * s2[n], atol=1e-6)
        if n in mask:
            assert (avg[n][~mask[n]] == 0).all()


def test_shards_are_disjoint_cover_everything_and_are_seeded():
    parts = fed.shards(103, 4, seed=0)
    joined = torch.cat(parts)
    assert sorted(joined.tolist()) == list(range(103)) and [len(p) for p in parts] == [26, 26, 26, 25]
    assert all(torch.equal(a, b) for a, b in zip(parts, fed.shards(103, 4, seed=0)))
    assert not torch.equal(parts[0], fed.shards(103, 4, seed=1)[0])
    with pytest.raises(ValueError, match="federated.clients"):
        fed.shards(3, 4, 0)


def test_settings_are_checked_and_name_the_setting():
    for change, match in [({"federated.clients": 0}, "federated.clients"),
                          ({"federated.pairs": [["books", "books"]]}, "must differ"),
                          ({"federated.pairs": [["books", "nowhere"]]}, "federated.pairs"),
                          ({"federated.strategies": ["reset"]}, "federated.strategies"),
                          ({"federated.backend": "grpc"}, "federated.backend"),
                          ({"federated.rounds": []}, "federated.rounds")]:
        with pytest.raises(ValueError, match=match):
            experiment.from_profile("smoke", change)
    s = experiment.from_profile("smoke", {"federated.strategies": ["MASKS-RESET", "full"]})
    assert s.federated.strategies == ("masks_reset", "full")
    # other domains (e.g. a reader's own dataset): the profile's pair where it still
    # fits, else the first two domains; a pair the reader sets is checked as given
    s = experiment.from_profile("course", {"data.domains": ["electronics", "dvd"]})
    assert fr.pairs_of(s) == (("electronics", "dvd"),)
    s = experiment.from_profile("course", {"data.domains": ["books", "dvd", "electronics"]})
    assert fr.pairs_of(s) == (("books", "electronics"),)
    s = experiment.from_profile("paper", {"data.domains": ["books", "dvd"]})   # explicit pairs, filtered
    assert s.federated.pairs == (("books", "dvd"),) and fr.pairs_of(s) == (("books", "dvd"),)
    one = experiment.from_profile("course")     # settings built by hand with one domain still resolve
    one = experiment.resolve(dataclasses.replace(one, data=dataclasses.replace(one.data, domains=("books",)),
                                                 transfer_pairs=()))
    assert fr.pairs_of(one) == () and fr.tasks(one) == []
    with pytest.raises(ValueError, match="federated.pairs"):
        experiment.from_profile("course", {"data.domains": ["dvd", "music"],
                                           "federated.pairs": [["books", "dvd"]]})


def test_the_run_key_has_the_protocol_but_not_the_backend():
    s = experiment.from_profile("smoke")
    job = fr.FederatedTask(s, "books", "electronics", 0, "masks_reset", 1)
    key = job.key
    other = lambda **c: dataclasses.replace(
        job, settings=dataclasses.replace(s, federated=dataclasses.replace(s.federated, **c))).key
    assert other(backend="inline") == key
    for change in ({"comm_rounds": 3}, {"clients": 3}, {"local_epochs": 2}):
        assert other(**change) != key, change
    assert dataclasses.replace(job, strategy="masks_random").key != key


# ------------------------------------------------------------------ real runs (smoke)

@pytest.fixture(scope="module")
def smoke(mirror, tmp_path_factory):
    """Smoke settings for one seed and one mask round, with stored TICKET-RESET runs."""
    from lottery.engine import runner
    from lottery.engine.store import RunStore

    s = experiment.from_profile("smoke", {"seeds": [0], "federated.rounds": [3],
                                          "federated.backend": "inline"})
    root = tmp_path_factory.mktemp("fed") / "runs"
    runner.run_tickets(s, strategies=["reset"], store=RunStore(root), progress=False, workers=1)
    return s, root


def _copy_tickets(root, dest):
    dest.mkdir(parents=True)
    for d in root.glob("tickets-*"):
        shutil.copytree(d, dest / d.name)
    from lottery.engine.store import RunStore
    return RunStore(dest)


def _stored(store):
    out = {}
    for f in sorted(store.root.glob("federated-*/*/metrics.json")):
        m = __import__("json").loads(f.read_text())
        m.pop("seconds")
        out[f"{f.parent.parent.name}/{f.parent.name}"] = m
    return out


def test_conditions_take_their_masks_from_the_right_ticket_runs(smoke):
    from lottery.engine import jobs as procedures
    from lottery.engine.store import load_tensors

    s, root = smoke
    store = _copy_tickets(root, root.parent / "masks")
    masks = {d: procedures.TicketChain(s, d, 0, ("reset",)).run_dir(store).tensors("reset/round_03", "mask")
             for d in ("books", "electronics")}
    for key, domain in [("masks_reset", "books"), ("masks_random", "books"), ("target", "electronics")]:
        sim, _ = fr.FederatedTask(s, "books", "electronics", 0, key, 3).prepare(store)
        assert all(torch.equal(sim.mask[n], masks[domain][n]) for n in sim.mask), key
        assert all((sim.state[n][~m] == 0).all() for n, m in sim.mask.items())
    reset, _ = fr.FederatedTask(s, "books", "electronics", 0, "masks_reset", 3).prepare(store)
    fresh, _ = fr.FederatedTask(s, "books", "electronics", 0, "masks_random", 3).prepare(store)
    assert not torch.equal(reset.state["embedding.weight"], fresh.state["embedding.weight"])
    dense, _ = fr.FederatedTask(s, "books", "electronics", 0, "full", 0).prepare(store)
    assert dense.send_mask is False and dense.sparsity == 0.0
    # MASKS-REWIND: the server's masks with the survivors at the server run's θ_k
    rewound, _ = fr.FederatedTask(s, "books", "electronics", 0, "masks_rewind", 3).prepare(store)
    server = procedures.TicketChain(s, "books", 0, ("reset",)).run_dir(store)
    theta_k = procedures.rewind_point(s, procedures.domain_data(s.data, s.vocab, "books"), server,
                                      load_tensors(server.path / "theta0.pt"), 0)
    assert all(torch.equal(rewound.state[n], theta_k[n] * masks["books"][n] if n in masks["books"]
                           else theta_k[n]) for n in theta_k)
    assert not torch.equal(rewound.state["embedding.weight"], reset.state["embedding.weight"])


def test_inline_runs_count_bytes_keep_masks_resume_and_repeat_exactly(smoke, monkeypatch):
    s, root = smoke
    store = _copy_tickets(root, root.parent / "inline")
    rows = fr.run_federated(s, store=store, progress=False, workers=2)   # tasks side by side
    assert [r["strategy"] for r in rows] == ["full", "masks_reset", "masks_random", "target"]
    f = s.federated
    for r in rows:
        assert [h["comm_round"] for h in r["history"]] == list(range(f.comm_rounds + 1))
        sim, _ = fr.FederatedTask(s, r["source"], r["target"], 0, r["strategy"], r["round"]).prepare(store)
        payload = fed.nbytes(fed.pack(sim.state, sim.mask))
        mask = fed.nbytes(fed.encode_mask(sim.mask)) if sim.send_mask else 0
        assert r["bytes_up"] == f.comm_rounds * f.clients * payload
        assert r["bytes_down"] == f.comm_rounds * f.clients * payload + f.clients * mask
        assert 0.0 <= r["test_acc"] <= 1.0
    dense = rows[0]
    assert rows[1]["bytes"] < dense["bytes"] / 4          # 87.5% sparse
    # the mask stays fixed through local training: pruned weights are exactly 0 after
    # every client's update, survivors move, and two clients see different batches
    sim, _ = fr.tasks(s)[1].prepare(store)
    data, parts = fr._client_data(s, "electronics")
    template = init_model(data.vocab.size, s.model, 0, data.vocab.pad_id)
    after = [fed.local_update(s, template, sim.state, sim.mask, parts[i], sim.task, 1, i) for i in (0, 1)]
    for n, m in sim.mask.items():
        assert (after[0][n][~m] == 0).all(), n
    assert any(not torch.equal(after[0][n], sim.state[n]) for n in sim.mask)
    assert not torch.equal(after[0]["embedding.weight"], after[1]["embedding.weight"])
    same = fed.local_update(s, template, sim.state, sim.mask, parts[0], sim.task, 1, 0)
    assert all(torch.equal(same[n], after[0][n]) for n in same)
    other = fed.local_update(s, template, sim.state, sim.mask, parts[0], sim.task, 1, 1)
    assert not torch.equal(other["embedding.weight"], after[0]["embedding.weight"])   # batch order
    # a second call loads everything; a fresh store, its tasks run one after another in
    # this process, gives identical numbers
    monkeypatch.setattr(fed, "run_inline", lambda *a, **k: pytest.fail("trained again"))
    assert fr.run_federated(s, store=store, progress=False) == rows
    monkeypatch.undo()
    again = _copy_tickets(root, root.parent / "inline-again")
    fr.run_federated(s, store=again, progress=False, workers=1)
    assert _stored(again) == _stored(store)


@pytest.mark.flower
@pytest.mark.skipif(importlib.util.find_spec("flwr") is None or importlib.util.find_spec("ray") is None,
                    reason="Flower is not installed (the optional `federated` extra): "
                           "`make test-flower` installs it and runs this test")
def test_flower_backend_stores_exactly_what_the_inline_backend_stores(smoke):
    s, root = smoke
    inline = _copy_tickets(root, root.parent / "ref")
    fr.run_federated(s, store=inline, progress=False)
    flower = _copy_tickets(root, root.parent / "flower")
    s_flower = dataclasses.replace(s, federated=dataclasses.replace(s.federated, backend="flower"))
    fr.run_federated(s_flower, store=flower, progress=False, workers=2)
    a, b = _stored(inline), _stored(flower)
    assert len(a) == 4 and a == b


def test_the_cli_runs_resumes_and_rejects_bad_input(smoke, capsys):
    from lottery.cli import app as cli

    s, root = smoke
    store = _copy_tickets(root, root.parent / "cli")
    args = ["federated", "--profile", "smoke", "--seeds", "0", "--runs", str(store.root), "--quiet",
            "--set", "federated.rounds=[3]", "--set", "federated.backend=inline"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "MASKS-RESET" in out and "MB in all" in out and "dense at the same MB" in out
    assert len(list(store.root.glob("federated-*/round_*/metrics.json"))) == 4
    assert cli.main(args) == 0                      # everything loaded from the store
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args[:-4] + ["--pairs", "books"])
    assert exit_info.value.code == 2 and "SERVER:CLIENTS" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args + ["--set", "federated.clients=0"])
    assert exit_info.value.code == 2
    assert "federated.clients" in capsys.readouterr().err


# ------------------------------------------------------------------ federated tasks as jobs

def _key_before_jobs(settings, task):
    """The run key exactly as ``lottery.federated.jobs.run_key`` computed it before
    federated tasks became jobs (a copy, so that the job cannot drift from it)."""
    from lottery.engine.jobs import ticket_key

    f = settings.federated
    return {**ticket_key(settings, task.server, task.seed), "domain": None,
            "server": task.server, "clients_domain": task.clients_domain, "strategy": task.strategy,
            "federated": {"clients": f.clients, "comm_rounds": f.comm_rounds,
                          "local_epochs": f.local_epochs}}


@pytest.mark.parametrize("profile", ["smoke", "course", "paper"])
def test_federated_run_folders_keep_their_names(profile, tmp_path):
    """Every task of a profile lives where it lived before it was a job (so stored
    federated runs are found again), and computing where creates nothing."""
    from lottery.engine.store import RunStore

    store = RunStore(tmp_path / "runs")
    s = experiment.from_profile(profile)
    jobs = fr.tasks(s)
    assert jobs and len({(j.path(store), j.steps[0]) for j in jobs}) == len(jobs)
    for job in jobs:
        assert job.path(store) == store.path("federated", _key_before_jobs(s, job.task))
        assert job.steps == [f"round_{job.round:02d}"]
    assert [j.stored_rows(store) for j in jobs[:3]] == [None] * 3
    assert not (tmp_path / "runs").exists()


def test_a_task_is_a_job_that_takes_strategy_keys():
    s = experiment.from_profile("smoke")
    job = fr.FederatedTask(s, "books", "electronics", 1, "masks_random", 3)
    assert job.task == fed.Task("books", "electronics", 1, "masks_random", 3)
    assert [c.domain for c in job.ticket_chains()] == ["books"]
    target = dataclasses.replace(job, strategy="target")
    assert [c.domain for c in target.ticket_chains()] == ["books", "electronics"]
    assert all(c.strategies == ("reset",) for c in target.ticket_chains())
    with pytest.raises(ValueError, match="'masks_random', not 'MASKS-RANDOM'"):
        fr.FederatedTask(s, "books", "electronics", 1, "MASKS-RANDOM", 3)
    with pytest.raises(ValueError, match="federated strategy 'reset'"):
        fr.FederatedTask(s, "books", "electronics", 1, "reset", 3)
    assert [(j.strategy, j.round) for j in fr.tasks(s, seeds=[0])] == [
        ("full", 0), ("masks_reset", 1), ("masks_reset", 3), ("masks_random", 1), ("masks_random", 3),
        ("target", 1), ("target", 3)]


def test_stores_written_with_labels_are_read_as_keys(tmp_path, monkeypatch):
    """Stores written before rows carried keys hold the strategy's label: they are
    found, loaded (nothing trains) and read with keys."""
    from lottery.config import strategies as strat
    from lottery.engine.store import RunStore

    s = experiment.from_profile("smoke", {"seeds": [0], "federated.backend": "inline"})
    store = RunStore(tmp_path / "runs")
    history = [{"comm_round": c, "val_acc": 0.5, "test_acc": 0.5, "bytes_down": 10 * c, "bytes_up": 10 * c}
               for c in range(s.federated.comm_rounds + 1)]
    for job in fr.tasks(s):
        store.run("federated", _key_before_jobs(s, job.task)).write_step(job.steps[0], {
            "procedure": "federated", "strategy": strat.label(job.strategy), "source": job.server,
            "target": job.clients_domain, "domain": job.clients_domain, "seed": job.seed,
            "round": job.round, "sparsity": 0.5, "val_acc": 0.5, "test_acc": 0.5, "bytes": 40,
            "bytes_down": 20, "bytes_up": 20, "seconds": 1.0, "history": history})
    monkeypatch.setattr(fed, "run_inline", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(fr.runner, "run_tickets", lambda *a, **k: pytest.fail("trained tickets"))
    rows = fr.run_federated(s, store=store, progress=False)
    assert [r["strategy"] for r in rows] == [j.strategy for j in fr.tasks(s)]
    assert set(fr.results_frame(rows)["strategy"]) == set(fr.history_frame(rows)["strategy"]) \
        == set(s.federated.strategies)
    job = fr.tasks(s)[1]
    assert job.run(store) == job.stored_rows(store) == [rows[1]]
    from lottery.experiment import selection   # the cost of an exercise reads them too

    page = selection.chapter_settings("smoke", seeds=[0])
    assert fr.cost_text(page, {"seeds": [0]}, store).startswith("all 7 federated trainings")
