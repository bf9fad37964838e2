"""What a run costs before it runs: networks to train, and an estimate of the time.

The count is exact: it enumerates the chains the runner would run (the same
:func:`lottery.engine.runner.ticket_jobs` and :class:`~lottery.engine.jobs.TransferChain`) and
asks the run store which of their rounds exist. The time is an estimate: the mean
training time of networks already in the store (the ``seconds`` each stored round
recorded on the machine that trained it), scaled by the work per network relative to
them — training examples × epochs × review length × convolution size, the terms that
dominate a text CNN's training FLOPs. Early stopping and another machine make the real
time differ; the estimate says so.

The exercises of every chapter use :func:`glue_exercise_costs` to print what each costs.
Transfer work includes the source tickets and the targets' own TICKET-RESET runs
(TICKET-TARGET), as the transfer chapter trains them; federated and instability work
include the ticket runs they read. Counts are trainings: an instability step trains two
copies. Which work a chapter does is a column of :data:`lottery.book.chapters.CHAPTERS`.

A profile's whole book (``lottery plan PROFILE``): :func:`book_networks` lists, per chapter
that trains (tickets, transfer, ablation, federated), the trainings it adds to the ones
before it; :func:`profile_workload` adds their dense FLOPs (:mod:`lottery.engine.cost`:
a federated training counts its communication rounds × local epochs), and
:func:`cpu_projection` times them from the seconds the stored trainings of the same kind
recorded, falling back to a probe of this machine (a lower bound) where none is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from lottery.book import notebook, stability
from lottery.book.chapters import CHAPTER_WORK, EXECUTION_ORDER, SETTINGS_PARAMETERS
from lottery.config import ExperimentSettings, strategies as strat
from lottery.engine import cost as cost_model, jobs as procedures, runner
from lottery.engine.cost import work_per_network
from lottery.engine.store import RunStore, load_json
from lottery.experiment import selection, validate as experiment
from lottery.experiment.labels import duration
from lottery.federated import jobs as federated_jobs
from lottery.stats import ablation


@dataclass(frozen=True)
class Cost:
    """Trainings a run needs, how many the store lacks, and the estimated training time."""

    networks: int
    to_train: int
    seconds: float | None  # None: nothing in the store to measure a network by

    def text(self) -> str:
        if self.networks == 0:
            return "no network training (data and vocabulary only: seconds to a minute)"
        if self.to_train == 0:
            return f"all {self.networks:,} networks are in the run store: seconds to load"
        stored = self.networks - self.to_train
        what = (f"{self.to_train:,} networks to train"
                + (f" ({stored:,} more loaded from the run store)" if stored else ""))
        if self.seconds is None:
            return what + "; no stored network to estimate the time from"
        return f"{what}, about {duration(self.seconds, 90, 1)} of one CPU core"


def _ticket_chains(settings: ExperimentSettings, domains: Sequence[str], seeds: Sequence[int],
                   strategies: Sequence[str] | None = None) -> list[Any]:
    keys = strat.check(strategies or settings.strategies, "tickets")
    waves = runner.ticket_jobs(settings, list(domains), seeds, keys, workers=1)
    return [c for wave in waves for c in wave]


def chains(settings: ExperimentSettings, work: str, domains: Sequence[str], seeds: Sequence[int],
           pairs: Sequence[tuple[str, str]] = (), variants: Any = None,
           instability: Mapping[str, Any] | None = None) -> list[tuple[Any, ExperimentSettings]]:
    """The jobs (with their resolved settings) that ``work`` needs: ``tickets``,
    ``transfer`` (source tickets included), ``ablation``, ``federated`` (for ``pairs``
    of server and clients, the ticket runs they read included) or ``instability`` (the
    phase chapter's section with its ``instability`` parameters, the ticket runs it
    reads included: :func:`lottery.book.stability.workload`)."""
    settings = experiment.resolve(settings)
    if work == "tickets":
        return [(c, settings) for c in _ticket_chains(settings, domains, seeds)]
    if work == "transfer":
        sources = sorted({a for a, _ in pairs})
        targets = sorted({b for _, b in pairs})   # TICKET-TARGET: the targets' own tickets
        out = [(c, settings) for c in _ticket_chains(settings, sources, seeds, [strat.SOURCE_STRATEGY])]
        out += [(c, settings) for c in _ticket_chains(settings, targets, seeds, ["reset"])]
        return out + [(procedures.TransferChain(settings, a, b, s, k), settings)
                      for a, b in pairs for s in seeds for k in ("masks_reset", "masks_random")]
    if work == "ablation":
        domain = ablation.ablated_domain(domains, chosen_by_reader=False)
        out = []
        for d in (None, *ablation.select(variants)):
            s = experiment.resolve(ablation.variant_settings(settings, d))
            out += [(c, s) for c in _ticket_chains(s, [domain], seeds, ["reset", "random"])]
        return out
    if work == "federated":
        tasks = federated_jobs.tasks(settings, pairs, seeds)
        reads = {c: None for t in tasks for c in t.ticket_chains()}   # each ticket run once
        return [(c, settings) for c in reads] + [(t, settings) for t in tasks]
    if work == "instability":
        jobs = stability.workload(settings, domains, seeds, pairs, **dict(instability or {})).jobs(settings)
        reads = {j.ticket_chain(): None for j in jobs}
        return [(c, settings) for c in reads] + [(j, settings) for j in jobs]
    raise ValueError(f"unknown work {work!r}: tickets, transfer, ablation, federated or instability")


def run_path(chain: Any, store: Any) -> Any:
    """A job's run folder, without creating it: ``chain.path(store)``."""
    return chain.path(store)


