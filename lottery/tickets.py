"""Ticket finding and ticket transfer (paper §4.3, §5.2, §5.3), resumable through the run store.

Ticket finding for one domain and seed (one run directory ``tickets-<hash>``):

* round 0 trains the full model from θ0 (saved once as ``theta0.pt``): FULL-MODEL;
* every round r ≥ 1 of a strategy prunes a fraction p of the survivors of that
  strategy's round r-1 (by magnitude of its trained weights), re-initialises the
  survivors and retrains. Strategies, each on its own pruning trajectory:

  - ``reset``  (TICKET-RESET):  survivors back to θ0 (Frankle & Carbin);
  - ``random`` (TICKET-RANDOM): survivors drawn afresh from the §4.3.1 distributions;
  - ``random_pruning`` (RANDOM-PRUNING, control): a random subset of the survivors with
    the same per-layer counts, reset to θ0.

Transfer (``transfer-<hash>``): the source's TICKET-RESET masks m_1..m_n retrained in the
target domain without further pruning, from the source's θ0 (``masks_reset``,
MASKS-RESET) or from a fresh draw (``masks_random``, MASKS-RANDOM). TICKET-TARGET is
the target's own TICKET-RESET curve.

Within a (domain, seed), round r of every strategy trains with the same data order and
dropout noise (common random numbers), so strategies differ only by mask and init.
"""

from __future__ import annotations

import hashlib
import os
import sys
import queue as queue_mod
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence

import multiprocessing as mp

import pandas as pd
import torch

from lottery import config
from lottery.config import ExperimentSettings
from lottery.masks import Mask, full_mask, magnitude_prune, overall_sparsity, random_prune
from lottery.model import init_model, reset_parameters
from lottery.store import RunDir, RunStore
from lottery.train import EncodedSplit, encode_split, train_masked

TICKET_STRATEGIES = {"reset": "TICKET-RESET", "random": "TICKET-RANDOM", "random_pruning": "RANDOM-PRUNING"}
TRANSFER_STRATEGIES = {"masks_reset": "MASKS-RESET", "masks_random": "MASKS-RANDOM"}
RESULT_COLUMNS = ["procedure", "strategy", "domain", "source", "target", "seed", "round", "sparsity",
                  "val_acc", "test_acc", "epochs", "epochs_run", "seconds"]

Progress = Callable[[dict[str, Any]], None]


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed that depends only on ``parts`` (stable across runs and machines)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:15], 16)


# ------------------------------------------------------------------ validation

def _resolve(domain: str, settings: ExperimentSettings) -> str:
    from lottery.data import resolve_domain

    name = resolve_domain(domain, settings.data.dataset)
    if name not in settings.data.domains:
        raise ValueError(f"domain {domain!r} is not among this profile's domains {list(settings.data.domains)} "
                         f"(the shared vocabulary is trained on those; add it with data.domains)")
    return name


def validate(settings: ExperimentSettings) -> None:
    config.check_prune_fraction(settings.prune.prune_fraction_per_round)
    if settings.prune.rounds < 0:
        raise ValueError(f"prune.rounds must be >= 0, got {settings.prune.rounds}")
    if settings.train.max_epochs < 1:
        raise ValueError(f"train.max_epochs must be >= 1, got {settings.train.max_epochs}")
    if settings.train.patience is not None and settings.train.patience < 1:
        raise ValueError(f"train.patience must be >= 1 or None, got {settings.train.patience}")


def _check_strategies(strategies: Iterable[str], known: dict[str, str]) -> list[str]:
    out = []
    for s in strategies:
        key = {v: k for k, v in known.items()}.get(s, s)
        if key not in known:
            raise ValueError(f"unknown strategy {s!r}; choose from {sorted(known)}")
        out.append(key)
    return out


# ------------------------------------------------------------------ data for one domain

@lru_cache(maxsize=32)
def domain_data(data: config.DataSettings, vocab_settings: config.VocabSettings,
                domain: str) -> tuple[Any, EncodedSplit, EncodedSplit, EncodedSplit]:
    """(vocab, train, val, test) of ``domain`` encoded with the shared vocabulary."""
    from lottery.data import load_splits
    from lottery.vocab import shared_vocab

    vocab = shared_vocab(data, vocab_settings)
    splits = load_splits(data, domain)
    enc = [encode_split(vocab, df["text"].tolist(), df["label"].tolist(), vocab_settings.max_len)
           for df in (splits.train, splits.val, splits.test)]
    return (vocab, *enc)


