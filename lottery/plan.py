"""What a run costs before it runs: networks to train, and an estimate of the time.

The count is exact: it enumerates the chains the runner would run (the same
:func:`lottery.runner.ticket_jobs` and :class:`~lottery.procedures.TransferChain`) and
asks the run store which of their rounds exist. The time is an estimate: the mean
training time of networks already in the store (the ``seconds`` each stored round
recorded on the machine that trained it), scaled by the work per network relative to
them — training examples × epochs × review length × convolution size, the terms that
dominate a text CNN's training FLOPs. Early stopping and another machine make the real
time differ; the estimate says so.

The exercises of every chapter use :func:`glue_exercise_costs` to print what each costs.
Transfer work includes the source tickets and the targets' own TICKET-RESET runs
(TICKET-TARGET), as :func:`lottery.runner.run_transfer` and the transfer chapter train them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

from lottery import experiment
from lottery.config import ExperimentSettings

#: Which procedures each chapter trains (the others only read the data and vocabulary).
CHAPTER_WORK: dict[str, tuple[str, ...]] = {
    "intro": ("tickets", "transfer"), "data": (), "divergence": (),
    "tickets": ("tickets",), "transfer": ("transfer",), "phase": ("tickets", "transfer"),
    "verdict": ("tickets", "transfer"), "ablation": ("ablation",),
}


@dataclass(frozen=True)
class Cost:
    """Networks a run needs, how many the store lacks, and the estimated training time."""

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
        return f"{what}, about {_duration(self.seconds)} of one CPU core"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def work_per_network(s: ExperimentSettings) -> float:
    """Relative training work of one network (examples × epochs × length × conv size)."""
    conv = s.model.embed_dim * s.model.channels * sum(s.model.kernel_heights)
    return float(s.data.n_train * s.train.max_epochs * s.vocab.max_len * conv)


def _ticket_chains(settings: ExperimentSettings, domains: Sequence[str], seeds: Sequence[int],
                   strategies: Sequence[str] | None = None) -> list[Any]:
    from lottery import runner, strategies as strat  # the engine (torch)

    keys = strat.check(strategies or settings.strategies, "tickets")
    waves = runner.ticket_jobs(settings, list(domains), seeds, keys, workers=1)
    return [c for wave in waves for c in wave]


def chains(settings: ExperimentSettings, work: str, domains: Sequence[str], seeds: Sequence[int],
           pairs: Sequence[tuple[str, str]] = (), variants: Any = None) -> list[tuple[Any, ExperimentSettings]]:
    """The chains (with their resolved settings) that ``work`` needs: ``tickets``,
    ``transfer`` (source tickets included) or ``ablation``."""
    from lottery import ablation, procedures, strategies as strat

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
    raise ValueError(f"unknown work {work!r}: tickets, transfer or ablation")


def run_path(chain: Any, store: Any) -> Any:
    """A chain's run folder, without creating it (a plan must not touch the store)."""
    from lottery import procedures

    if isinstance(chain, procedures.TransferChain):
        return store.path("transfer", procedures.transfer_key(
            chain.settings, chain.source, chain.target, chain.seed, chain.strategy))
    return store.path("tickets", procedures.ticket_key(chain.settings, chain.domain, chain.seed))


def _unique_steps(chain_list: Sequence[tuple[Any, ExperimentSettings]], store: Any
                  ) -> dict[tuple[str, str], tuple[bool, ExperimentSettings]]:
    """(run folder, step) → (stored?, settings); a round 0 shared by chains counts once."""
    steps: dict[tuple[str, str], tuple[bool, ExperimentSettings]] = {}
    for chain, s in chain_list:
        path = run_path(chain, store)
        for step in chain.steps:
            steps.setdefault((str(path), step), ((path / step / "metrics.json").exists(), s))
    return steps


def measured_seconds(chain_list: Sequence[tuple[Any, ExperimentSettings]], store: Any
                     ) -> tuple[float, float] | None:
    """Mean stored training seconds per network and mean work per network of those, or None."""
    from lottery.store import load_json

    seconds, work = [], []
    for chain, s in chain_list:
        path = run_path(chain, store)
        for step in chain.steps:
            if (path / step / "metrics.json").exists():
                seconds.append(float(load_json(path / step / "metrics.json").get("seconds", 0.0)))
                work.append(work_per_network(s))
    if not seconds:
        return None
    return sum(seconds) / len(seconds), sum(work) / len(work)


def page_reference(run: Any, store: Any = None) -> tuple[float, float] | None:
    """(seconds, work) per network of ``run``'s ticket networks in the store: one
    reference for every page of a book, so that equal work gets an equal estimate."""
    from lottery.store import RunStore

    return measured_seconds(chains(run.settings, "tickets", run.domains, run.seeds),
                            store or RunStore())


def cost(run: Any, chapter: str, parameters: Mapping[str, Any] | None = None,
         reference: tuple[float, float] | None = None, store: Any = None) -> Cost:
    """What executing ``chapter`` with ``parameters`` (as ``-p`` would pass them) on
    ``run``'s profile costs. ``reference`` = (seconds, work) per network measured in the
    store; by default measured on ``run``'s ticket networks (:func:`page_reference`)."""
    from lottery import chapters
    from lottery.store import RunStore

    store = store or RunStore()
    params = dict(parameters or {})
    variants = params.pop("variants", None)
    new = chapters.chapter_settings(run.profile, **params)
    work = CHAPTER_WORK[chapter]
    needed = []
    for w in work:
        needed += chains(new.settings, w, new.domains, new.seeds, new.pairs, variants)
    steps = _unique_steps(needed, store)
    missing = [s for done, s in steps.values() if not done]
    if reference is None and work:
        reference = page_reference(run, store)
    seconds = None
    if reference is not None and reference[1] > 0:
        per_work = reference[0] / reference[1]
        seconds = sum(work_per_network(s) for s in missing) * per_work
    return Cost(len(steps), len(missing), seconds)


