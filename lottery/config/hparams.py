"""Settings as small frozen dataclasses, and the one syntax for overriding them.

Every experiment in the book is a function of these settings. They are hashed to name
run directories (see :mod:`lottery.engine.store`), so two rules keep old results findable:
a setting is never renamed, and a new setting gets a *neutral default* (one that
reproduces the old behaviour); fields equal to their neutral default are left out of
the hash.

Every field carries a one-line help in its metadata (``metadata={"help": ...}``, as
OpenLTH's hparams do): ``lottery profile --help-settings`` lists them, and the
validator (:mod:`lottery.experiment.validate`) ends its error messages with them.
Metadata never changes a hash.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterator, NamedTuple

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

    dataset: str = field(default="fdu-mtl", metadata={
        "help": "dataset name (see `lottery datasets`) or the path of a JSON dataset spec"})
    domains: tuple[str, ...] = field(default=DEFAULT_DOMAINS, metadata={
        "help": "domains the shared vocabulary is trained on and runs may use"})
    n_train: int = field(default=20_000, metadata={
        "help": "training reviews per domain, half of each class (even)"})
    n_val: int = field(default=10_000, metadata={
        "help": "validation reviews per domain, half of each class (even)"})
    n_test: int = field(default=10_000, metadata={
        "help": "test reviews per domain, half of each class (even)"})
    split_seed: int = field(default=0, metadata={
        "help": "seed of the hash that samples and splits the reviews"})


@dataclass(frozen=True)
class VocabSettings:
    """Shared SentencePiece BPE vocabulary (paper §4.1)."""

    vocab_size: int = field(default=8000, metadata={
        "help": "SentencePiece vocabulary size (an upper bound on small data)"})
    character_coverage: float = field(default=0.9995, metadata={
        "help": "share of characters SentencePiece covers; the rest map to unknown"})
    model_type: str = field(default="bpe", metadata={
        "help": "SentencePiece model type (bpe, as the paper)"})
    max_len: int = field(default=500, metadata={
        "help": "reviews are cut to this many subword pieces"})


@dataclass(frozen=True)
class ModelSettings:
    """Kim-style text CNN (paper §4.2, §5.1). ``he_a`` is the ``a`` of Eq. 4 (0 = ReLU)."""

    embed_dim: int = field(default=417, metadata={"help": "embedding width"})
    embed_dropout: float = field(default=0.285, metadata={
        "help": "dropout rate on the embeddings, in [0, 1)"})
    kernel_heights: tuple[int, ...] = field(default=(3, 4, 5), metadata={
        "help": "convolution filter heights in subword pieces, one conv layer each"})
    channels: int = field(default=127, metadata={"help": "output channels of each conv layer"})
    hidden: int = field(default=117, metadata={"help": "width of the hidden linear layer"})
    n_classes: int = field(default=2, metadata={"help": "output classes (sentiment: 2)"})
    he_a: float = field(default=0.0, metadata={
        "help": "the a of He initialisation (Eq. 4; 0 = ReLU)"})


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation (paper §5.1). ``patience=None`` trains all epochs and keeps the best."""

    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    weight_decay: float = field(default=1e-5, metadata={"help": "Adam weight decay (L2)"})
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    max_epochs: int = field(default=15, metadata={"help": "training epochs per network"})
    patience: int | None = field(default=None, metadata={
        "help": "stop after this many epochs without a better validation accuracy "
                "(null: train every epoch, keep the best)"})
    #: Length-sorted evaluation batches. On this 2-core CPU 32 is fastest (paper width:
    #: 217 ex/s vs 127 at 256; course width 6,616 vs 5,318); raise it on a GPU.
    eval_batch_size: int = field(default=32, metadata={
        **NOT_HASHED, "help": "evaluation batch size (speed only; raise it on a GPU)"})
    device: str = field(default="cpu", metadata={"help": "torch device: cpu, cuda, cuda:1, ..."})
    #: Mixed precision: None (float32 everywhere) or "bfloat16" autocast for the
    #: forward pass (mainly for ``device="cuda"``). None keeps old run hashes.
    autocast_dtype: str | None = field(default=None, metadata={
        **neutral(None), "choices": (None, "bfloat16"),
        "help": "mixed precision: null (float32) or \"bfloat16\" autocast of the forward pass"})
    #: Train the strategies of one (domain, seed) round as one stacked model
    #: (:mod:`lottery.engine.stacked`): same maths, float-tolerance (not bitwise) equal to
    #: separate training, so stacked runs get their own hashes. False keeps old hashes.
    stack_strategies: bool = field(default=False, metadata={
        **neutral(False), "help": "train a round's strategies as one stacked model "
                                  "(float-tolerance equal, own run hashes)"})
    #: Intra-op threads the training itself uses. The thread count changes float
    #: summation order, so it is part of the run key (1, the neutral value, is what
    #: every stored run used: one single-threaded worker per core).
    threads: int = field(default=1, metadata={
        **neutral(1), "help": "intra-op threads per training (part of the run key)"})


