"""Ticket finding and ticket transfer (paper §4.3, §5.2, §5.3) as resumable jobs.

A job is a frozen dataclass with ``run(store)`` and ``stored_rows(store)``, so any
executor can run it (:mod:`lottery.engine.runner`):

* :class:`TicketChain` (one run directory ``tickets-<hash>`` per domain and seed):
  round 0 trains the full model from θ0 (saved once as ``theta0.pt``): FULL-MODEL.
  Every round r ≥ 1 of a strategy takes its mask from that strategy's round r-1 and
  its start from θ0 or a fresh draw, as the strategy table says
  (:mod:`lottery.config.strategies`), and retrains. Each strategy follows its own pruning
  trajectory: TICKET-RANDOM prunes the weights *it* trained, so its masks differ from
  TICKET-RESET's from round 2 on.
* :class:`TransferChain` (``transfer-<hash>``): the source's TICKET-RESET masks
  m_1..m_n retrained in the target domain without further pruning (MASKS-RESET,
  MASKS-RANDOM). TICKET-TARGET is the target's own TICKET-RESET curve.

Within a (domain, seed), round r of every strategy trains with the same data order and
dropout noise (common random numbers), so strategies differ only by mask and init.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import torch

from lottery.config import ExperimentSettings, strategies as strat
from lottery.data.fingerprint import run_data_key
from lottery.engine.encoded import DomainData, domain_data
from lottery.engine.masks import Mask, full_mask, overall_sparsity
from lottery.engine.model import init_model
from lottery.engine.recovery import readable, repairing
from lottery.engine.starts import derive_seed, initial_model, next_mask
from lottery.engine.store import RunDir, RunStore
from lottery.engine.train import TrainResult, train_models
from lottery.experiment.labels import strategy_key


#: Bumped whenever a code change alters the numbers a run produces, so that stored
#: runs made by older code are not mixed with new ones. 2: dropout multipliers from
#: ``torch.rand < 1-p`` (a different random stream), ReLU after max-pooling, max with
#: indices (speed issue; same maths, other float and random streams). 3: the sparse
#: backward of 1-max pooled convolutions on CPU (issue 27; same maths, other float sums).
#: 4: that backward as two sparse matrix products (no (B, C, h, d) temporaries; the
#: weight gradient's sums run in another order).
ENGINE_VERSION = 4

Report = Callable[[dict[str, Any]], None]


def ticket_key(settings: ExperimentSettings, domain: str, seed: int) -> dict[str, Any]:
    """Everything a ticket run's numbers depend on (hashed into its directory name)."""
    # user datasets: keyed by the files' content and formats, not by where the spec and files are
    return {"engine": ENGINE_VERSION, **run_data_key(settings.data), "vocab": settings.vocab,
            "model": settings.model, "train": settings.train, "prune": settings.prune, "domain": domain,
            "seed": seed}


def transfer_key(settings: ExperimentSettings, source: str, target: str, seed: int,
                 strategy: str) -> dict[str, Any]:
    return {**ticket_key(settings, source, seed), "domain": None, "source": source,
            "target": target, "strategy": strategy}


def step_name(strategy: str, r: int) -> str:
    """A ticket run's step folder, e.g. ``reset/round_03``."""
    return f"{strategy}/round_{r:02d}"


def transfer_step(r: int) -> str:
    return f"round_{r:02d}"


def _store(store: RunStore | str | None) -> RunStore:
    return store if isinstance(store, RunStore) else RunStore(store)


def _keyed(metrics: dict[str, Any]) -> dict[str, Any]:
    """A stored metrics row with its strategy as the table's key: stores written before
    rows carried keys hold the label (``TICKET-RESET``); their files stay as they are."""
    return {**metrics, "strategy": strategy_key(metrics["strategy"])}


def _metrics(res: TrainResult, mask: Mask, reference: Mask, **fields: Any) -> dict[str, Any]:
    return {**fields, "sparsity": overall_sparsity(mask, reference), "val_acc": res.val_acc,
            "test_acc": res.test_acc, "test_positive_share": res.test_positive_share, "epochs": res.best_epoch, "epochs_run": res.epochs_run,
            "seconds": round(res.seconds, 3), "val_history": res.history,
            "device_name": res.device_name}