def glue_exercise_costs(run: Any, chapter: str, exercises: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Glue one cost sentence per exercise (``{glue:text}`LABEL```) and return the table.

    The time is measured on the networks behind this page, on the machine that built it.
    """
    from lottery import report

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
    report.glue_values({k: v["estimate"] for k, v in rows.items()})
    return pd.DataFrame.from_dict(rows, orient="index")


# ---------------------------------------------------------------------------- a whole profile
#: Subword pieces per whitespace word, measured on the course profile's 6,000 training
#: reviews with its 8K vocabulary (175.7 pieces vs 149.2 words per review).
PIECES_PER_WORD = 1.18

#: Dense peak FLOP/s of named GPUs (NVIDIA data sheets; SXM parts, no sparsity) and the
#: share of it this small text CNN is assumed to reach. The share is an assumption
#: until ``benchmarks/gpu_check.sh`` measures it on the card.
GPU_PEAK = {"H100": {"fp32": 67e12, "tf32": 495e12, "bf16": 989e12},
            "H200": {"fp32": 67e12, "tf32": 495e12, "bf16": 989e12},
            "A100": {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12}}
GPU_EFFICIENCY = 0.10


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for speed figures that name the machine."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tokens_per_review(settings: ExperimentSettings) -> float:
    """Mean training-review length in subword pieces, clipped at ``max_len``: measured
    in words on the profile's reviews (or, when the dataset cannot supply the profile's
    split sizes, on the course profile's reviews of the same domains) × PIECES_PER_WORD."""
    import warnings

    import numpy as np

    from lottery import config, data

    warnings.filterwarnings("ignore", category=data.DataWarning)   # reported by the chapters
    for source in (settings.data, config.get_profile("course").data):
        try:
            words = np.concatenate([
                [len(t.split()) for t in data.load_splits(source, d).train["text"]]
                for d in settings.data.domains if d in source.domains or source is settings.data])
        except Exception:   # not enough reviews for these split sizes, or another dataset
            continue
        if len(words):
            return float(np.minimum(words * PIECES_PER_WORD, settings.vocab.max_len).mean())
    return float(settings.vocab.max_len)


def forward_flops(m: Any, tokens: float) -> float:
    """Dense forward FLOPs of the text CNN (model settings ``m``) on one review of
    ``tokens`` pieces: the convolutions (2 per multiply-add) and the MLP; a training
    step costs about 3 × this (forward + backward)."""
    conv = 2 * m.embed_dim * m.channels * sum(m.kernel_heights) * tokens
    return conv + 2 * (len(m.kernel_heights) * m.channels * m.hidden + m.hidden * m.n_classes)


def flops_per_network(s: ExperimentSettings, tokens: float) -> float:
    """Training FLOPs of one network (dense: the engine multiplies by masks, it does not
    skip pruned weights): ``max_epochs`` epochs of forward + backward (≈ 3 × forward) on
    the training reviews, a validation pass per epoch and one test pass."""
    forward = forward_flops(s.model, tokens)
    d = s.data
    return s.train.max_epochs * (3 * d.n_train + d.n_val) * forward + d.n_test * forward


def profile_networks(settings: ExperimentSettings) -> dict[str, int]:
    """Trainings of a profile's book grid: ticket finding, then the transfer tasks (the
    transfer chapter's source and target tickets are among the ticket trainings)."""
    from lottery.store import RunStore

    s = experiment.resolve(settings)
    nowhere = RunStore("/nonexistent/lottery-plan")   # only folder names are computed
    seen: set[tuple[str, str]] = set()
    out = {}
    for work, pairs in (("tickets", ()), ("transfer", s.transfer_pairs)):
        before = len(seen)
        for chain, _ in chains(s, work, s.data.domains, s.seeds, pairs):
            seen |= {(run_path(chain, nowhere).name, step) for step in chain.steps}
        out[work] = len(seen) - before
    return out


def probe_flops_per_second(s: ExperimentSettings, tokens: float, seconds: float = 2.0) -> float:
    """Training FLOP/s of one single-threaded worker on this machine, measured on the
    profile's model (random token ids, the real training step) for ``seconds`` after a
    two-step warm-up."""
    import time

    import torch

    from lottery import masks, model, train

    length = max(8, int(round(tokens)))
    with train.intra_op_threads(1):
        net = model.init_model(s.vocab.vocab_size, s.model, seed=0)
        opt = train.make_optimizer(net, s.train)
        fm = train.float_masks(net, [masks.full_mask(net)])
        gen = torch.Generator().manual_seed(0)
        x = torch.randint(1, s.vocab.vocab_size, (s.train.batch_size, length), generator=gen)
        y = torch.randint(0, s.model.n_classes, (s.train.batch_size,), generator=gen)
        net.train()
        for _ in range(2):   # warm-up
            train.masked_step(net, opt, fm, x, y)
        start, batches = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            train.masked_step(net, opt, fm, x, y)
            batches += 1
        per_batch_s = (time.perf_counter() - start) / batches
    return 3 * forward_flops(s.model, length) * s.train.batch_size / per_batch_s