@dataclass(frozen=True)
class PruneSettings:
    """Iterative magnitude pruning (paper §4.3.2).

    ``prune_fraction_per_round`` (the paper's p) is the share of each layer's
    *surviving* weights removed per round; the sparsity after r rounds is 1-(1-p)^r.
    """

    prune_fraction_per_round: float = field(default=0.35, metadata={
        "help": "the paper's p: share of each layer's surviving weights pruned per round"})
    rounds: int = field(default=20, metadata={
        **NOT_HASHED, "help": "pruning rounds after the full model (sparsity 1-(1-p)^rounds)"})
    prune_biases: bool = field(default=False, metadata={"help": "prune biases as well as weights"})
    #: TICKET-REWIND / MASKS-REWIND: survivors go back to their values after this many
    #: training iterations (optimizer steps) of round 0, θ_k (Frankle et al. 2019,
    #: "Stabilizing the lottery ticket hypothesis"). Chosen by the sweep in the phase
    #: chapter; runs with the default keep the hash they had before the setting existed.
    rewind_iterations: int = field(default=REWIND_DEFAULT, metadata={
        **neutral(REWIND_DEFAULT),
        "help": "k of the rewinding strategies: survivors restart at round 0's weights "
                "after k optimizer steps"})


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
    pairs: tuple[tuple[str, str], ...] | None = field(default=None, metadata={
        "help": "[server, clients] domain pairs (null: the first transfer pair, else the "
                "first two domains)"})
    clients: int = field(default=4, metadata={"help": "clients sharing the clients' domain"})
    comm_rounds: int = field(default=10, metadata={
        "help": "communication rounds (download, local training, upload, average)"})
    local_epochs: int = field(default=1, metadata={
        "help": "epochs each client trains per communication round"})
    rounds: tuple[int, ...] = field(default=(3, 5, 7), metadata={
        "help": "pruning rounds whose server masks are sent"})
    strategies: tuple[str, ...] = field(
        default=("full", "masks_reset", "masks_random", "target"),
        metadata={"help": "strategies trained by federated averaging (reference and transfer rows)"})
    #: "inline" (the client and server functions called in this process; the default,
    #: no extra needed) or "flower" (the same functions in Flower's simulation engine on
    #: Ray: the optional ``federated`` extra); identical numbers, so not hashed.
    backend: str = field(default="inline", metadata={
        **NOT_HASHED, "choices": ("flower", "inline"),
        "help": "\"flower\" (Flower's simulation on Ray) or \"inline\" (same numbers, in process)"})


