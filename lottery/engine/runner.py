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
import warnings
from dataclasses import dataclass
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Sequence

import pandas as pd
from tqdm import tqdm

from lottery import config
from lottery.config import ExperimentSettings, strategies as strat
from lottery.data import DataWarning
from lottery.engine import cluster
from lottery.engine.jobs import Job, Report, TicketChain, TransferChain, run_job
from lottery.engine.results import results_frame
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
    return max(1, min(n_jobs, config.usable_cores() // max(threads, 1)))


def _drain(events: Any, show: Report) -> None:
    while True:
        try:
            show(events.get_nowait())
        except queue_mod.Empty:
            return


#: The one process-wide choice of this module: the executor that ``run_tickets`` /
#: ``run_transfer`` use when they are given none (None: the local process pool). Only
#: :func:`use_dask` sets it (the chapters, with their ``dask`` parameter); the CLI passes
#: its executor explicitly instead.
_default_executor: Executor | None = None


def use_dask(address: str | None) -> None:
    """Make every later ``run_tickets`` / ``run_transfer`` of this process without an
    ``executor`` run on Dask (``address`` as for ``--dask``; None: back to the local
    process pool). This is process-wide state, on purpose: one chapter's cells all
    train on the cluster its ``dask`` parameter names."""
    global _default_executor
    _default_executor = cluster.connect(address) if address else None


@dataclass
class RunCounts:
    """What :func:`run_jobs` did, added up over the calls it is passed to (the CLI prints
    it: networks trained vs finished jobs loaded from the run store)."""

    loaded_jobs: int = 0
    run_jobs: int = 0
    missing_steps: int = 0


def run_jobs(jobs: Sequence[Job], store: RunStore | None = None, executor: Executor | None = None,
             workers: int | None = None, progress: bool = True, desc: str = "jobs",
             counts: RunCounts | None = None) -> list[dict[str, Any]]:
    """Rows of every job: stored jobs are loaded (no workers start), the rest run.

    ``executor`` given: each job is submitted to it (progress per finished job).
    Otherwise ``workers`` single-threaded processes (default: one per core), with
    progress per trained round; ``workers=1`` runs in this process. ``counts`` (the
    caller's) adds up what was loaded and what runs.
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
    if counts is not None:
        counts.loaded_jobs += len(jobs) - len(todo)
        counts.run_jobs += len(todo)
        counts.missing_steps += sum(sum(not job.run_dir(store).done(s) for s in job.steps)
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
        with mp.Manager() as manager, ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                                          initializer=_worker_setup) as pool:
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
                keys: Sequence[str], workers: int, finer: bool = False) -> list[list[TicketChain]]:
    """The ticket chains to run, in waves. Controls run only in ``control_domains``.

    When the chains do not divide among the workers (e.g. 3 seeds on 2 cores), or
    ``finer`` (on Dask, whose workers come and go), finer jobs balance them: every round 0
    first, then one chain per (domain, seed, strategy). Same steps, same numbers. Stacked strategies must stay together. ``settings`` are
    resolved here if they are not yet; ``domains``, ``seeds`` and ``keys`` are trusted
    (:func:`lottery.experiment.validate.select` checks them).
    """
    settings = experiment.ensure_resolved(settings)
    controls = settings.control_domains

    def for_domain(d: str) -> tuple[str, ...]:
        return tuple(k for k in keys if not strat.strategy(k).control or controls is None or d in controls)

    jobs = [TicketChain(settings, d, s, for_domain(d)) for d in domains for s in seeds]
    if ((finer or (workers > 1 and len(jobs) % workers)) and any(len(j.strategies) > 1 for j in jobs)
            and not settings.train.stack_strategies):
        return [[TicketChain(settings, j.domain, j.seed, ()) for j in jobs],
                [TicketChain(settings, j.domain, j.seed, (k,)) for j in jobs for k in j.strategies]]
    return [jobs]


#: Set (to any value) by a caller that reports data-quality notes itself, such as a
#: chapter's kernel (:func:`lottery.book.notebook.setup_notebook`): its worker processes
#: then do not print them into every chapter's output.
QUIET_DATA_ENV = "LOTTERY_QUIET_DATA_WARNINGS"


def _worker_setup() -> None:
    """Runs first in every worker process of the pool."""
    if os.environ.get(QUIET_DATA_ENV):
        warnings.filterwarnings("ignore", category=DataWarning)


def run_tickets(settings: ExperimentSettings, domains: Sequence[str] | None = None,
                seeds: Sequence[int] | None = None, strategies: Sequence[str] | None = None,
                progress: bool = True, workers: int | None = None, store: RunStore | None = None,
                executor: Executor | None = None, counts: RunCounts | None = None) -> pd.DataFrame:
    """Ticket finding for every (domain, seed): trains what is missing, loads the rest.

    ``settings`` are checked unless :func:`lottery.experiment.validate.resolve` made them;
    the selection (``domains``, ``seeds``, ``strategies``; None: the settings', seeds
    from ``ticket_seeds``) is checked against them. ``counts`` adds up what ran (see :func:`run_jobs`)."""
    settings = experiment.ensure_resolved(settings)
    seeds = experiment.ticket_seeds(settings) if seeds is None else seeds
    chosen = experiment.select(settings, domains=domains, seeds=seeds, strategies=strategies)
    return _tickets(settings, chosen.domains, chosen.seeds, chosen.strategies, progress, workers, store,
                    executor, counts)


def _tickets(settings: ExperimentSettings, domains: Sequence[str], seeds: Sequence[int],
             keys: Sequence[str], progress: bool, workers: int | None, store: RunStore | None,
             executor: Executor | None, counts: RunCounts | None) -> pd.DataFrame:
    """:func:`run_tickets` of a checked selection."""
    executor = executor or _default_executor
    n = len(domains) * len(seeds) * max(1, len(keys))
    waves = ticket_jobs(settings, domains, seeds, keys,
                        workers or (1 if executor else default_workers(n, settings.train.device,
                                                                       settings.train.threads)),
                        finer=executor is not None and cluster.is_dask(executor))
    for wave in waves[:-1]:    # round 0 alone: its chains have no rows of their own
        run_jobs(wave, store, executor, workers, progress, "tickets", counts)
    return results_frame(run_jobs(waves[-1], store, executor, workers, progress, "tickets", counts))


def run_transfer(settings: ExperimentSettings, pairs: Sequence[tuple[str, str]] | None = None,
                 seeds: Sequence[int] | None = None,
                 strategies: Sequence[str] = ("masks_reset", "masks_random"), progress: bool = True,
                 workers: int | None = None, store: RunStore | None = None,
                 executor: Executor | None = None, counts: RunCounts | None = None) -> pd.DataFrame:
    """Transfer for every (source, target) pair, seed and strategy. Source tickets are
    found first (in parallel, a no-op when the ticket chapter already ran them).
    Settings and selection are checked as in :func:`run_tickets`."""
    settings = experiment.ensure_resolved(settings)
    chosen = experiment.select(settings, seeds=seeds, pairs=pairs, strategies=strategies,
                               procedure="transfer")
    executor = executor or _default_executor
    sources = sorted({a for a, _ in chosen.pairs})
    if sources:
        _tickets(settings, sources, chosen.seeds, (strat.SOURCE_STRATEGY,), progress, workers, store,
                 executor, counts)
    jobs = [TransferChain(settings, a, b, s, k) for a, b in chosen.pairs for s in chosen.seeds
            for k in chosen.strategies]
    return results_frame(run_jobs(jobs, store, executor, workers, progress, "transfer", counts))
