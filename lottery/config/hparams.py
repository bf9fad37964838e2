"""Settings as small frozen dataclasses, and the one syntax for overriding them.

Every experiment in the book is a function of these settings. They are hashed to name
run directories (see :mod:`lottery.engine.store`), so two rules keep old results findable:
a setting is never renamed, and a new setting gets a *neutral default* (one that
reproduces the old behaviour); fields equal to their neutral default are left out of
the hash.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

# The paper's five Amazon categories and their FDU-MTL names (the default dataset).
PAPER_DOMAINS: dict[str, str] = {
    "Books": "books",
    "Electronics": "electronics",
    "Movies": "dvd",
    "CDs": "music",
    "Home": "kitchen_housewares",
}
DEFAULT_DOMAINS: tuple[str, ...] = tuple(PAPER_DOMAINS.values())

#: TICKET-REWIND's default k (iterations of round 0); see PruneSettings.rewind_iterations.
REWIND_DEFAULT = 5

#: Field metadata for settings that cannot change any result (how far a run goes, how
#: big evaluation batches are): left out of run-directory hashes.
NOT_HASHED = {"hashed": False}


def neutral(value: Any) -> dict[str, Any]:
    """Field metadata for a setting added later: runs whose value equals ``value`` (the
    behaviour before the setting existed) keep their old hash."""
    return {"neutral": value}


@dataclass(frozen=True)
class DataSettings:
    """Which reviews, and how many per split and domain (paper §3: 20K/10K/10K)."""

    dataset: str = "fdu-mtl"
    domains: tuple[str, ...] = DEFAULT_DOMAINS
    n_train: int = 20_000
    n_val: int = 10_000
    n_test: int = 10_000
    split_seed: int = 0


@dataclass(frozen=True)
class VocabSettings:
    """Shared SentencePiece BPE vocabulary (paper §4.1)."""

    vocab_size: int = 8000
    character_coverage: float = 0.9995
    model_type: str = "bpe"
    max_len: int = 500


@dataclass(frozen=True)
class ModelSettings:
    """Kim-style text CNN (paper §4.2, §5.1). ``he_a`` is the ``a`` of Eq. 4 (0 = ReLU)."""

    embed_dim: int = 417
    embed_dropout: float = 0.285
    kernel_heights: tuple[int, ...] = (3, 4, 5)
    channels: int = 127
    hidden: int = 117
    n_classes: int = 2
    he_a: float = 0.0


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation (paper §5.1). ``patience=None`` trains all epochs and keeps the best."""

    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 32
    max_epochs: int = 15
    patience: int | None = None
    #: Length-sorted evaluation batches. On this 2-core CPU 32 is fastest (paper width:
    #: 217 ex/s vs 127 at 256; course width 6,616 vs 5,318); raise it on a GPU.
    eval_batch_size: int = field(default=32, metadata=NOT_HASHED)
    device: str = "cpu"
    #: Mixed precision: None (float32 everywhere) or "bfloat16" autocast for the
    #: forward pass (mainly for ``device="cuda"``). None keeps old run hashes.
    autocast_dtype: str | None = field(default=None, metadata=neutral(None))
    #: Train the strategies of one (domain, seed) round as one stacked model
    #: (:mod:`lottery.engine.stacked`): same maths, float-tolerance (not bitwise) equal to
    #: separate training, so stacked runs get their own hashes. False keeps old hashes.
    stack_strategies: bool = field(default=False, metadata=neutral(False))
    #: Intra-op threads the training itself uses. The thread count changes float
    #: summation order, so it is part of the run key (1, the neutral value, is what
    #: every stored run used: one single-threaded worker per core).
    threads: int = field(default=1, metadata=neutral(1))