# ------------------------------------------------------------------ keys

#: Bumped whenever a code change alters the numbers a run produces, so that stored
#: runs made by older code are not mixed with new ones.
ENGINE_VERSION = 1


def ticket_key(settings: ExperimentSettings, domain: str, seed: int) -> dict[str, Any]:
    return {"engine": ENGINE_VERSION, "data": settings.data, "vocab": settings.vocab, "model": settings.model,
            "train": settings.train, "prune": settings.prune, "domain": domain, "seed": seed}


def transfer_key(settings: ExperimentSettings, source: str, target: str, seed: int,
                 strategy: str) -> dict[str, Any]:
    return {**ticket_key(settings, source, seed), "domain": None, "source": source,
            "target": target, "strategy": strategy}


def _step(strategy: str, r: int) -> str:
    return f"{strategy}/round_{r:02d}"


def _theta0(run: RunDir, settings: ExperimentSettings, vocab_size: int, pad_id: int, seed: int):
    path = run.path / "theta0.pt"
    model = init_model(vocab_size, settings.model, seed, pad_id)
    if path.exists():
        from lottery.store import load_tensors

        model.load_state_dict(load_tensors(path))
    else:
        from lottery.store import save_tensors

        save_tensors(path, model.state_dict())
    return model


#: Strategies whose survivors start from a fresh draw of the §4.3.1 distributions.
FRESH_INIT = {"random", "masks_random"}


def initial_model(strategy: str, theta0: dict[str, torch.Tensor], settings: ExperimentSettings,
                  vocab, seed: int, r: int):
    """The network a round starts from, before its mask is applied: θ0 (the same θ0 of
    this seed, or the source's θ0 in transfer) for reset-type strategies, a fresh draw
    seeded by (seed, strategy, round) for TICKET-RANDOM and MASKS-RANDOM."""
    model = init_model(vocab.size, settings.model, seed, vocab.pad_id)
    if strategy in FRESH_INIT:
        reset_parameters(model, torch.Generator().manual_seed(derive_seed(seed, strategy, r)))
    else:
        model.load_state_dict(theta0)
    return model


def _train_round(model, mask: Mask, splits, settings: ExperimentSettings, seed: int, r: int):
    _, train, val, test = splits
    return train_masked(model, mask, train, val, test, settings.train, settings.vocab.max_len,
                        seed=derive_seed(seed, "round", r))


def _train_stacked_round(models, masks: list[Mask], splits, settings: ExperimentSettings,
                         seed: int, r: int):
    """Like :func:`_train_round` for K models at once (one model: the plain path)."""
    if len(models) == 1:
        return [_train_round(models[0], masks[0], splits, settings, seed, r)]
    from lottery.stacked import train_stacked

    _, train, val, test = splits
    return train_stacked(models, masks, train, val, test, settings.train, settings.vocab.max_len,
                         seed=derive_seed(seed, "round", r))


def _metrics(res, mask: Mask, reference: Mask, **fields) -> dict[str, Any]:
    return {**fields, "sparsity": overall_sparsity(mask, reference), "val_acc": res.val_acc,
            "test_acc": res.test_acc, "epochs": res.best_epoch, "epochs_run": res.epochs_run,
            "seconds": round(res.seconds, 3), "val_history": res.history}


# ------------------------------------------------------------------ procedures

