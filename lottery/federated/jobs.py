"""The federated simulation's runs: which tasks, where they live, how they run.

A task (:class:`lottery.federated.protocol.Task`) is one condition of the strategy table, one
seed and one mask round for a (server, clients) pair; its result is a step of the run
``federated-<hash>`` (one per pair, seed and condition), written when the task ends.
The masks and θ0 are read from the ticket runs (trained first if missing), so the
server's ticket is exactly the one the ticket and transfer chapters show.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Sequence

import pandas as pd
from tqdm import tqdm

from lottery.config import ExperimentSettings, strategies as strat
from lottery.engine import jobs as procedures, runner
from lottery.engine.masks import apply_mask, full_mask, overall_sparsity
from lottery.engine.model import init_model
from lottery.engine.starts import initial_model
from lottery.engine.store import RunStore, load_json, load_tensors
from lottery.experiment import selection
from lottery.federated import flower as flower_backend, protocol as fed

TASK_COLUMNS = ["procedure", "strategy", "domain", "source", "target", "seed", "round", "sparsity",
                "val_acc", "test_acc", "bytes", "bytes_down", "bytes_up", "seconds"]


def run_key(settings: ExperimentSettings, task: fed.Task) -> dict[str, Any]:
    """Everything a task's numbers depend on: the server's ticket run (its masks and θ0),
    the clients' domain, the condition and the protocol's settings."""
    f = settings.federated
    return {**procedures.ticket_key(settings, task.server, task.seed), "domain": None,
            "server": task.server, "clients_domain": task.clients_domain, "strategy": task.strategy,
            "federated": {"clients": f.clients, "comm_rounds": f.comm_rounds,
                          "local_epochs": f.local_epochs}}


def step(task: fed.Task) -> str:
    return f"round_{task.round:02d}"


def mask_rounds(settings: ExperimentSettings, key: str) -> list[int]:
    """The mask rounds of a condition: 0 for the unpruned network, else the
    ``federated.rounds`` the ticket runs reach."""
    if fed.MASK_FROM[strat.strategy(key).mask] is None:
        return [0]
    return [r for r in settings.federated.rounds if r <= settings.prune.rounds]


def pairs_of(settings: ExperimentSettings) -> tuple[tuple[str, str], ...]:
    """The (server, clients) pairs: ``federated.pairs``, else the first transfer pair,
    else the first two domains (none with a single domain)."""
    if settings.federated.pairs is not None:
        return settings.federated.pairs
    if settings.transfer_pairs:
        return settings.transfer_pairs[:1]
    d = settings.data.domains
    return ((d[0], d[1]),) if len(d) >= 2 else ()


def tasks(settings: ExperimentSettings, pairs: Sequence[tuple[str, str]] | None = None,
          seeds: Sequence[int] | None = None) -> list[fed.Task]:
    f = settings.federated
    return [fed.Task(a, b, seed, key, r) for a, b in (pairs_of(settings) if pairs is None else pairs)
            for seed in (settings.seeds if seeds is None else seeds)
            for key in f.strategies for r in mask_rounds(settings, key)]


def stored(settings: ExperimentSettings, task: fed.Task, store: RunStore) -> dict[str, Any] | None:
    """A task's stored metrics, or None (a read: nothing is created in the store)."""
    path = store.path("federated", run_key(settings, task)) / step(task) / "metrics.json"
    return load_json(path) if path.exists() else None


# ------------------------------------------------------------------ both sides

@lru_cache(maxsize=8)
def _client_data(settings: ExperimentSettings, domain: str) -> tuple[Any, list[Any]]:
    data = procedures.domain_data(settings.data, settings.vocab, domain)
    f = settings.federated
    parts = [fed.subset(data.train, i) for i in fed.shards(len(data.train), f.clients, settings.data.split_seed)]
    return data, parts


def client_update(settings: ExperimentSettings, task: fed.Task, comm_round: int, client: int,
                  down: fed.Arrays, mask_code: fed.Arrays | None) -> tuple[fed.Arrays, int]:
    """A client's round (:data:`lottery.federated.protocol.ClientSide`): rebuild the global
    network from the survivors and the mask it keeps, train on its shard, pack."""
    data, parts = _client_data(settings, task.clients_domain)
    template = init_model(data.vocab.size, settings.model, task.seed, data.vocab.pad_id)
    reference = full_mask(template, settings.prune.prune_biases)
    mask = fed.decode_mask(mask_code, reference) if mask_code is not None else reference
    state = fed.unpack(down, mask, template.state_dict())
    new = fed.local_update(settings, template, state, mask, parts[client], task, comm_round, client)
    return fed.pack(new, mask), len(parts[client])