@dataclass(frozen=True)
class PruneSettings:
    """Iterative magnitude pruning (paper §4.3.2).

    ``prune_fraction_per_round`` (the paper's p) is the share of each layer's
    *surviving* weights removed per round; the sparsity after r rounds is 1-(1-p)^r.
    """

    prune_fraction_per_round: float = 0.35
    rounds: int = field(default=20, metadata=NOT_HASHED)
    prune_biases: bool = False
    #: TICKET-REWIND / MASKS-REWIND: survivors go back to their values after this many
    #: training iterations (optimizer steps) of round 0, θ_k (Frankle et al. 2019,
    #: "Stabilizing the lottery ticket hypothesis"). Chosen by the sweep in the phase
    #: chapter; runs with the default keep the hash they had before the setting existed.
    rewind_iterations: int = field(default=REWIND_DEFAULT, metadata=neutral(REWIND_DEFAULT))


@dataclass(frozen=True)
class FederatedSettings:
    """§7's sparsify-and-transfer, simulated (:mod:`lottery.federated.protocol`): a server domain's
    ticket trained by federated averaging on clients that hold shards of another domain.

    ``rounds`` are the pruning rounds whose server masks are sent (sparsity 1-(1-p)^r);
    a *communication round* is one download, ``local_epochs`` of training on every
    client, one upload and one average. ``strategies`` are rows of the strategy table.
    """

    #: (server, clients) domain pairs; None: the first transfer pair, else the first two
    #: domains (:func:`lottery.federated.jobs.pairs_of`), so any domain list works
    pairs: tuple[tuple[str, str], ...] | None = None
    clients: int = 4
    comm_rounds: int = 10
    local_epochs: int = 1
    rounds: tuple[int, ...] = (3, 5, 7)
    strategies: tuple[str, ...] = ("full", "masks_reset", "masks_random", "target")
    #: "flower" (Flower's simulation engine on Ray) or "inline" (the same client and
    #: server functions called in this process); identical numbers, so not hashed.
    backend: str = field(default="flower", metadata=NOT_HASHED)


@dataclass(frozen=True)
class ExperimentSettings:
    """Everything one run of the book depends on."""

    data: DataSettings = field(default_factory=DataSettings)
    vocab: VocabSettings = field(default_factory=VocabSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    prune: PruneSettings = field(default_factory=PruneSettings)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    strategies: tuple[str, ...] = ("reset", "random", "random_pruning")
    #: domains that also run the random-pruning control (None: every domain)
    control_domains: tuple[str, ...] | None = None
    transfer_pairs: tuple[tuple[str, str], ...] = ()
    #: the source rounds whose masks are transferred (None: every round). Each transfer
    #: round is an independent training, so a subset saves time without changing the
    #: numbers of the rounds that run (not part of the run key).
    transfer_rounds: tuple[int, ...] | None = None
    #: the federated simulation (beyond the paper, §7); not part of any ticket run's key
    federated: FederatedSettings = field(default_factory=FederatedSettings)


def override(settings: Any, **changes: Any) -> Any:
    """Return ``settings`` with dotted overrides, e.g. ``override(s, **{"train.max_epochs": 3})``.

    Unknown names raise a ``ValueError`` that lists the valid ones.
    """
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    valid = {f.name for f in fields(settings)}
    for key in list(flat) + list(nested):
        if key not in valid:
            raise ValueError(
                f"unknown setting {key!r} for {type(settings).__name__}; valid: {sorted(valid)}"
            )
    for head, sub in nested.items():
        flat[head] = override(getattr(settings, head), **sub)
    for key, value in list(flat.items()):
        current = getattr(settings, key)
        if isinstance(current, tuple) and isinstance(value, list):
            flat[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return replace(settings, **flat)


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``["train.lr=1e-3", "seeds=[0,1]"]`` -> ``{"train.lr": 0.001, "seeds": [0, 1]}``.

    The one syntax for overrides everywhere (``--set`` of every command, the chapters'
    ``overrides`` parameter): values are JSON, and a value that is not JSON is a string.
    """
    changes: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            changes[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            changes[key.strip()] = raw
    return changes


def to_dict(settings: Any) -> dict[str, Any]:
    """Plain JSON-able dict of a settings dataclass (tuples become lists)."""
    return dataclasses.asdict(settings)