def find_tickets(settings: ExperimentSettings, domain: str, seed: int,
                 strategies: Sequence[str] = ("reset", "random", "random_pruning"),
                 store: RunStore | None = None, on_round: Progress | None = None) -> list[dict[str, Any]]:
    """Run (or resume) ticket finding for one domain and seed; return its metric rows."""
    validate(settings)
    strategies = _check_strategies(strategies, TICKET_STRATEGIES)
    domain = _resolve(domain, settings)
    store = store or RunStore()
    run = store.run("tickets", ticket_key(settings, domain, seed))
    splits = domain_data(settings.data, settings.vocab, domain)
    vocab = splits[0]
    p = settings.prune.prune_fraction_per_round
    base = {"procedure": "tickets", "domain": domain, "source": domain, "target": domain, "seed": seed}
    theta0 = _theta0(run, settings, vocab.size, vocab.pad_id, seed).state_dict()
    reference = full_mask(init_model(vocab.size, settings.model, seed, vocab.pad_id), settings.prune.prune_biases)

    step0 = _step("full", 0)
    if not run.done(step0):
        res = _train_round(initial_model("reset", theta0, settings, vocab, seed, 0), reference, splits, settings, seed, 0)
        run.write_step(step0, _metrics(res, reference, reference, **base, strategy="FULL-MODEL", round=0),
                       {"mask": reference, "weights": res.state})
    if on_round:
        on_round({**run.metrics(step0)})

    def next_mask(strategy: str, prev: str, r: int) -> Mask:
        prev_mask, prev_weights = run.tensors(prev, "mask"), run.tensors(prev, "weights")
        if strategy == "random_pruning":
            gen = torch.Generator().manual_seed(derive_seed(seed, strategy, "mask", r))
            return random_prune(prev_mask, p, gen)
        return magnitude_prune(prev_mask, prev_weights, p)

    def record(strategy: str, prev: str, r: int, mask: Mask, res) -> None:
        run.write_step(_step(strategy, r), _metrics(res, mask, reference, **base,
                                      strategy=TICKET_STRATEGIES[strategy], round=r),
                       {"mask": mask, "weights": res.state})
        if prev != step0:   # only the latest trained weights are needed to go on
            run.drop(prev, "weights")

    if settings.train.stack_strategies:
        # Lockstep: round r of every strategy trains as one stacked model.
        for r in range(1, settings.prune.rounds + 1):
            prev_of = {s: step0 if r == 1 else _step(s, r - 1) for s in strategies}
            todo = [s for s in strategies if not run.done(_step(s, r))]
            if todo:
                masks = [next_mask(s, prev_of[s], r) for s in todo]
                models = [initial_model(s, theta0, settings, vocab, seed, r) for s in todo]
                results = _train_stacked_round(models, masks, splits, settings, seed, r)
                for s, mask, res in zip(todo, masks, results):
                    record(s, prev_of[s], r, mask, res)
            if on_round:
                for s in strategies:
                    on_round(run.metrics(_step(s, r)))
        return ticket_rows(run, settings.prune.rounds, strategies)

    for strategy in strategies:
        prev = step0
        for r in range(1, settings.prune.rounds + 1):
            step = _step(strategy, r)
            if not run.done(step):
                mask = next_mask(strategy, prev, r)
                model = initial_model(strategy, theta0, settings, vocab, seed, r)
                res = _train_round(model, mask, splits, settings, seed, r)
                record(strategy, prev, r, mask, res)
            if on_round:
                on_round(run.metrics(step))
            prev = step
    return ticket_rows(run, settings.prune.rounds, strategies)


def ticket_rows(run: RunDir, rounds: int, strategies: Sequence[str]) -> list[dict[str, Any]]:
    """Metric rows of every finished step of a ticket run: round 0 is repeated under each
    strategy name so every curve starts at the full model."""
    rows = []
    if not run.done(_step("full", 0)):
        return rows
    full = run.metrics(_step("full", 0))
    for strategy in strategies:
        rows.append({**full, "strategy": TICKET_STRATEGIES[strategy]})
        for r in range(1, rounds + 1):
            if run.done(_step(strategy, r)):
                rows.append(run.metrics(_step(strategy, r)))
    return rows