def prepare(settings: ExperimentSettings, task: fed.Task, store: RunStore) -> tuple[fed.Simulation, Any]:
    """The server's start for ``task`` (mask, masked initial state) and its referee."""
    s = settings
    server_run = procedures.TicketChain(s, task.server, task.seed, ("reset",)).run_dir(store)
    theta0 = load_tensors(server_run.path / "theta0.pt")
    data = procedures.domain_data(s.data, s.vocab, task.clients_domain)
    template = init_model(data.vocab.size, s.model, task.seed, data.vocab.pad_id)
    reference = full_mask(template, s.prune.prune_biases)
    origin = fed.MASK_FROM[strat.strategy(task.strategy).mask]
    if origin is None:
        mask = reference
    else:
        domain = task.server if origin == "server" else task.clients_domain
        run = procedures.TicketChain(s, domain, task.seed, ("reset",)).run_dir(store)
        mask = run.tensors(procedures.step_name(strat.SOURCE_STRATEGY, task.round), "mask")
    starts = {"theta0": theta0}
    if strat.needs([task.strategy], "rewind"):   # the server's θ_k, from the server's data
        starts = procedures._starts(s, procedures.domain_data(s.data, s.vocab, task.server), server_run,
                                    theta0, task.seed, [task.strategy])
    model = initial_model(task.strategy, starts, data.vocab.size, data.vocab.pad_id, s.model,
                          task.seed, task.round)
    apply_mask(model, mask)
    sim = fed.Simulation(task, mask, {n: t.detach().clone() for n, t in model.state_dict().items()},
                         send_mask=origin is not None, sparsity=overall_sparsity(mask, reference))

    def referee(state: dict) -> tuple[float, float]:
        return fed.evaluate(s, template, state, data.val, data.test)

    return sim, referee


def finish(settings: ExperimentSettings, sim: fed.Simulation, store: RunStore) -> dict[str, Any]:
    """Write a finished task into the run store (atomically: see :mod:`lottery.engine.store`)."""
    t, last = sim.task, sim.history[-1]
    metrics = {"procedure": "federated", "strategy": strat.label(t.strategy), "source": t.server,
               "target": t.clients_domain, "domain": t.clients_domain, "seed": t.seed,
               "round": t.round, "sparsity": sim.sparsity, "val_acc": last["val_acc"],
               "test_acc": last["test_acc"], "bytes": sim.bytes_down + sim.bytes_up,
               "bytes_down": sim.bytes_down, "bytes_up": sim.bytes_up,
               "seconds": round(time.perf_counter() - sim.started, 3), "history": sim.history}
    store.run("federated", run_key(settings, t)).write_step(step(t), metrics)
    return metrics


# ------------------------------------------------------------------ the grid

def run_federated(settings: ExperimentSettings, pairs: Sequence[tuple[str, str]] | None = None,
                  seeds: Sequence[int] | None = None, store: RunStore | None = None,
                  progress: bool = True, workers: int | None = None) -> list[dict[str, Any]]:
    """Every task of ``settings.federated`` (or the given pairs/seeds); trains only what
    the store lacks (the ticket runs first), then returns one metrics dict per task."""
    store = store or RunStore()
    todo = [t for t in tasks(settings, pairs, seeds) if stored(settings, t, store) is None]
    if todo:
        needed = sorted({t.server for t in todo} | {t.clients_domain for t in todo
                                                    if fed.MASK_FROM[strat.strategy(t.strategy).mask]})
        runner.run_tickets(settings, domains=needed, seeds=sorted({t.seed for t in todo}),
                           strategies=["TICKET-RESET"], store=store, progress=progress)
        bar = tqdm(total=len(todo), desc="federated tasks", unit="task", disable=not progress)
        if settings.federated.backend == "inline":
            for t in todo:
                sim, referee = prepare(settings, t, store)
                finish(settings, fed.run_inline(settings, sim, referee, client_update), store)
                bar.update()
        else:

            flower_backend.run(settings, todo, lambda t: prepare(settings, t, store),
                               lambda sim: finish(settings, sim, store), client_update, workers,
                               on_task=lambda t: bar.update())
        bar.close()
    return [stored(settings, t, store) for t in tasks(settings, pairs, seeds)]


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per task (final communication round)."""
    return pd.DataFrame([{c: r[c] for c in TASK_COLUMNS} for r in rows], columns=TASK_COLUMNS)


def history_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per task and communication round: accuracy and cumulative bytes."""
    keys = ["strategy", "source", "target", "seed", "round", "sparsity"]
    out = [{**{c: r[c] for c in keys}, **h, "bytes": h["bytes_down"] + h["bytes_up"]}
           for r in rows for h in r["history"]]
    return pd.DataFrame(out, columns=keys + ["comm_round", "val_acc", "test_acc", "bytes_down",
                                             "bytes_up", "bytes"])


def work(settings: ExperimentSettings) -> float:
    """Training work of one task, in reviews seen: rounds × local epochs × training set."""
    f = settings.federated
    return float(f.comm_rounds * f.local_epochs * settings.data.n_train)


def cost_text(run: Any, parameters: dict[str, Any], store: RunStore | None = None) -> str:
    """What re-running the federated chapter with ``parameters`` costs: tasks to run
    (and loaded), and the time, scaled from this page's stored tasks by :func:`work`
    (their wall time on this machine's Ray workers, Ray's start-up excluded)."""

    store = store or RunStore()
    params = dict(parameters)
    try:
        new = selection.chapter_settings(run.profile, **params)
    except ValueError as exc:   # e.g. a domain the page's profile does not have
        return f"not available with the {run.profile} profile ({exc})"
    chosen = new.pairs if "pairs" in params else pairs_of(new.settings)
    todo = tasks(new.settings, chosen, new.seeds)
    missing = [t for t in todo if stored(new.settings, t, store) is None]
    if not missing:
        return f"all {len(todo)} federated trainings are in the run store: seconds to load"
    done = [m for t in tasks(run.settings, None, run.seeds) if (m := stored(run.settings, t, store))]
    what = f"{len(missing)} federated trainings to run ({len(todo) - len(missing)} loaded)"
    if not done:
        return what
    per_work = sorted(m["seconds"] for m in done)[len(done) // 2] / work(run.settings)  # median
    return f"{what}, about {max(1, round(len(missing) * work(new.settings) * per_work / 60))} min on this machine"
