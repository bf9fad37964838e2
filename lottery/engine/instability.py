"""Instability analysis (Frankle et al., ICML 2020: linear mode connectivity) as a
resumable job: does a ticket train to the same linearly connected basin whatever the
data order and dropout noise?

For one ticket strategy, domain and seed, and each chosen round r,
:class:`InstabilityJob` takes the ticket run's mask of round r (round 0: the full mask,
the dense network) and the start that round r of the ticket chain trains from (θ0, θ_k
or the same fresh draw: :func:`lottery.engine.starts.initial_model`; TICKET-REWIND: the
run's θ_k, :func:`lottery.engine.jobs.starts_for`), trains two copies
with different data order and dropout (seeds ``derive_seed(seed, "instability", r,
copy)``), and evaluates the test error along the linear path between them at ``points``
values of α, every interpolated network masked (pruned weights exactly 0). The *error
barrier* is the largest error on the path minus the mean of the two endpoints' errors:
about 0 when both copies end in one linearly connected basin (the network is *stable*
to SGD noise), clearly positive when they do not.

*Transfer instability* (``source`` set, a transfer strategy: MASKS-RESET, MASKS-RANDOM,
MASKS-REWIND): as :class:`~lottery.engine.jobs.TransferChain` retrains them, round r's
mask is the *source* domain's TICKET-RESET mask of round r, the start is the source's θ0,
a fresh draw or the source's θ_k, and the two copies train and are evaluated on the
``domain`` (the target)'s data. Rounds 1.. only (round 0 has no transferred mask).

Run folder ``instability-<hash>`` (the ticket run's key plus strategy and points; for
transfer, the transfer key: source, target, strategy, plus points), one step
``round_rr`` per round: hashed, resumable and atomic like every run
(:mod:`lottery.engine.store`). Ticket runs that are missing are trained first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch

from lottery.config import ExperimentSettings, strategies as strat
from lottery.engine.devices import deterministic
from lottery.engine.encoded import DomainData, domain_data
from lottery.engine.jobs import (Report, TicketChain, starts_for, step_name, ticket_key, transfer_key,
                                 transfer_step)
from lottery.engine.masks import Mask, full_mask, overall_sparsity
from lottery.engine.model import init_model
from lottery.engine.recovery import readable, repairing
from lottery.engine.runner import run_jobs
from lottery.engine.starts import derive_seed, initial_model
from lottery.engine.store import RunDir, RunStore
from lottery.engine.train import TrainResult, evaluate, intra_op_threads, train_models
from lottery.experiment import validate as experiment

#: Bumped when a change alters the numbers an instability run produces.
INSTABILITY_VERSION = 1


def instability_key(settings: ExperimentSettings, domain: str, seed: int, strategy: str,
                    points: int) -> dict[str, Any]:
    """Everything an instability run's numbers depend on (hashed into its folder name)."""
    return {**ticket_key(settings, domain, seed), "strategy": strategy, "points": points,
            "instability": INSTABILITY_VERSION}


def path_alphas(points: int) -> list[float]:
    """α = i/(points-1), i = 0..points-1: both endpoints included."""
    return [i / (points - 1) for i in range(points)]


@torch.no_grad()
def interpolate(state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor], alpha: float,
                mask: Mask) -> dict[str, torch.Tensor]:
    """The weights (1-α)·a + α·b, every pruned weight set to exactly 0.

    ``torch.lerp`` gives a at α = 0 and b at α = 1 exactly, and a itself when a = b, so
    the path's endpoints are the two trained networks and a network interpolated with
    itself is itself. Tensors that are not floating point (none in the text CNN) are a's.
    """
    out = {}
    for name, a in state_a.items():
        w = torch.lerp(a, state_b[name].to(a.device), alpha) if a.is_floating_point() else a.clone()
        if name in mask:   # the survivors only: a pruned weight is exactly 0 on the whole path
            w = torch.where(mask[name].to(w.device), w, torch.zeros_like(w))
        out[name] = w
    return out


def barrier(errors: Sequence[float]) -> float:
    """The error barrier of a path: its largest error minus the mean of its endpoints'."""
    return float(max(errors) - (errors[0] + errors[-1]) / 2)


def path_errors(state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor], mask: Mask,
                data: DomainData, settings: ExperimentSettings, alphas: Sequence[float]) -> list[float]:
    """Test error of the masked interpolation at each α (evaluated as training evaluates)."""
    t = settings.train
    model = init_model(data.vocab.size, settings.model, 0, data.vocab.pad_id)   # weights replaced
    errors = []
    with intra_op_threads(t.threads), deterministic(t.device):
        net = model.to(t.device)
        for alpha in alphas:
            net.load_state_dict(interpolate(state_a, state_b, alpha, mask))
            ((acc, _),) = evaluate(net, data.test, settings.vocab.max_len, t.eval_batch_size, t.device,
                                   t.autocast_dtype)
            errors.append(1.0 - acc)
    return errors