def transfer_tickets(settings: ExperimentSettings, source: str, target: str, seed: int,
                     strategy: str = "masks_reset", store: RunStore | None = None,
                     on_round: Progress | None = None) -> list[dict[str, Any]]:
    """Retrain the source's TICKET-RESET masks in the target domain (no further pruning).

    The source's ticket run is found (or computed, TICKET-RESET only) in the store first.
    """
    validate(settings)
    (strategy,) = _check_strategies([strategy], TRANSFER_STRATEGIES)
    source, target = _resolve(source, settings), _resolve(target, settings)
    if source == target:
        raise ValueError(f"transfer needs two different domains, got source == target == {source!r}")
    store = store or RunStore()
    src = store.run("tickets", ticket_key(settings, source, seed))
    rounds = settings.prune.rounds
    if not all(src.done(_step("reset", r)) for r in range(1, rounds + 1)):
        find_tickets(settings, source, seed, ("reset",), store, on_round)
    run = store.run("transfer", transfer_key(settings, source, target, seed, strategy))
    splits = domain_data(settings.data, settings.vocab, target)
    vocab = splits[0]
    from lottery.store import load_tensors

    theta0 = load_tensors(src.path / "theta0.pt")
    reference = full_mask(init_model(vocab.size, settings.model, seed, vocab.pad_id), settings.prune.prune_biases)
    base = {"procedure": "transfer", "strategy": TRANSFER_STRATEGIES[strategy], "domain": target,
            "source": source, "target": target, "seed": seed}
    for r in range(1, rounds + 1):
        step = f"round_{r:02d}"
        if not run.done(step):
            mask = src.tensors(_step("reset", r), "mask")
            model = initial_model(strategy, theta0, settings, vocab, seed, r)
            res = _train_round(model, mask, splits, settings, seed, r)
            run.write_step(step, _metrics(res, mask, reference, **base, round=r))
        if on_round:
            on_round(run.metrics(step))
    return [run.metrics(f"round_{r:02d}") for r in range(1, rounds + 1) if run.done(f"round_{r:02d}")]


# ------------------------------------------------------------------ many runs at once

