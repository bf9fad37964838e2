"""The federated simulation's runs: which tasks, where they live, how they run.

A task (:class:`FederatedTask`, a job like the engine's ticket and transfer chains) is
one condition of the strategy table, one seed and one mask round for a (server, clients)
pair; its result is a step of the run ``federated-<hash>`` (one per pair, seed and
condition), written when the task ends. The masks and θ0 are read from the ticket runs
(trained first if missing), so the server's ticket is exactly the one the ticket and
transfer chapters show. Rows carry strategy keys (``masks_reset``); stores written
before hold labels, which the readers here map to keys.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from tqdm import tqdm

from lottery.config import ExperimentSettings, strategies as strat
from lottery.engine import jobs as procedures, runner
from lottery.engine.masks import apply_mask, full_mask, overall_sparsity
from lottery.engine.model import init_model
from lottery.engine.starts import initial_model
from lottery.engine.jobs import Report
from lottery.engine.recovery import readable, repairing
from lottery.engine.store import RunDir, RunStore
from lottery.experiment import selection, validate as experiment
from lottery.federated import flower as flower_backend, protocol as fed

TASK_COLUMNS = ["procedure", "strategy", "domain", "source", "target", "seed", "round", "sparsity",
                "val_acc", "test_acc", "bytes", "bytes_down", "bytes_up", "seconds"]


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


def _keyed(metrics: dict[str, Any]) -> dict[str, Any]:
    """A stored task's metrics with its strategy as the table's key (stores written
    before rows carried keys hold the label, e.g. ``MASKS-RESET``)."""
    return {**metrics, "strategy": strat.strategy(metrics["strategy"]).key}


# ------------------------------------------------------------------ the job

@dataclass(frozen=True)
class FederatedTask:
    """One federated training as a run-store job, like
    :class:`~lottery.engine.jobs.TicketChain` and :class:`~lottery.engine.jobs.TransferChain`:
    a condition (a strategy key), a mask round and a seed for a (server, clients) pair.
    Its one step is written when the training ends. Settings must be resolved."""

    settings: ExperimentSettings
    server: str
    clients_domain: str
    seed: int
    strategy: str
    round: int

    def __post_init__(self) -> None:
        key, = strat.check([self.strategy], "federated")
        if key != self.strategy:   # the key is hashed into the run folder's name
            raise ValueError(f"a federated task takes strategy keys: {key!r}, not {self.strategy!r}")
        if self.server == self.clients_domain:
            raise ValueError(f"a federated task needs two different domains, got {self.server!r} twice")

    @property
    def task(self) -> fed.Task:
        """What the clients are told about this training (the protocol's task)."""
        return fed.Task(self.server, self.clients_domain, self.seed, self.strategy, self.round)

    @property
    def key(self) -> dict[str, Any]:
        """Everything the numbers depend on (hashed into the run folder's name): the
        server's ticket run (its masks and θ0), the clients' domain, the condition and
        the protocol's settings (not the backend: both give the same numbers)."""
        f = self.settings.federated
        return {**procedures.ticket_key(self.settings, self.server, self.seed), "domain": None,
                "server": self.server, "clients_domain": self.clients_domain, "strategy": self.strategy,
                "federated": {"clients": f.clients, "comm_rounds": f.comm_rounds,
                              "local_epochs": f.local_epochs}}

    @property
    def steps(self) -> list[str]:
        return [f"round_{self.round:02d}"]

    @property
    def mask_origin(self) -> str | None:
        """Where the mask comes from (:data:`lottery.federated.protocol.MASK_FROM`)."""
        return fed.MASK_FROM[strat.strategy(self.strategy).mask]

    def ticket_chains(self) -> list[procedures.TicketChain]:
        """The ticket runs this training reads: the server's (θ0, its masks, θ_k) and, for
        TICKET-TARGET, the clients' domain's own."""
        domains = [self.server] + ([self.clients_domain] if self.mask_origin == "clients" else [])
        return [procedures.TicketChain(self.settings, d, self.seed, (strat.SOURCE_STRATEGY,))
                for d in domains]

    def path(self, store: RunStore) -> Path:
        """The run folder, computed without creating anything (plans and checks)."""
        return store.path("federated", self.key)

    def run_dir(self, store: RunStore) -> RunDir:
        return store.run("federated", self.key)

    def stored_rows(self, store: RunStore) -> list[dict[str, Any]] | None:
        """The task's metrics (one row) if stored, else None; a read: nothing is created."""
        run = self.run_dir(store)
        return readable(lambda: [_keyed(run.metrics(step)) for step in self.steps]
                        if all(map(run.done, self.steps)) else None)

    def run(self, store: RunStore | str | None = None, report: Report | None = None) -> list[dict[str, Any]]:
        """Train in this process (the inline backend) unless stored; the ticket runs it
        reads are trained first if the store lacks them."""
        store = store if isinstance(store, RunStore) else RunStore(store)
        return repairing(lambda: self._run(store, report))

    def _run(self, store: RunStore, report: Report | None) -> list[dict[str, Any]]:
        rows = self.stored_rows(store)
        if rows is None:
            for chain in self.ticket_chains():
                if chain.stored_rows(store) is None:
                    chain.run(store, report)
            sim, referee = self.prepare(store)
            rows = [self.finish(fed.run_inline(self.settings, sim, referee, client_update), store)]
        if report:
            for row in rows:
                report(row)
        return rows

    def prepare(self, store: RunStore) -> tuple[fed.Simulation, Any]:
        """The server's start (mask, masked initial state) and its referee."""
        s, t = self.settings, self.task
        server_run = procedures.TicketChain(s, t.server, t.seed, (strat.SOURCE_STRATEGY,)).run_dir(store)
        theta0 = server_run.load_file("theta0.pt")
        data = procedures.domain_data(s.data, s.vocab, t.clients_domain)
        template = init_model(data.vocab.size, s.model, t.seed, data.vocab.pad_id)
        reference = full_mask(template, s.prune.prune_biases)
        origin = self.mask_origin
        if origin is None:
            mask = reference
        else:
            domain = t.server if origin == "server" else t.clients_domain
            run = procedures.TicketChain(s, domain, t.seed, (strat.SOURCE_STRATEGY,)).run_dir(store)
            mask = run.tensors(procedures.step_name(strat.SOURCE_STRATEGY, t.round), "mask")
        starts = {"theta0": theta0}
        if strat.needs([t.strategy], "rewind"):   # the server's θ_k, from the server's data
            starts = procedures.starts_for(s, procedures.domain_data(s.data, s.vocab, t.server), server_run,
                                           theta0, t.seed, [t.strategy])
        model = initial_model(t.strategy, starts, data.vocab.size, data.vocab.pad_id, s.model,
                              t.seed, t.round)
        apply_mask(model, mask)
        sim = fed.Simulation(t, mask, {n: v.detach().clone() for n, v in model.state_dict().items()},
                             send_mask=origin is not None, sparsity=overall_sparsity(mask, reference))

        def referee(state: dict) -> tuple[float, float]:
            return fed.evaluate(s, template, state, data.val, data.test)

        return sim, referee

    def finish(self, sim: fed.Simulation, store: RunStore) -> dict[str, Any]:
        """Write the finished training into the run store (atomically: see
        :mod:`lottery.engine.store`); returns its row."""
        t, last = sim.task, sim.history[-1]
        metrics = {"procedure": "federated", "strategy": t.strategy, "source": t.server,
                   "target": t.clients_domain, "domain": t.clients_domain, "seed": t.seed,
                   "round": t.round, "sparsity": sim.sparsity, "val_acc": last["val_acc"],
                   "test_acc": last["test_acc"], "bytes": sim.bytes_down + sim.bytes_up,
                   "bytes_down": sim.bytes_down, "bytes_up": sim.bytes_up,
                   "seconds": round(time.perf_counter() - sim.started, 3), "history": sim.history}
        self.run_dir(store).write_step(self.steps[0], metrics)
        return metrics


def tasks(settings: ExperimentSettings, pairs: Sequence[tuple[str, str]] | None = None,
          seeds: Sequence[int] | None = None) -> list[FederatedTask]:
    """The jobs of ``settings.federated`` (or of the given pairs and seeds), in the
    order of their rows: pair, seed, condition, mask round."""
    f = settings.federated
    return [FederatedTask(settings, a, b, seed, key, r)
            for a, b in (pairs_of(settings) if pairs is None else pairs)
            for seed in (settings.seeds if seeds is None else seeds)
            for key in f.strategies for r in mask_rounds(settings, key)]


# ------------------------------------------------------------------ the clients

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


# ------------------------------------------------------------------ the grid

def run_federated(settings: ExperimentSettings, pairs: Sequence[tuple[str, str]] | None = None,
                  seeds: Sequence[int] | None = None, store: RunStore | None = None,
                  progress: bool = True, workers: int | None = None) -> list[dict[str, Any]]:
    """Every task of ``settings.federated`` (or the given pairs/seeds); trains only what
    the store lacks, then returns one row per task (strategy keys).

    The ticket runs the pending tasks read are trained first, in parallel
    (:func:`lottery.engine.runner.run_tickets`). The inline backend then runs the
    pending tasks side by side, one per single-threaded worker process
    (:func:`lottery.engine.runner.run_jobs`; ``workers=1``: in this process, the same
    numbers); the Flower backend runs them all in one simulation (Ray starts once), each
    stored as it ends."""
    store = store or RunStore()
    experiment.rounds_reached(settings, "federated.rounds")
    jobs = tasks(settings, pairs, seeds)
    todo = [j for j in jobs if j.stored_rows(store) is None]
    if todo:
        needed = sorted({c.domain for j in todo for c in j.ticket_chains()})
        runner.run_tickets(settings, domains=needed, seeds=sorted({j.seed for j in todo}),
                           strategies=[strat.SOURCE_STRATEGY], store=store, progress=progress)
        if settings.federated.backend == "inline":    # tasks side by side, one per worker process
            runner.run_jobs(todo, store, workers=workers, progress=progress, desc="federated tasks")
        else:
            bar = tqdm(total=len(todo), desc="federated tasks", unit="task", disable=not progress)
            by_task = {j.task: j for j in todo}
            flower_backend.run(settings, list(by_task), lambda t: by_task[t].prepare(store),
                               lambda sim: by_task[sim.task].finish(sim, store), client_update, workers,
                               on_task=lambda t: bar.update())
            bar.close()
    return [row for j in jobs for row in j.stored_rows(store) or []]


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per task (final communication round); ``strategy`` holds keys."""
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
    missing = [j for j in todo if j.stored_rows(store) is None]
    if not missing:
        return f"all {len(todo)} federated trainings are in the run store: seconds to load"
    done = [m for j in tasks(run.settings, None, run.seeds) for m in j.stored_rows(store) or []]
    what = f"{len(missing)} federated trainings to run ({len(todo) - len(missing)} loaded)"
    if not done:
        return what
    per_work = sorted(m["seconds"] for m in done)[len(done) // 2] / work(run.settings)  # median
    return f"{what}, about {max(1, round(len(missing) * work(new.settings) * per_work / 60))} min on this machine"
