"""Run many jobs (ticket and transfer chains) on any ``concurrent.futures.Executor``.

Scheduling is kept apart from the procedures: :func:`run_jobs` takes jobs from
:mod:`lottery.engine.jobs`, loads the ones already in the run store, and submits the
rest to an executor. The default is a pool of single-threaded worker processes, one per
core (started with 'spawn': forking after OpenMP has started can hang); any other
executor whose jobs run in separate processes (a Dask client's executor with one-thread
workers) works the same way. Thread pools are refused: dropout draws from torch's global
RNG, so two trainings in one process would disturb each other's numbers.
The numbers do not depend on the executor: every training sets its own thread count
(``train.threads``) and seeds.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import sys
import time
from dataclasses import replace
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Sequence

import pandas as pd
from tqdm import tqdm

from lottery.config import ExperimentSettings, strategies as strat
from lottery.engine import cluster
from lottery.engine.jobs import Job, Report, TicketChain, TransferChain, results_frame, run_job
from lottery.engine.store import RunStore
from lottery.experiment import validate as experiment



def default_workers(n_jobs: int, device: str = "cpu", threads: int = 1) -> int:
    """One worker per ``threads`` cores on CPU (at most one per job); one on GPU.

    When there is no script for 'spawn' to re-import (``python -`` or ``python -c``)
    the jobs run in this process instead.
    """
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if device != "cpu" or (main_file is not None and not os.path.exists(main_file)):
        return 1
    return max(1, min(n_jobs, (os.cpu_count() or 1) // max(threads, 1)))


def _drain(events: Any, show: Report) -> None:
    while True:
        try:
            show(events.get_nowait())
        except queue_mod.Empty:
            return


_DEFAULT_EXECUTOR: list[Any] = [None]


def use_dask(address: str | None) -> None:
    """Make every later ``run_tickets`` / ``run_transfer`` of this process without an
    ``executor`` run on Dask (``address`` as for ``--dask``; None: back to the local
    process pool). The chapters call it with their ``dask`` parameter."""
    _DEFAULT_EXECUTOR[0] = cluster.connect(address) if address else None


#: What :func:`run_jobs` did in this process (counts add up; the CLI prints them: trained
#: vs loaded).
LAST_RUN: dict[str, int] = {"loaded_jobs": 0, "run_jobs": 0, "missing_steps": 0}


def run_jobs(jobs: Sequence[Job], store: RunStore | None = None, executor: Executor | None = None,
             workers: int | None = None, progress: bool = True, desc: str = "jobs") -> list[dict[str, Any]]:
    """Rows of every job: stored jobs are loaded (no workers start), the rest run.

    ``executor`` given: each job is submitted to it (progress per finished job).
    Otherwise ``workers`` single-threaded processes (default: one per core), with
    progress per trained round; ``workers=1`` runs in this process.
    """
    if isinstance(executor, ThreadPoolExecutor):
        raise ValueError("jobs must run in separate processes (dropout draws from torch's global RNG and "
                         "the thread count is per process): use a process pool or Dask workers, not threads")
    store = store or RunStore()
    rows: list[dict[str, Any]] = []
    todo = []
    for job in jobs:
        stored = job.stored_rows(store)
        if stored is None:
            todo.append(job)
        else:
            rows += stored
    LAST_RUN["loaded_jobs"] += len(jobs) - len(todo)
    LAST_RUN["run_jobs"] += len(todo)
    LAST_RUN["missing_steps"] += sum(sum(not job.run_dir(store).done(s) for s in job.steps)
                                     for job in todo)
    if not todo:
        return rows
    bar = tqdm(total=sum(len(job.steps) for job in todo), desc=desc, unit="round",
               disable=not progress, smoothing=0.05)

    def show(row: dict[str, Any]) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{row['strategy']} {row['domain']} seed {row['seed']} round {row['round']} "
                            f"test {row['test_acc']:.3f}", refresh=False)

    device = todo[0].settings.train.device
    workers = workers or default_workers(len(todo), device, todo[0].settings.train.threads)
    try:
        if executor is None and (workers == 1 or len(todo) == 1):
            for job in todo:
                rows += job.run(store, show)
            return rows
        if executor is not None and cluster.is_dask(executor):
            return rows + cluster.run_on_dask(executor, todo, store, bar)
        if executor is not None:
            return rows + _run_on(executor, todo, store, None, bar)
        with mp.Manager() as manager, ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            events = manager.Queue()
            out = _run_on(pool, todo, store, events, bar, lambda: _drain(events, show))
            _drain(events, show)
        return rows + out
    finally:
        bar.close()


def _run_on(executor: Executor, jobs: list[Job], store: RunStore, events: Any, bar: tqdm,
            poll: Any = None) -> list[dict[str, Any]]:
    """Submit every job and collect rows as they finish (works with any future that
    has ``done()`` and ``result()``)."""
    pending = {executor.submit(run_job, job, str(store.root), events): job for job in jobs}
    rows: list[dict[str, Any]] = []
    while pending:
        for fut in [f for f in pending if f.done()]:
            job = pending.pop(fut)
            rows += fut.result()
            if events is None:
                bar.update(len(job.steps))
        if poll:
            poll()
        if pending:
            time.sleep(0.2)
    return rows


def ticket_jobs(settings: ExperimentSettings, domains: Sequence[str], seeds: Sequence[int],
                keys: Sequence[str], workers: int) -> list[list[TicketChain]]:
    """The ticket chains to run, in waves. Controls run only in ``control_domains``.

    When the chains do not divide among the workers (e.g. 3 seeds on 2 cores), finer
    jobs balance them: every round 0 first, then one chain per (domain, seed, strategy).
    Same steps, same numbers. Stacked strategies must stay together.
    """
    controls = settings.control_domains

    def for_domain(d: str) -> tuple[str, ...]:
        return tuple(k for k in keys if not strat.strategy(k).control or controls is None or d in controls)

    jobs = [TicketChain(settings, d, s, for_domain(d)) for d in domains for s in seeds]
    if (workers > 1 and len(jobs) % workers and any(len(j.strategies) > 1 for j in jobs)
            and not settings.train.stack_strategies):
        return [[TicketChain(settings, j.domain, j.seed, ()) for j in jobs],
                [TicketChain(settings, j.domain, j.seed, (k,)) for j in jobs for k in j.strategies]]
    return [jobs]


def run_tickets(settings: ExperimentSettings, domains: Sequence[str] | None = None,
                seeds: Sequence[int] | None = None, strategies: Sequence[str] | None = None,
                progress: bool = True, workers: int | None = None, store: RunStore | None = None,
                executor: Executor | None = None) -> pd.DataFrame:
    """Ticket finding for every (domain, seed): trains what is missing, loads the rest."""
    settings = experiment.resolve(settings)
    executor = executor or _DEFAULT_EXECUTOR[0]
    selection = experiment.resolve(_select(settings, domains, seeds))
    keys = strat.check(strategies or settings.strategies, "tickets")
    n = len(selection.data.domains) * len(selection.seeds) * max(1, len(keys))
    waves = ticket_jobs(settings, _in(selection.data.domains, settings), selection.seeds, keys,
                        workers or (1 if executor else default_workers(n, settings.train.device,
                                                                       settings.train.threads)))
    for wave in waves[:-1]:    # round 0 alone: its chains have no rows of their own
        run_jobs(wave, store, executor, workers, progress, "tickets")
    return results_frame(run_jobs(waves[-1], store, executor, workers, progress, "tickets"))


def run_transfer(settings: ExperimentSettings, pairs: Sequence[tuple[str, str]] | None = None,
                 seeds: Sequence[int] | None = None,
                 strategies: Sequence[str] = ("masks_reset", "masks_random"), progress: bool = True,
                 workers: int | None = None, store: RunStore | None = None,
                 executor: Executor | None = None) -> pd.DataFrame:
    """Transfer for every (source, target) pair, seed and strategy. Source tickets are
    found first (in parallel, a no-op when the ticket chapter already ran them)."""
    settings = experiment.resolve(settings)
    executor = executor or _DEFAULT_EXECUTOR[0]
    chosen = experiment.resolve(_select(settings, None, seeds, pairs))
    keys = strat.check(strategies, "transfer")
    sources = sorted({a for a, _ in chosen.transfer_pairs})
    if sources:
        run_tickets(settings, sources, chosen.seeds, [strat.SOURCE_STRATEGY], progress, workers, store,
                    executor)
    jobs = [TransferChain(settings, a, b, s, k) for a, b in chosen.transfer_pairs for s in chosen.seeds
            for k in keys]
    return results_frame(run_jobs(jobs, store, executor, workers, progress, "transfer"))


def _select(settings: ExperimentSettings, domains: Sequence[str] | None, seeds: Sequence[int] | None,
            pairs: Sequence[tuple[str, str]] | None = None) -> ExperimentSettings:
    """The selection (domains and seeds, or transfer pairs and seeds) as settings, so
    that it is resolved and checked by the same code as the settings themselves."""
    if pairs is None and domains is None:
        pairs = settings.transfer_pairs
    data = settings.data if domains is None else replace(settings.data, domains=tuple(domains))
    return replace(settings, data=data, seeds=settings.seeds if seeds is None else tuple(seeds),
                   transfer_pairs=tuple(map(tuple, pairs or ())), control_domains=None,
                   federated=replace(settings.federated, pairs=None))   # not part of this selection


def _in(selected: Sequence[str], settings: ExperimentSettings) -> list[str]:
    """Selected domains must be among the settings' domains (the vocabulary covers those)."""
    for d in selected:
        if d not in settings.data.domains:
            raise ValueError(f"domain {d!r} is not among this profile's domains {list(settings.data.domains)} "
                             f"(the shared vocabulary is trained on those; add it with data.domains)")
    return list(selected)