def trainings(job: Any) -> int:
    """Trainings per step of ``job`` (an instability step trains two copies)."""
    return getattr(job, "trainings_per_step", 1)


def network_work(job: Any, s: ExperimentSettings) -> float:
    """Relative training work of one network of ``job`` (:func:`work_per_network`): a
    federated training sees the training reviews ``comm_rounds × local_epochs`` times
    instead of ``max_epochs``; an instability step trains two copies."""
    if isinstance(job, federated_jobs.FederatedTask):
        f = s.federated
        return work_per_network(s) * f.comm_rounds * f.local_epochs / s.train.max_epochs
    return trainings(job) * work_per_network(s)


def _unique_steps(chain_list: Sequence[tuple[Any, ExperimentSettings]], store: Any
                  ) -> dict[tuple[str, str], tuple[bool, float, int]]:
    """(run folder, step) → (stored?, work, trainings); a round 0 shared by chains counts once."""
    steps: dict[tuple[str, str], tuple[bool, float, int]] = {}
    for chain, s in chain_list:
        path = chain.path(store)
        for step in chain.steps:
            steps.setdefault((str(path), step), ((path / step / "metrics.json").exists(),
                                                 network_work(chain, s), trainings(chain)))
    return steps


def measured_seconds(chain_list: Sequence[tuple[Any, ExperimentSettings]], store: Any
                     ) -> tuple[float, float] | None:
    """Mean stored training seconds per network and mean work per network of those, or None."""
    seconds, work = [], []
    for chain, s in chain_list:
        path = chain.path(store)
        for step in chain.steps:
            if (path / step / "metrics.json").exists():
                seconds.append(float(load_json(path / step / "metrics.json").get("seconds", 0.0)))
                work.append(network_work(chain, s))
    if not seconds:
        return None
    return sum(seconds) / len(seconds), sum(work) / len(work)


def page_reference(run: Any, store: Any = None) -> tuple[float, float] | None:
    """(seconds, work) per network of ``run``'s ticket networks in the store: one
    reference for every page of a book, so that equal work gets an equal estimate."""
    return measured_seconds(chains(run.settings, "tickets", run.domains, run.ticket_seeds),
                            store or RunStore())


def _chapter_chains(profile: str, chapter: str, parameters: Mapping[str, Any] | None
                    ) -> list[tuple[Any, ExperimentSettings]]:
    """The jobs ``chapter`` runs with ``parameters`` (as ``-p`` would pass them)."""
    params = dict(parameters or {})
    variants = params.pop("variants", None)
    instability = {k: params.pop(k) for k in stability.PARAMETERS if k in params}
    new = selection.chapter_settings(profile, **params)
    needed = []
    for w in CHAPTER_WORK[chapter]:
        pairs = new.pairs   # the federated chapter's default pairs are the settings' own
        if w == "federated" and params.get("pairs") is None:
            pairs = federated_jobs.pairs_of(new.settings)
        seeds = new.ticket_seeds if w in ("tickets", "instability") else new.seeds
        needed += chains(new.settings, w, new.domains, seeds, pairs, variants, instability)
    return needed


def chapter_trainings(profile: str, chapter: str, parameters: Mapping[str, Any] | None = None,
                      store: Any = None) -> dict[Path, int]:
    """The ``metrics.json`` of every step that executing ``chapter`` with ``parameters``
    needs, stored or not, each once (a round 0 shared by strategies counts once), with
    the trainings it stands for (two for an instability step): what
    :class:`lottery.book.progress.ChapterProgress` counts while the chapter runs.
    Parameters that are not settings (``package_source``, ``dask``, ``rewind_sweep``) are
    ignored; the phase chapter's optional rewind sweep is not counted."""
    store = store or RunStore()
    params = {k: v for k, v in (parameters or {}).items()
              if k in SETTINGS_PARAMETERS or k == "variants" or k in stability.PARAMETERS}
    steps = _unique_steps(_chapter_chains(profile, chapter, params), store)
    return {Path(path) / step / "metrics.json": n for (path, step), (_, _, n) in steps.items()}