@dataclass(frozen=True)
class ExperimentSettings:
    """Everything one run of the book depends on."""

    data: DataSettings = field(default_factory=DataSettings, metadata={
        "help": "which reviews, and how many per split and domain"})
    vocab: VocabSettings = field(default_factory=VocabSettings, metadata={
        "help": "the shared SentencePiece vocabulary"})
    model: ModelSettings = field(default_factory=ModelSettings, metadata={
        "help": "the text CNN"})
    train: TrainSettings = field(default_factory=TrainSettings, metadata={
        "help": "optimisation of every network"})
    prune: PruneSettings = field(default_factory=PruneSettings, metadata={
        "help": "iterative magnitude pruning"})
    seeds: tuple[int, ...] = field(default=(0, 1, 2, 3, 4), metadata={
        "help": "one run per seed and curve (the seed draws initialisation, data order, dropout)"})
    #: More seeds where the claims need them: the ticket grid (FULL-MODEL and the ticket
    #: strategies in every domain, claims 2-5) can run more seeds than the transfer,
    #: federated, rewinding and ablation grids. A selection, not part of any run key.
    ticket_seeds: tuple[int, ...] | None = field(default=None, metadata={
        "help": "seeds of the ticket grid (claims 2-5; null: the same as seeds)"})
    strategies: tuple[str, ...] = field(default=("reset", "random", "random_pruning"), metadata={
        "help": "ticket strategies: reset, random, random_pruning, rewind"})
    #: domains that also run the random-pruning control (None: every domain)
    control_domains: tuple[str, ...] | None = field(default=None, metadata={
        "help": "domains where the control strategies run (null: every domain)"})
    transfer_pairs: tuple[tuple[str, str], ...] = field(default=(), metadata={
        "help": "[source, target] domain pairs of the transfer experiment"})
    #: the source rounds whose masks are transferred (None: every round). Each transfer
    #: round is an independent training, so a subset saves time without changing the
    #: numbers of the rounds that run (not part of the run key).
    transfer_rounds: tuple[int, ...] | None = field(default=None, metadata={
        "help": "source rounds whose masks are transferred (null: every round)"})
    #: the federated simulation (beyond the paper, §7); not part of any ticket run's key
    federated: FederatedSettings = field(default_factory=FederatedSettings, metadata={
        "help": "the federated simulation (§7)"})
    #: Set (only) by :func:`lottery.experiment.validate.resolve` on the settings it
    #: returns: checked, canonical, so entry points need not check them again. Not a
    #: setting: not in ``__init__`` (so ``replace``/``override`` give unmarked settings
    #: that are checked again), comparisons, hashes or :func:`to_dict`.
    resolved: bool = field(default=False, init=False, repr=False, compare=False, metadata={
        **NOT_HASHED, "internal": True,
        "help": "set by the validator on the settings it returns (not a setting)"})


class SettingInfo(NamedTuple):
    """One setting as ``--set`` names it, with its declared type, value and help."""

    name: str
    type: str
    value: Any
    help: str


def settings_fields(settings: Any) -> list[dataclasses.Field]:
    """The fields of a settings dataclass (class or instance) that are settings (the
    validator's mark is not)."""
    return [f for f in fields(settings) if f.init]


def iter_settings(settings: Any = ExperimentSettings, prefix: str = "") -> Iterator[SettingInfo]:
    """Every leaf setting under ``settings`` (a settings class: its defaults; an
    instance: its values), dotted (``train.lr``), in declaration order."""
    for f in settings_fields(settings):
        if isinstance(settings, type):
            value = (f.default_factory() if f.default is dataclasses.MISSING  # type: ignore[misc]
                     else f.default)
        else:
            value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            yield from iter_settings(value, f"{prefix}{f.name}.")
        else:
            yield SettingInfo(prefix + f.name, str(f.type), value, f.metadata.get("help", ""))


def setting_field(name: str, settings: Any = ExperimentSettings) -> dataclasses.Field | None:
    """The field of a dotted setting name (``train.lr``), or None if there is none."""
    head, _, rest = name.partition(".")
    for f in settings_fields(settings):
        if f.name == head:
            if not rest:
                return f
            sub = f.default_factory if f.default is dataclasses.MISSING else None  # type: ignore[misc]
            return setting_field(rest, sub) if isinstance(sub, type) else None
    return None


def setting_help(name: str) -> str:
    """The one-line help of a dotted setting name ("" if unknown)."""
    f = setting_field(name)
    return f.metadata.get("help", "") if f is not None else ""


def override(settings: Any, **changes: Any) -> Any:
    """Return ``settings`` with dotted overrides, e.g. ``override(s, **{"train.max_epochs": 3})``.

    Unknown names raise a ``ValueError`` that lists the valid ones. The result is a new,
    unresolved object (see ``ExperimentSettings.resolved``).
    """
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    valid = {f.name for f in settings_fields(settings)}
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


_INTERNAL = frozenset(f.name for f in fields(ExperimentSettings) if f.metadata.get("internal"))


def _settings_only(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {k: v for k, v in items if k not in _INTERNAL}


def to_dict(settings: Any) -> dict[str, Any]:
    """Plain dict of a settings dataclass: every setting, not the validator's mark
    (tuples stay tuples; JSON writes them as lists)."""
    return dataclasses.asdict(settings, dict_factory=_settings_only)