def check_strategy(strategy: str, domain: str, source: str | None) -> None:
    """Ticket strategies measure a domain's own tickets (no ``source``); transfer
    strategies measure a source's masks retrained in ``domain`` (a ``source`` ≠ ``domain``)."""
    procedure = "tickets" if source is None else "transfer"
    try:
        strat.check([strategy], procedure)
    except ValueError:
        raise ValueError(f"instability of {strategy!r} with source={source!r}: ticket strategies "
                         f"{list(strat.keys('tickets'))} take no source, transfer strategies "
                         f"{list(strat.keys('transfer'))} need one (the domain whose masks they "
                         f"retrain)") from None
    if source == domain:
        raise ValueError(f"transfer instability needs two different domains, got source == target == {domain!r}")


@dataclass(frozen=True)
class InstabilityJob:
    """Instability of one strategy's rounds ``rounds`` for one domain and seed: a ticket
    strategy's own rounds (0 = the dense network), or with ``source`` a transfer
    strategy's rounds (1..) of the source's masks retrained in ``domain``, the target.
    Settings must be resolved (:func:`lottery.experiment.validate.resolve`)."""

    settings: ExperimentSettings
    domain: str
    seed: int
    strategy: str
    rounds: tuple[int, ...]
    points: int = 11
    source: str | None = None
    #: Each step trains two networks (the plans count trainings: :mod:`lottery.book.plan`).
    trainings_per_step = 2

    def __post_init__(self) -> None:
        check_strategy(self.strategy, self.domain, self.source)
        if self.points < 2:
            raise ValueError(f"an interpolation path needs at least 2 points, got {self.points}")
        first = 0 if self.source is None else 1     # a transfer has no round-0 mask
        bad = [r for r in self.rounds if not first <= r <= self.settings.prune.rounds]
        if bad or not self.rounds:
            raise ValueError(f"rounds must be a non-empty choice of {first}..{self.settings.prune.rounds}, "
                             f"got {self.rounds}")

    @property
    def key(self) -> dict[str, Any]:
        if self.source is None:
            return instability_key(self.settings, self.domain, self.seed, self.strategy, self.points)
        return {**transfer_key(self.settings, self.source, self.domain, self.seed, self.strategy),
                "points": self.points, "instability": INSTABILITY_VERSION}

    @property
    def steps(self) -> list[str]:
        return [transfer_step(r) for r in self.rounds]

    @property
    def mask_strategy(self) -> str:
        """The ticket strategy whose masks are measured (a transfer's: the source's reset)."""
        return self.strategy if self.source is None else strat.SOURCE_STRATEGY

    def ticket_chain(self) -> TicketChain:
        """The ticket run whose masks and starts this job takes (a transfer: the source's)."""
        return TicketChain(self.settings, self.source or self.domain, self.seed, (self.mask_strategy,))

    def path(self, store: RunStore) -> Path:
        """The run folder, computed without creating anything (plans and checks)."""
        return store.path("instability", self.key)

    def run_dir(self, store: RunStore) -> RunDir:
        return store.run("instability", self.key)

    def stored_rows(self, store: RunStore) -> list[dict[str, Any]] | None:
        """The rows if every step is stored, else None (a damaged step is set aside)."""
        return readable(lambda: self._stored_rows(store))

    def _stored_rows(self, store: RunStore) -> list[dict[str, Any]] | None:
        run = self.run_dir(store)
        return [run.metrics(step) for step in self.steps] if all(map(run.done, self.steps)) else None

    def run(self, store: RunStore | str | None = None, report: Report | None = None) -> list[dict[str, Any]]:
        """Measure what is missing (the ticket run first, if it is not stored), return the rows."""
        store = store if isinstance(store, RunStore) else RunStore(store)
        return repairing(lambda: self._run(store, report))

    def _run(self, store: RunStore, report: Report | None) -> list[dict[str, Any]]:
        s, chain = self.settings, self.ticket_chain()
        run = self.run_dir(store)
        if all(map(run.done, self.steps)):
            return self._stored_rows(store) or []
        if chain.stored_rows(store) is None:
            chain.run(store)
        tickets = chain.run_dir(store)
        data = domain_data(s.data, s.vocab, self.domain)    # a transfer's target
        theta0 = tickets.load_file("theta0.pt")
        # θ_k (if the strategy rewinds) of the ticket run, from its own domain's data
        rewinds = self.source is not None and strat.needs([self.strategy], "rewind")
        origin = domain_data(s.data, s.vocab, self.source) if rewinds else data
        starts = starts_for(s, origin, tickets, theta0, self.seed, [self.strategy])
        for r in self.rounds:
            step = transfer_step(r)
            with run.lock([step]):
                if not run.done(step):
                    run.write_step(step, self._measure(data, tickets, starts, r))
            if report:
                report(run.metrics(step))
        return self._stored_rows(store) or []   # a damaged step raises: repairing() retries

    def _copy(self, data: DomainData, key: str, starts: dict[str, Any], mask: Mask, r: int,
              copy: int) -> TrainResult:
        """One of the two trainings: round r's start and mask, its own batches and dropout."""
        s = self.settings
        model = initial_model(key, starts, data.vocab.size, data.vocab.pad_id, s.model, self.seed, r)
        (res,) = train_models([model], [mask], data.train, data.val, data.test, s.train, s.vocab.max_len,
                              seed=derive_seed(self.seed, "instability", r, copy))
        return res

    def _measure(self, data: DomainData, tickets: RunDir, starts: dict[str, Any], r: int) -> dict[str, Any]:
        s = self.settings
        reference = full_mask(init_model(data.vocab.size, s.model, self.seed, data.vocab.pad_id),
                              s.prune.prune_biases)
        key, mask = (("full", reference) if r == 0 else
                     (self.strategy, tickets.tensors(step_name(self.mask_strategy, r), "mask")))
        start = time.perf_counter()
        a, b = (self._copy(data, key, starts, mask, r, copy) for copy in (0, 1))
        alphas = path_alphas(self.points)
        errors = path_errors(a.state, b.state, mask, data, s, alphas)
        return {"procedure": "instability", "strategy": self.strategy, "domain": self.domain,
                **({} if self.source is None else {"source": self.source, "target": self.domain}),
                "seed": self.seed, "round": r, "sparsity": overall_sparsity(mask, reference),
                "alphas": alphas, "test_error": errors, "barrier": barrier(errors),
                "endpoint_acc": [a.test_acc, b.test_acc], "test_acc": (a.test_acc + b.test_acc) / 2,
                "endpoint_val_acc": [a.val_acc, b.val_acc], "epochs": [a.best_epoch, b.best_epoch],
                "seconds": round(time.perf_counter() - start, 3), "device_name": a.device_name}