def _work(kind: str, settings: ExperimentSettings, job: tuple, store: RunStore,
          report: Progress | None) -> list[dict]:
    """One unit of work, single-threaded, so that results do not depend on how many
    workers run (and two 1-thread workers beat one 2-thread process on CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if kind == "tickets":
            domain, seed, strategies = job
            return find_tickets(settings, domain, seed, strategies, store, report)
        source, target, seed, strategy = job
        return transfer_tickets(settings, source, target, seed, strategy, store, report)
    finally:
        torch.set_num_threads(threads)


def _worker(kind: str, settings: ExperimentSettings, job: tuple, store_root: str, events) -> list[dict]:
    """Entry point in a worker process: progress goes back through a queue."""
    return _work(kind, settings, job, RunStore(store_root), events.put)


def default_workers(n_jobs: int, device: str = "cpu") -> int:
    """One single-threaded worker per core on CPU (at most one per job); one on GPU.

    Worker processes are started with 'spawn' (forking after OpenMP has started can
    hang), which re-imports the main script; when there is no script to re-import
    (``python -`` or ``python -c``) we run in-process instead.
    """
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if device != "cpu" or (main_file is not None and not os.path.exists(main_file)):
        return 1
    return max(1, min(n_jobs, os.cpu_count() or 1))


def _run_jobs(kind: str, settings: ExperimentSettings, jobs: list[tuple], total_steps: int,
              store: RunStore, progress: bool, workers: int | None) -> list[dict]:
    from tqdm.auto import tqdm

    rows: list[dict] = []
    todo = []
    for job in jobs:                   # finished jobs are only read: no workers, no data
        stored = _stored_rows(kind, settings, job, store)
        if stored is None:
            todo.append(job)
        else:
            rows += stored
    if not todo:
        return rows
    jobs = todo
    workers = workers or default_workers(len(jobs), settings.train.device)
    bar = tqdm(total=total_steps, desc=f"{kind}", unit="round", disable=not progress, smoothing=0.05)

    def show(row: dict) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{row['strategy']} {row['domain']} seed {row['seed']} round {row['round']} "
                            f"test {row['test_acc']:.3f}", refresh=False)

    try:
        if workers == 1 or len(jobs) == 1:
            for job in jobs:
                rows += _work(kind, settings, job, store, show)
            return rows
        ctx = mp.get_context("spawn")
        with mp.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            events = manager.Queue()
            pending = {pool.submit(_worker, kind, settings, job, str(store.root), events) for job in jobs}
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                _drain(events, show)
                for fut in done:
                    rows += fut.result()
            _drain(events, show)
        return rows
    finally:
        bar.close()


def _stored_rows(kind: str, settings: ExperimentSettings, job: tuple, store: RunStore) -> list[dict] | None:
    """The metric rows of a job whose every step is already in the store, else None."""
    rounds = settings.prune.rounds
    if kind == "tickets":
        domain, seed, strategies = job
        run = store.run("tickets", ticket_key(settings, domain, seed))
        steps = [_step("full", 0)] + [_step(s, r) for s in strategies for r in range(1, rounds + 1)]
        return ticket_rows(run, rounds, strategies) if all(map(run.done, steps)) else None
    source, target, seed, strategy = job
    run = store.run("transfer", transfer_key(settings, source, target, seed, strategy))
    steps = [f"round_{r:02d}" for r in range(1, rounds + 1)]
    return [run.metrics(s) for s in steps] if all(map(run.done, steps)) else None


def _drain(events, show) -> None:
    while True:
        try:
            show(events.get_nowait())
        except queue_mod.Empty:
            return


def run_tickets(settings: ExperimentSettings, domains: Sequence[str] | None = None,
                seeds: Sequence[int] | None = None, strategies: Sequence[str] | None = None,
                progress: bool = True, workers: int | None = None,
                store: RunStore | None = None) -> pd.DataFrame:
    """Ticket finding for every (domain, seed): trains what is missing, loads the rest."""
    validate(settings)
    domains = [_resolve(d, settings) for d in (domains or settings.data.domains)]
    seeds = list(settings.seeds if seeds is None else seeds)
    strategies = _check_strategies(strategies or [s for s in settings.strategies if s in TICKET_STRATEGIES],
                                   TICKET_STRATEGIES)
    store = store or RunStore()
    controls = settings.control_domains
    controls = None if controls is None else {_resolve(d, settings) for d in controls}

    def for_domain(d: str) -> tuple[str, ...]:
        return tuple(s for s in strategies if s != "random_pruning" or controls is None or d in controls)

    jobs = [(d, s, for_domain(d)) for d in domains for s in seeds]
    total = sum(1 + settings.prune.rounds * len(job[2]) for job in jobs)
    workers = workers or default_workers(sum(len(job[2]) for job in jobs) or len(jobs), settings.train.device)
    if (workers > 1 and len(jobs) % workers and any(len(job[2]) > 1 for job in jobs)
            and not settings.train.stack_strategies):   # stacking needs a job's strategies together
        # Finer jobs balance the workers (e.g. 3 seeds on 2 cores): every round 0 first,
        # then one job per (domain, seed, strategy) chain. Same steps, same numbers.
        _run_jobs("tickets", settings, [(d, s, ()) for d, s, _ in jobs], len(jobs), store, progress, workers)
        jobs = [(d, s, (st,)) for d, s, sts in jobs for st in sts]
        total = sum(1 + settings.prune.rounds for _ in jobs)
    return results_frame(_run_jobs("tickets", settings, jobs, total, store, progress, workers))


def run_transfer(settings: ExperimentSettings, pairs: Sequence[tuple[str, str]] | None = None,
                 seeds: Sequence[int] | None = None, strategies: Sequence[str] = ("masks_reset", "masks_random"),
                 progress: bool = True, workers: int | None = None,
                 store: RunStore | None = None) -> pd.DataFrame:
    """Transfer for every (source, target) pair, seed and strategy. Source tickets come
    from the store (computed first, in parallel, if missing)."""
    validate(settings)
    pairs = [(_resolve(a, settings), _resolve(b, settings)) for a, b in (pairs or settings.transfer_pairs)]
    for a, b in pairs:
        if a == b:
            raise ValueError(f"transfer pair ({a!r}, {b!r}): source and target must differ")
    seeds = list(settings.seeds if seeds is None else seeds)
    strategies = _check_strategies(strategies, TRANSFER_STRATEGIES)
    store = store or RunStore()
    sources = sorted({a for a, _ in pairs})
    # Source tickets first (no-ops when the ticket chapter already ran them).
    run_tickets(settings, sources, seeds, ["reset"], progress, workers, store)
    jobs = [(a, b, s, st) for a, b in pairs for s in seeds for st in strategies]
    total = len(jobs) * settings.prune.rounds
    return results_frame(_run_jobs("transfer", settings, jobs, total, store, progress, workers))


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The tidy results table the book plots (one row per trained network)."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    df = df[RESULT_COLUMNS]
    return df.sort_values(["procedure", "source", "target", "strategy", "seed", "round"]).reset_index(drop=True)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std of test accuracy over seeds, by curve and round."""
    keys = ["procedure", "source", "target", "strategy", "round"]
    g = df.groupby(keys, sort=True)
    out = g.agg(sparsity=("sparsity", "mean"), test_mean=("test_acc", "mean"), test_std=("test_acc", "std"),
                n_seeds=("seed", "nunique")).reset_index()
    return out