def _train(settings: ExperimentSettings, data: DomainData, keys: list[str], masks: list[Mask],
           starts: dict[str, Any], seed: int, r: int,
           on_step: Callable[[Any], None] | None = None) -> list[TrainResult]:
    """Round ``r`` of the strategies ``keys``: one training of len(keys) models, whose
    survivors start from ``starts`` (θ0, and θ_k for rewinding strategies)."""
    models = [initial_model(k, starts, data.vocab.size, data.vocab.pad_id, settings.model, seed, r)
              for k in keys]
    return train_models(models, masks, data.train, data.val, data.test, settings.train,
                        settings.vocab.max_len, seed=derive_seed(seed, "round", r),
                        on_step=on_step)


class _Rewound(Exception):
    def __init__(self, state: dict[str, torch.Tensor]):
        self.state = state


def rewind_point(settings: ExperimentSettings, data: DomainData, run: RunDir,
                 theta0: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """θ_k of a ticket run: its round-0 weights after k = ``prune.rewind_iterations``
    optimizer steps, stored once in the run (``theta_k<k>.pt``).

    Round 0 is trained again from θ0 with the same seed (the same batches and dropout,
    so the same trajectory on this machine) and stopped at step k; k = 0 is θ0.
    """
    k = settings.prune.rewind_iterations
    name = f"theta_k{k}.pt"
    if not (run.path / name).exists():
        steps = [0]

        def capture(net: Any) -> None:
            steps[0] += 1
            if steps[0] == k:
                raise _Rewound({n: t.detach().cpu().clone() for n, t in net.state_dict().items()})

        state = theta0
        if k > 0:
            reference = full_mask(init_model(data.vocab.size, settings.model, seed, data.vocab.pad_id),
                                  settings.prune.prune_biases)
            try:
                _train(settings, data, ["full"], [reference], {"theta0": theta0}, seed, 0, capture)
                raise ValueError(f"prune.rewind_iterations = {k} is beyond round 0's "
                                 f"{steps[0]} training iterations")
            except _Rewound as stop:
                state = stop.state
        run.save_file(name, state)
    return run.load_file(name)


def _starts(settings: ExperimentSettings, data: DomainData, run: RunDir, theta0: dict[str, torch.Tensor],
            seed: int, keys: Sequence[str]) -> dict[str, Any]:
    """What the strategies ``keys`` start from: θ0, and θ_k if one of them rewinds."""
    starts: dict[str, Any] = {"theta0": theta0}
    if strat.needs(keys, "rewind"):
        starts["rewind"] = rewind_point(settings, data, run, theta0, seed)
    return starts


def starts_for(settings: ExperimentSettings, data: DomainData, run: RunDir, theta0: dict[str, torch.Tensor],
               seed: int, keys: Sequence[str]) -> dict[str, Any]:
    """What the strategies ``keys`` start from when they retrain masks of the ticket run
    ``run`` (its θ0, and its θ_k, computed on ``data``, if one of them rewinds): for
    procedures outside this module (:mod:`lottery.federated.jobs`)."""
    return _starts(settings, data, run, theta0, seed, keys)


@dataclass(frozen=True)
class TicketChain:
    """Ticket finding for one domain and seed: FULL-MODEL, then ``rounds`` rounds of each
    strategy. ``strategies=()`` trains round 0 only. Settings must be resolved
    (:func:`lottery.experiment.validate.resolve`)."""

    settings: ExperimentSettings
    domain: str
    seed: int
    strategies: tuple[str, ...] = ("reset", "random", "random_pruning")

    def __post_init__(self) -> None:
        strat.check(self.strategies, "tickets")

    @property
    def steps(self) -> list[str]:
        rounds = range(1, self.settings.prune.rounds + 1)
        return [step_name("full", 0)] + [step_name(k, r) for k in self.strategies for r in rounds]

    def path(self, store: RunStore) -> Path:
        """The run folder, computed without creating anything (plans and checks)."""
        return store.path("tickets", ticket_key(self.settings, self.domain, self.seed))

    def run_dir(self, store: RunStore) -> RunDir:
        return store.run("tickets", ticket_key(self.settings, self.domain, self.seed))

    def stored_rows(self, store: RunStore) -> list[dict[str, Any]] | None:
        """The metric rows if every step is stored, else None (also when a stored step
        cannot be read: it is set aside, :mod:`lottery.engine.recovery`). Round 0 is
        repeated under each strategy's key so every curve starts at the full model."""
        return readable(lambda: self._stored_rows(store))

    def _stored_rows(self, store: RunStore) -> list[dict[str, Any]] | None:
        run = self.run_dir(store)
        if not all(map(run.done, self.steps)):
            return None
        full = run.metrics(step_name("full", 0))
        rows = []
        for k in self.strategies:
            rows.append({**full, "strategy": strategy_key(k)})
            rows += [_keyed(run.metrics(step_name(k, r))) for r in range(1, self.settings.prune.rounds + 1)]
        return rows

    def run(self, store: RunStore | str | None = None, report: Report | None = None) -> list[dict[str, Any]]:
        """Train what is missing (resuming from the last stored round; a stored step that
        cannot be read is set aside and trained again), return the rows."""
        return repairing(lambda: self._run(_store(store), report))

    def _run(self, store: RunStore, report: Report | None) -> list[dict[str, Any]]:
        s, seed = self.settings, self.seed
        run = self.run_dir(store)
        data = domain_data(s.data, s.vocab, self.domain)
        model = init_model(data.vocab.size, s.model, seed, data.vocab.pad_id)
        run.save_file("theta0.pt", model.state_dict())     # kept if already stored
        theta0 = run.load_file("theta0.pt")
        reference = full_mask(model, s.prune.prune_biases)
        base = {"procedure": "tickets", "domain": self.domain, "source": self.domain,
                "target": self.domain, "seed": seed}

        def record(key: str, r: int, mask: Mask, res: TrainResult) -> None:
            metrics = _metrics(res, mask, reference, **base, strategy=key, round=r)
            run.write_step(step_name(key, r), metrics, {"mask": mask, "weights": res.state})
            if r > 1:     # only the latest trained weights are needed to go on
                run.drop(step_name(key, r - 1), "weights")

        starts = _starts(s, data, run, theta0, seed, self.strategies)
        full = step_name("full", 0)
        with run.lock([full]):       # another chain of this run may be training it
            if not run.done(full):
                (res,) = _train(s, data, ["full"], [reference], starts, seed, 0)
                record("full", 0, reference, res)
        if report:
            report(run.metrics(full))
        for r in range(1, s.prune.rounds + 1):
            todo = [k for k in self.strategies if not run.done(step_name(k, r))]
            groups = [todo] if s.train.stack_strategies else [[k] for k in todo]
            for group in filter(None, groups):
                with run.lock([step_name(k, r) for k in group]):
                    group = [k for k in group if not run.done(step_name(k, r))]
                    prev = [full if r == 1 else step_name(k, r - 1) for k in group]
                    masks = [next_mask(k, run.tensors(p, "mask"), run.tensors(p, "weights"),
                                       s.prune.prune_fraction_per_round, seed, r)
                             for k, p in zip(group, prev)]
                    for k, mask, res in zip(group, masks, _train(s, data, group, masks, starts, seed, r)
                                            if group else []):
                        record(k, r, mask, res)
            if report:
                for k in self.strategies:
                    report(run.metrics(step_name(k, r)))
        return self._stored_rows(store) or []   # a damaged step raises: repairing() retries

    def retrain_full(self, store: RunStore | str | None = None) -> dict[str, Any]:
        """Train round 0 again from the stored θ0, in memory, and compare it with the
        stored FULL-MODEL (the book's same-machine reproducibility check)."""
        store, s = _store(store), self.settings
        run = self.run_dir(store)
        stored = run.metrics(step_name("full", 0))
        data = domain_data(s.data, s.vocab, self.domain)
        theta0 = run.load_file("theta0.pt")
        reference = full_mask(init_model(data.vocab.size, s.model, self.seed, data.vocab.pad_id),
                              s.prune.prune_biases)
        (res,) = _train(s, data, ["full"], [reference], {"theta0": theta0}, self.seed, 0)
        return {"domain": self.domain, "seed": self.seed, "stored test_acc": stored["test_acc"],
                "retrained test_acc": res.test_acc, "stored val history": stored["val_history"],
                "retrained val history": res.history,
                "identical": stored["test_acc"] == res.test_acc and stored["val_history"] == res.history}


@dataclass(frozen=True)
class TransferChain:
    """One transfer task, seed and strategy: the source's TICKET-RESET masks retrained in
    the target (source tickets are found first if the store lacks them)."""

    settings: ExperimentSettings
    source: str
    target: str
    seed: int
    strategy: str = "masks_reset"
    #: Only these rounds (a Dask task per round; same run folder, same numbers).
    only_rounds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        strat.check([self.strategy], "transfer")
        if self.source == self.target:
            raise ValueError(f"transfer needs two different domains, got source == target == {self.source!r}")

    @property
    def rounds(self) -> list[int]:
        """The source rounds whose masks are transferred (``transfer_rounds``, else all)."""
        chosen = self.settings.transfer_rounds
        return [r for r in range(1, self.settings.prune.rounds + 1) if (chosen is None or r in chosen)
                and (self.only_rounds is None or r in self.only_rounds)]

    @property
    def steps(self) -> list[str]:
        return [transfer_step(r) for r in self.rounds]

    def source_chain(self) -> TicketChain:
        return TicketChain(self.settings, self.source, self.seed, (strat.SOURCE_STRATEGY,))

    def path(self, store: RunStore) -> Path:
        """The run folder, computed without creating anything (plans and checks)."""
        return store.path("transfer", transfer_key(self.settings, self.source, self.target, self.seed,
                                                   self.strategy))

    def run_dir(self, store: RunStore) -> RunDir:
        return store.run("transfer", transfer_key(self.settings, self.source, self.target, self.seed,
                                                  self.strategy))

    def stored_rows(self, store: RunStore) -> list[dict[str, Any]] | None:
        return readable(lambda: self._stored_rows(store))

    def _stored_rows(self, store: RunStore) -> list[dict[str, Any]] | None:
        run = self.run_dir(store)
        return [_keyed(run.metrics(step)) for step in self.steps] if all(map(run.done, self.steps)) else None

    def run(self, store: RunStore | str | None = None, report: Report | None = None) -> list[dict[str, Any]]:
        return repairing(lambda: self._run(_store(store), report))

    def _run(self, store: RunStore, report: Report | None) -> list[dict[str, Any]]:
        s, seed = self.settings, self.seed
        source = self.source_chain()
        if source.stored_rows(store) is None:
            source.run(store, report)
        src = source.run_dir(store)
        run = self.run_dir(store)
        data = domain_data(s.data, s.vocab, self.target)
        theta0 = src.load_file("theta0.pt")
        reference = full_mask(init_model(data.vocab.size, s.model, seed, data.vocab.pad_id), s.prune.prune_biases)
        base = {"procedure": "transfer", "strategy": self.strategy, "domain": self.target,
                "source": self.source, "target": self.target, "seed": seed}
        starts = {"theta0": theta0}
        if strat.needs([self.strategy], "rewind"):   # the source's θ_k, from the source's data
            starts = _starts(s, domain_data(s.data, s.vocab, self.source), src, theta0, seed,
                             [self.strategy])
        for r in self.rounds:
            step = transfer_step(r)
            with run.lock([step]):
                if not run.done(step):
                    mask = src.tensors(step_name(strat.SOURCE_STRATEGY, r), "mask")
                    (res,) = _train(s, data, [self.strategy], [mask], starts, seed, r)
                    run.write_step(step, _metrics(res, mask, reference, **base, round=r))
            if report:
                report(run.metrics(step))
        return self._stored_rows(store) or []   # a damaged step raises: repairing() retries


Job = Union["TicketChain", "TransferChain"]


def run_job(job: Job, store_root: str, events: Any = None) -> list[dict[str, Any]]:
    """Entry point on a worker: run one job; per-round progress goes to ``events`` (a queue)."""
    return job.run(RunStore(store_root), events.put if events is not None else None)
