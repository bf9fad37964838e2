"""lottery.book.plan and `lottery plan`: exercise costs counted exactly against the run
store, the work and FLOP model, the profile grid's size, and the GPU check's dry run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lottery import config
from lottery.book import plan
from lottery.cli import app as cli
from lottery.engine import cost
from lottery.experiment import selection

REPO = Path(__file__).resolve().parents[1]


def test_exercise_costs_count_exactly_what_the_store_lacks(mirror, tmp_path):
    from lottery.engine.store import RunStore

    run = selection.chapter_settings("smoke")
    store = RunStore(tmp_path / "runs")
    s = run.settings
    per_chain = 1 + len(s.strategies) * s.prune.rounds   # round 0 shared by the strategies
    c = plan.cost(run, "tickets", {"domains": ["books"], "seeds": [0]}, store=store)
    assert (c.networks, c.to_train) == (per_chain, per_chain) and c.seconds is None
    assert "no stored network" in c.text()
    c = plan.cost(run, "tickets", {"domains": ["books"], "seeds": [0]}, reference=(2.0, 1.0),
                  store=store)
    assert c.seconds == pytest.approx(2.0 * per_chain * cost.work_per_network(run.settings))
    assert not (tmp_path / "runs").exists()     # a plan creates nothing in the store
    assert plan.cost(run, "data", {}, store=store).text().startswith("no network training")
    more = plan.cost(run, "tickets", {"domains": ["books"], "seeds": [0], "rounds": s.prune.rounds + 1},
                     store=store)
    assert more.networks == per_chain + len(s.strategies)


def test_the_work_estimate_scales_with_examples_epochs_and_length():
    from lottery.experiment import validate as experiment

    base = config.get_profile("course")
    twice = experiment.apply_overrides(base, {"train.max_epochs": base.train.max_epochs * 2})
    longer = experiment.apply_overrides(base, {"vocab.max_len": base.vocab.max_len * 2})
    assert cost.work_per_network(twice) == 2 * cost.work_per_network(base)
    assert cost.work_per_network(longer) == 2 * cost.work_per_network(base)


def test_the_paper_grid_is_counted_from_the_chains():
    from lottery.config import strategies as strat

    p = config.get_profile("paper")
    counts = plan.profile_networks(p)
    controls = p.control_domains

    def per_domain(d: str) -> int:
        keys = [k for k in p.strategies
                if not strat.strategy(k).control or controls is None or d in controls]
        return 1 + len(keys) * p.prune.rounds           # round 0 is shared by the strategies

    assert counts["tickets"] == len(p.seeds) * sum(per_domain(d) for d in p.data.domains)
    rounds = len(p.transfer_rounds or range(1, p.prune.rounds + 1))
    assert counts["transfer"] == len(p.transfer_pairs) * len(p.seeds) * 2 * rounds


def test_flops_per_network_follow_the_model():
    s = config.get_profile("paper")
    f = cost.flops_per_network(s, 100.0)
    m = s.model
    conv = 2 * m.embed_dim * m.channels * sum(m.kernel_heights) * 100.0
    assert conv * 3 * s.data.n_train * s.train.max_epochs < f < 1.1 * conv * (
        3 * s.data.n_train + s.data.n_val + s.data.n_test) * s.train.max_epochs
    assert cost.flops_per_network(s, 200.0) == pytest.approx(2 * f, rel=1e-3)


def test_lottery_plan_prints_trainings_flops_and_projections(capsys, mirror):
    assert cli.main(["plan", "smoke", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_trainings"] == sum(out["trainings"].values()) > 0
    # every chapter that trains is in the total, the federated and ablation ones included
    assert {"tickets", "transfer", "ablation", "federated"} <= set(out["chapters"])
    assert out["total_flops"] == pytest.approx(sum(c["flops"] for c in out["chapters"].values()))
    assert out["total_trainings"] == sum(c["trainings"] for c in out["chapters"].values())
    assert out["this_machine"]["measured_flops_per_worker"] > 0
    assert out["this_machine"]["projected_hours"] > 0 and out["this_machine"]["basis"]
    assert out["this_machine"]["projected_hours"] == pytest.approx(
        sum(c["hours_here"] for c in out["chapters"].values()))
    # the GPU: a range of assumed efficiencies (2-10% of the TF32 peak), not one figure
    g = out["gpu"]
    assert g["basis"] == "assumed" and g["efficiency"] == [0.10, 0.02]
    fast, slow = g["projected_hours"]
    assert 0 < fast < slow == pytest.approx(5 * fast)
    assert cli.main(["plan", "smoke", "--gpu", "A100"]) == 0
    text = capsys.readouterr().out
    assert "A100" in text and "assumption, not a measurement" in text
    rows = {line.split()[0]: line for line in text.splitlines()[2:7]}
    assert {"tickets", "transfer", "ablation", "federated"} <= set(rows)


def test_the_book_workload_counts_the_ablation_and_federated_chapters():
    from lottery.federated import jobs as federated_jobs
    from lottery.stats import ablation

    for name in ("course", "paper"):
        p = config.get_profile(name)
        loads = {ld.chapter: ld for ld in plan.profile_workload(p, lambda s: 100.0)}
        counts = plan.profile_networks(p)
        assert counts == {c: ld.count for c, ld in loads.items() if ld.count}
        assert set(counts) == {"tickets", "transfer", "phase", "ablation", "federated"}
        # chapters that only read the stored runs add nothing
        assert all(loads[c].count == 0 for c in ("verdict", "intro"))
        # the phase chapter's instability section at the two rounds around 96%: the first
        # domain's RESET, RANDOM (and REWIND where the profile trains it) over the ticket
        # seeds, MASKS-RESET and MASKS-RANDOM on the first transfer pair over the first
        # five; each step trains two copies, and the plan counts trainings
        seeds = p.ticket_seeds or p.seeds
        first = p.data.domains[0]
        rewinds = "rewind" in p.strategies and (p.control_domains is None or first in p.control_domains)
        steps = len(seeds) * (2 + rewinds) * 2 + min(len(seeds), 5) * 2 * 2
        assert counts["phase"] == 2 * steps == {"course": 160, "paper": 80}[name]
        # the ablation's variants on one domain, TICKET-RESET and TICKET-RANDOM (the
        # unchanged profile's runs are the ticket chapter's)
        variants = len(ablation.select(None))
        assert counts["ablation"] == variants * len(p.seeds) * (1 + 2 * p.prune.rounds) > 0
        assert counts["federated"] == len(federated_jobs.tasks(p)) > 0
        fed = loads["federated"]
        assert fed.flops == pytest.approx(fed.count * cost.federated_flops(p, 100.0))
        assert loads["ablation"].flops == pytest.approx(counts["ablation"] * cost.flops_per_network(p, 100.0))
        # a federated training: comm_rounds × local_epochs passes over the training
        # reviews, and the referee's validation and test passes after every round
        f, d = p.federated, p.data
        assert cost.federated_flops(p, 100.0) == pytest.approx(cost.forward_flops(p.model, 100.0) * (
            3 * f.comm_rounds * f.local_epochs * d.n_train + (f.comm_rounds + 1) * (d.n_val + d.n_test)))
    paper = {ld.chapter: ld.flops for ld in plan.profile_workload(config.get_profile("paper"), lambda s: 156.6)}
    assert 200e15 < paper["federated"] < 230e15      # issue item 10: ~217 PFLOP, left out before


def test_the_cpu_projection_is_calibrated_on_stored_trainings_of_the_same_kind(tmp_path):
    from lottery.engine.store import RunStore

    store = RunStore(tmp_path / "runs")
    s = config.get_profile("smoke")
    loads = plan.profile_workload(s, lambda s: 100.0)
    by = {ld.chapter: ld for ld in loads}
    probe = 1e9
    cold = plan.cpu_projection(loads, store, lambda s: 100.0, probe, cores=2)
    assert cold.calibrated == cold.samples == 0 and cold.probed == sum(ld.count for ld in loads)
    assert cold.seconds["federated"] == pytest.approx(by["federated"].flops / (probe * 2))
    for n in by["tickets"].networks:           # the ticket chapter's networks took 3 s each
        folder = n.job.path(store) / n.step
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps({"seconds": 3.0}))
    warm = plan.cpu_projection(loads, store, lambda s: 100.0, probe, cores=2)
    assert warm.samples == by["tickets"].count
    assert warm.seconds["tickets"] == pytest.approx(3.0 * by["tickets"].count / 2)   # 2 at a time
    # single-threaded networks of other chapters are timed by the same seconds per FLOP;
    # federated tasks and 2-thread networks (the ablation's float_order) have none stored
    assert warm.seconds["transfer"] == pytest.approx(by["transfer"].count * 3.0 / 2)
    assert warm.seconds["federated"] == cold.seconds["federated"]
    assert warm.probed == by["federated"].count + sum(n.settings.train.threads > 1 for n in by["ablation"].networks)
    assert warm.calibrated + warm.probed == cold.probed


def test_inline_federated_tasks_are_projected_side_by_side_and_flower_tasks_in_turn(tmp_path):
    from lottery.engine.store import RunStore

    for backend, at_once in (("inline", 2), ("flower", 1)):
        store = RunStore(tmp_path / backend)
        s = config.override(config.get_profile("smoke"), **{"federated.backend": backend})
        fed = next(ld for ld in plan.profile_workload(s, lambda s: 100.0) if ld.chapter == "federated")
        for n in fed.networks:                  # every federated task took 4 s
            folder = n.job.path(store) / n.step
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "metrics.json").write_text(json.dumps({"seconds": 4.0}))
        got = plan.cpu_projection([fed], store, lambda s: 100.0, 1e9, cores=2)
        assert got.calibrated == fed.count
        assert got.seconds["federated"] == pytest.approx(4.0 * fed.count / at_once)


def test_the_gpu_check_runs_dry_on_the_cpu():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    r = gpu_check.main(["--device", "cpu", "--tiny", "--seconds", "0.2", "--k", "1", "2"])
    assert len(r["rows"]) == 6 and all(row["steps_per_s"] > 0 for row in r["rows"])
    assert r["paper_gpu_hours_at_best"] > 0 and r["paper_trainings"]["transfer"] > 0


def test_plan_profile_and_runs_reject_a_bad_setting_with_the_same_line(capsys, tmp_path):
    lines = []
    for argv in (["plan", "smoke"], ["profile", "smoke"], ["profile", "smoke", "--help-settings"],
                 ["tickets", "--profile", "smoke", "--runs", str(tmp_path)]):
        try:
            code = cli.main(argv + ["--set", "data.n_train=201"])
        except SystemExit as exc:
            code = exc.code
        assert code == 2, argv
        lines.append(capsys.readouterr().err.strip())
    assert len(set(lines)) == 1 and lines[0].startswith("lottery: setting data.n_train must be an even")


def test_lottery_profile_prints_the_resolved_settings(capsys):
    assert cli.main(["profile", "smoke", "--json", "--set", "data.domains=[\"B\"]"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"]["domains"] == ["books"] and "resolved" not in out
    assert cli.main(["profile", "course", "--help-settings"]) == 0
    assert "prune.prune_fraction_per_round" in capsys.readouterr().out


# ------------------------------------------------------------------ federated work and job paths

def test_the_paper_grid_counts_its_federated_trainings():
    from lottery.federated import jobs as federated_jobs

    p = config.get_profile("paper")
    counts = plan.profile_networks(p)
    f = p.federated
    rounds = [r for r in f.rounds if r <= p.prune.rounds]
    per_seed = sum(1 if k == "full" else len(rounds) for k in f.strategies)
    # only the federated trainings: the ticket runs they read are the ticket grid's
    assert counts["federated"] == len(federated_jobs.pairs_of(p)) * len(p.seeds) * per_seed > 0


def test_plans_ask_each_job_where_it_lives_and_create_nothing(tmp_path):
    from lottery.engine.store import RunStore

    run = selection.chapter_settings("smoke")
    store = RunStore(tmp_path / "runs")
    for work in ("tickets", "transfer", "federated"):
        for job, _ in plan.chains(run.settings, work, run.domains, run.seeds, run.pairs):
            assert plan.run_path(job, store) == job.path(store)
    assert not (tmp_path / "runs").exists()
    job, _ = plan.chains(run.settings, "transfer", run.domains, [0], run.pairs)[-1]
    assert job.path(store) == job.run_dir(store).path      # the same folder, now created


def test_the_federated_chapter_costs_its_tasks_and_the_tickets_they_read(tmp_path):
    from lottery.engine.store import RunStore
    from lottery.federated import jobs as federated_jobs

    run = selection.chapter_settings("smoke")
    store = RunStore(tmp_path / "runs")
    s = run.settings
    c = plan.cost(run, "federated", {"seeds": [0]}, reference=(1.0, 1.0), store=store)
    tasks = federated_jobs.tasks(s, seeds=[0])
    tickets = 1 + s.prune.rounds        # round 0 and TICKET-RESET of the server and the clients
    assert (c.networks, c.to_train) == (len(tasks) + 2 * tickets,) * 2
    f = s.federated
    fed_work = cost.work_per_network(s) * f.comm_rounds * f.local_epochs / s.train.max_epochs
    assert c.seconds == pytest.approx(2 * tickets * cost.work_per_network(s) + len(tasks) * fed_work)
    assert not (tmp_path / "runs").exists()


def test_the_phase_chapter_runs_its_instability_section_with_the_plans_defaults():
    """The chapter's instability parameters default to None and go, unchanged, to the
    function the plan counts with (tests/test_instability.py checks the jobs); a bad
    value is rejected before the chapter runs, naming the parameter."""
    from lottery.book import chapters, stability

    phase = chapters.read_chapter("phase", REPO / "notebooks")
    assert all(phase.parameters[k] is None for k in stability.PARAMETERS)
    source = "\n".join(c.source for c in phase.notebook.cells)
    assert ('section = stability.for_chapter(run, {"instability_rounds": instability_rounds,\n'
            '                                      "instability_transfer": instability_transfer})') in source
    assert "instability_frame(section.jobs(s)" in source
    for bad, text in [({"instability_rounds": [4]}, "parameter 'instability_rounds'"),
                      ({"instability_transfer": ["books", "music"]}, "parameter 'instability_transfer'")]:
        with pytest.raises(ValueError, match=text):
            chapters.check_parameters(phase, {"profile": "smoke", **bad})
    chapters.check_parameters(phase, {"profile": "smoke", "instability_rounds": [1, 3], "instability_transfer": []})