def instability_jobs(settings: ExperimentSettings, domains: Sequence[str], seeds: Sequence[int],
                     strategies: Sequence[str], rounds: Sequence[int], points: int = 11,
                     source: str | None = None) -> list[InstabilityJob]:
    """One job per (domain, seed, strategy), all of them over the same ``rounds``; with
    ``source``, transfer strategies and ``domains`` the targets."""
    settings = experiment.ensure_resolved(settings)
    return [InstabilityJob(settings, d, seed, k, tuple(rounds), points, source)
            for d in domains for seed in seeds for k in strategies]


COLUMNS = ["procedure", "strategy", "source", "target", "domain", "seed", "round", "sparsity", "barrier",
           "endpoint_acc", "test_acc"]


def instability_frame(jobs: Sequence[InstabilityJob], store: RunStore | None = None, progress: bool = False,
                      workers: int | None = 1) -> pd.DataFrame:
    """One row per job and round (ticket and transfer jobs alike; a ticket row's source
    and target are its domain). Stored steps are loaded; the rest (and missing ticket
    runs) are trained (:func:`lottery.engine.runner.run_jobs`; ``workers=1``: in this process)."""
    rows = run_jobs(list(jobs), store, workers=workers, progress=progress, desc="instability") if jobs else []
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    for side in ("source", "target"):
        df[side] = df[side].fillna(df["domain"]) if side in df else df["domain"]
    return df.sort_values(["strategy", "source", "domain", "seed", "round"], ignore_index=True)


def run_instability(settings: ExperimentSettings, domains: Sequence[str], seeds: Sequence[int],
                    strategies: Sequence[str], rounds: Sequence[int], store: RunStore | None = None,
                    progress: bool = False, points: int = 11, workers: int | None = 1,
                    source: str | None = None) -> pd.DataFrame:
    """One row per (strategy, domain, seed, round): the path's errors and its barrier
    (:func:`instability_frame` of :func:`instability_jobs`)."""
    jobs = instability_jobs(settings, domains, seeds, strategies, rounds, points, source)
    return instability_frame(jobs, store, progress, workers)