def chapter_networks(profile: str, chapter: str, parameters: Mapping[str, Any] | None = None,
                     store: Any = None) -> list[Path]:
    return list(chapter_trainings(profile, chapter, parameters, store))   # their paths


def cost(run: Any, chapter: str, parameters: Mapping[str, Any] | None = None,
         reference: tuple[float, float] | None = None, store: Any = None) -> Cost:
    """What executing ``chapter`` with ``parameters`` (as ``-p`` would pass them) on
    ``run``'s profile costs. ``reference`` = (seconds, work) per network measured in the
    store; by default measured on ``run``'s ticket networks (:func:`page_reference`)."""
    store = store or RunStore()
    steps = _unique_steps(_chapter_chains(run.profile, chapter, parameters), store)
    missing = [(w, n) for done, w, n in steps.values() if not done]
    if reference is None and CHAPTER_WORK[chapter]:
        reference = page_reference(run, store)
    seconds = None
    if reference is not None and reference[1] > 0:
        seconds = sum(w for w, _ in missing) * reference[0] / reference[1]
    return Cost(sum(n for _, _, n in steps.values()), sum(n for _, n in missing), seconds)


def glue_exercise_costs(run: Any, chapter: str, exercises: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Glue one cost sentence per exercise (``{glue:text}`LABEL```) and return the table.

    The time is measured on the networks behind this page, on the machine that built it.
    """

    reference = page_reference(run) if CHAPTER_WORK[chapter] else None
    rows = {}
    for label, params in exercises.items():
        try:
            c = cost(run, chapter, params, reference)
        except ValueError as exc:   # e.g. a domain the page's profile does not have
            rows[label] = {"networks": None, "to train": None,
                           "estimate": f"not available with the {run.profile} profile ({exc})"}
            continue
        rows[label] = {"networks": c.networks, "to train": c.to_train,
                       "estimate": c.text()}
    notebook.glue_values({k: v["estimate"] for k, v in rows.items()})
    return pd.DataFrame.from_dict(rows, orient="index")


# ------------------------------------------------------------------ a profile's whole book

@dataclass(frozen=True)
class Network:
    """One training of a book: its job (a chain or a federated task), the job's
    resolved settings and the step (one network, or one federated training)."""
    job: Any
    settings: ExperimentSettings
    step: str

    @property
    def federated(self) -> bool:
        return isinstance(self.job, federated_jobs.FederatedTask)

    @property
    def trainings(self) -> int:
        return trainings(self.job)


@dataclass(frozen=True)
class ChapterLoad:
    """The trainings a chapter adds to a profile's book (those no chapter before it, in
    execution order, trained: it loads the others from the run store) and their FLOPs."""
    chapter: str
    networks: tuple[Network, ...]
    flops: float

    @property
    def count(self) -> int:
        """Trainings (an instability step is two)."""
        return sum(n.trainings for n in self.networks)


def _chapter_jobs(s: ExperimentSettings, chapter: str) -> list[tuple[Any, ExperimentSettings]]:
    """The jobs ``chapter`` runs with its default parameters (the profile's domains,
    seeds and pairs; the ablation's course set of variants; the phase chapter's
    instability section's defaults), as the book executes it."""
    out = []
    for work in CHAPTER_WORK[chapter]:
        pairs = federated_jobs.pairs_of(s) if work == "federated" else s.transfer_pairs
        seeds = experiment.ticket_seeds(s) if work in ("tickets", "instability") else s.seeds
        out += chains(s, work, s.data.domains, seeds, pairs)
    return out


def book_networks(settings: ExperimentSettings) -> dict[str, tuple[Network, ...]]:
    """Every chapter that trains (:data:`~lottery.book.chapters.CHAPTER_WORK`), in
    execution order, with the trainings it adds: a round 0 shared by strategies, or a
    ticket run that the transfer, ablation and federated chapters read, counts once, in
    the chapter that trains it first. Chapters that only read (phase, verdict, intro)
    add none."""
    s = experiment.resolve(settings)
    nowhere = RunStore("/nonexistent/lottery-plan")   # only folder names are computed
    seen: set[tuple[str, str]] = set()
    out = {}
    for chapter in EXECUTION_ORDER:
        if not CHAPTER_WORK[chapter]:
            continue
        new = []
        for job, js in _chapter_jobs(s, chapter):
            for step in job.steps:
                key = (job.path(nowhere).name, step)
                if key not in seen:
                    seen.add(key)
                    new.append(Network(job, js, step))
        out[chapter] = tuple(new)
    return out


def network_flops(n: Network, tokens: float) -> float:
    """Dense training FLOPs of one training (:mod:`lottery.engine.cost`)."""
    return (cost_model.federated_flops(n.settings, tokens) if n.federated
            else n.trainings * cost_model.flops_per_network(n.settings, tokens))


def review_lengths(tokens: Callable[[ExperimentSettings], float] = cost_model.tokens_per_review
                   ) -> Callable[[ExperimentSettings], float]:
    """``tokens`` (mean review length in subword pieces,
    :func:`lottery.engine.cost.tokens_per_review`) asked once per data and vocabulary
    setting: an ablation variant may change the review length, most jobs share it."""
    lengths: dict[Any, float] = {}

    def length(s: ExperimentSettings) -> float:
        key = (s.data, s.vocab)
        if key not in lengths:
            lengths[key] = tokens(s)
        return lengths[key]

    return length


def profile_workload(settings: ExperimentSettings, tokens: Callable[[ExperimentSettings], float]
                     ) -> list[ChapterLoad]:
    """:func:`book_networks` with their FLOPs (``tokens``: see :func:`review_lengths`)."""
    return [ChapterLoad(c, nets, sum(network_flops(n, tokens(n.settings)) for n in nets))
            for c, nets in book_networks(settings).items()]


def profile_networks(settings: ExperimentSettings) -> dict[str, int]:
    """Trainings of a profile's book per chapter that adds any (:func:`book_networks`):
    ticket finding, the transfer tasks, the ablation's variants and the federated tasks
    (the source, target, server and base ticket runs they read are counted where they
    are first trained). A federated training is ``comm_rounds × local_epochs`` epochs of
    federated averaging, not ``max_epochs`` (see :func:`network_work`)."""
    return {c: sum(n.trainings for n in nets) for c, nets in book_networks(settings).items() if nets}


def measured_rate(networks: Sequence[Network], store: Any, tokens: Callable[[ExperimentSettings], float]
                  ) -> tuple[float, int] | None:
    """Seconds per FLOP of the stored ones among ``networks`` (their recorded training
    ``seconds`` summed, over their FLOPs summed), and how many there were; None if none."""
    seconds, flops, n = 0.0, 0.0, 0
    for net in networks:
        metrics = net.job.path(store) / net.step / "metrics.json"
        if metrics.exists():
            seconds += float(load_json(metrics).get("seconds", 0.0))
            flops += network_flops(net, tokens(net.settings))
            n += net.trainings
    return (seconds / flops, n) if n and flops > 0 and seconds > 0 else None


@dataclass(frozen=True)
class CpuProjection:
    """Projected wall seconds per chapter on this machine, from an empty run store."""
    seconds: dict[str, float]
    calibrated: int   # trainings timed from stored trainings of their kind
    samples: int      # the stored trainings those times come from
    probed: int       # trainings timed by the probe instead (a lower bound)


def _kind(n: Network) -> tuple[bool, int]:
    return n.federated, n.settings.train.threads


def cpu_projection(loads: Sequence[ChapterLoad], store: Any, tokens: Callable[[ExperimentSettings], float],
                   probe_rate: float, cores: int) -> CpuProjection:
    """Each training's FLOPs × the seconds per FLOP that the stored trainings of its kind
    recorded (:func:`measured_rate`; kinds: federated or not, and ``train.threads``).
    Networks run ``cores // threads`` at a time, and so do federated tasks on the inline
    backend (one per worker process); on the Flower backend a task's recorded seconds are
    its wall time (its clients spread over the cores) and tasks run one after another.
    A kind with nothing stored falls back to the probe's single-thread FLOP/s
    (``probe_rate``) on every core: a lower bound."""
    groups: dict[tuple[bool, int], list[Network]] = {}
    for load in loads:
        for n in load.networks:
            groups.setdefault(_kind(n), []).append(n)
    rates = {k: measured_rate(v, store, tokens) for k, v in groups.items()}
    seconds, calibrated, probed = {}, 0, 0
    for load in loads:
        total = 0.0
        for n in load.networks:
            rate, flops = rates[_kind(n)], network_flops(n, tokens(n.settings))
            if rate is None:
                total, probed = total + flops / (probe_rate * cores), probed + n.trainings
                continue
            flower = n.federated and n.settings.federated.backend != "inline"   # one simulation at a time
            at_once = 1 if flower else max(1, cores // n.settings.train.threads)
            total, calibrated = total + flops * rate[0] / at_once, calibrated + n.trainings
        seconds[load.chapter] = total
    return CpuProjection(seconds, calibrated, sum(r[1] for r in rates.values() if r), probed)
