"""The one validator: an experiment's settings and a selection of its runs, checked once,
at the edge, with canonical domain names.

- :func:`resolve` checks every setting and returns the settings *marked* resolved
  (``ExperimentSettings.resolved``; not part of any hash, comparison or ``to_dict``).
  The CLI (:func:`from_profile`) and the chapters (:mod:`lottery.experiment.selection`)
  call it once; library entry points (:mod:`lottery.engine.runner`) call
  :func:`ensure_resolved`, which resolves only unmarked settings, so everything behind
  them (procedures, training, masks, the run store) trusts its input.
  ``replace``/``override`` give unmarked settings, which are checked again.
- :func:`select` checks a selection (domains, seeds, transfer pairs, strategies) against
  resolved settings, without changing them.

Errors are one line that names the setting the way ``--set`` writes it (``train.lr``), or
the chapter parameter it came from (``labels``: ``{"prune.prune_fraction_per_round":
"parameter 'p' (prune fraction per round)"}``), and end with the setting's help
(``lottery profile --help-settings``): ``setting train.lr must be a number > 0, got -1
(train.lr: Adam learning rate)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import torch

from lottery import config
from lottery.config import ExperimentSettings, strategies as strategy_table
from lottery.data import get_dataset, resolve_domain
from lottery.experiment.fields import (Labels, Names, check_bool, check_choice, check_fraction, check_int,
                                      check_ints, check_number, check_text, is_int, is_number)

def _dataset(n: Names, name: str, dataset: Any) -> None:
    check_text(n, name, dataset)
    try:
        get_dataset(dataset)
    except ValueError as exc:
        raise n.error(name, f": {exc}") from None


def _domain(n: Names, name: str, value: Any, dataset: str, allowed: Sequence[str] | None,
            hint: str) -> str:
    """One domain name, canonical, and (``allowed``) among the settings' domains."""
    try:
        d = resolve_domain(value, dataset)
    except (ValueError, TypeError) as exc:
        raise n.error(name, f": {exc}") from None
    if allowed is not None and d not in allowed:
        raise n.error(name, f": domain {d!r} is not in data.domains {list(allowed)} (not among this "
                            f"profile's domains, on which the shared vocabulary is trained; {hint})")
    return d


def _domains(n: Names, name: str, values: Any, dataset: str, allowed: Sequence[str] | None,
             hint: str = "add it to data.domains", unique: bool = True) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise n.error(name, f" must be a list of domain names, got {values!r}")
    out = tuple(_domain(n, name, v, dataset, allowed, hint) for v in values)
    if len(set(out)) != len(out):
        if unique:
            raise n.error(name, f" lists a domain twice: {values!r}")
        out = tuple(dict.fromkeys(out))
    return out


def _pairs(n: Names, name: str, pairs: Any, dataset: str, allowed: Sequence[str],
           roles: str = "source, target", hint: str = "add it to data.domains") -> tuple[tuple[str, str], ...]:
    """Distinct (a, b) domain pairs, canonical, a != b, both among ``allowed``."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, (list, tuple)):
        raise n.error(name, f" must be a list of [{roles}] pairs, got {pairs!r}")
    out = []
    for pair in pairs:
        if isinstance(pair, str) or not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise n.error(name, f": {pair!r} is not a [{roles}] pair")
        a, b = (_domain(n, name, x, dataset, allowed, hint) for x in pair)
        if a == b:
            first, second = roles.split(", ")
            raise n.error(name, f": ({a!r}, {b!r}): {first} and {second} must differ")
        out.append((a, b))
    return tuple(dict.fromkeys(out))


def _device(n: Names, name: str, value: Any) -> None:
    """A torch device; a CUDA one needs a torch built with CUDA. Whether a GPU is visible
    is checked where the training runs (``lottery.engine.devices.check_device``): a
    client (a Slurm login node) may have none while its workers do."""
    check_text(n, name, value)
    try:
        kind = torch.device(value).type
    except RuntimeError:
        raise n.error(name, f" must be a torch device (cpu, cuda, cuda:N), got {value!r}") from None
    if kind == "cuda" and not torch.backends.cuda.is_built():
        raise ValueError(f"{name}={value!r} but this torch ({torch.__version__}) has no CUDA; "
                         f"install a CUDA build (docs/gpu.md) or use {name}=cpu")


def _strategies(n: Names, name: str, names: Any, procedure: str) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise n.error(name, f" must be a list of strategy names, got {names!r}")
    try:
        return strategy_table.check(names, procedure)
    except ValueError as exc:
        raise n.error(name, f": {exc}") from None


# ---------------------------------------------------------------------------- settings
def _check_numbers(n: Names, settings: ExperimentSettings) -> None:
    """The scalar settings: sizes, rates, fractions, flags (each named as ``--set`` writes it)."""
    d, v, m, t, p = settings.data, settings.vocab, settings.model, settings.train, settings.prune
    for name, value in (("data.n_train", d.n_train), ("data.n_val", d.n_val), ("data.n_test", d.n_test)):
        check_int(n, name, value, 2, even=True)
    for name, value in (("vocab.vocab_size", v.vocab_size), ("model.embed_dim", m.embed_dim),
                        ("model.channels", m.channels), ("model.hidden", m.hidden),
                        ("train.batch_size", t.batch_size), ("train.eval_batch_size", t.eval_batch_size),
                        ("train.max_epochs", t.max_epochs), ("train.threads", t.threads)):
        check_int(n, name, value, 1)
    check_int(n, "model.n_classes", m.n_classes, 2)
    check_int(n, "data.split_seed", d.split_seed, 0)
    check_int(n, "prune.rounds", p.rounds, 0)
    check_int(n, "prune.rewind_iterations", p.rewind_iterations, 0)
    if (isinstance(m.kernel_heights, (str, bytes)) or not isinstance(m.kernel_heights, (list, tuple))
            or not m.kernel_heights or not all(is_int(h) and h >= 1 for h in m.kernel_heights)):
        raise n.error("model.kernel_heights", f" must be a list of integers >= 1, got {m.kernel_heights!r}")
    check_int(n, "vocab.max_len", v.max_len, max(m.kernel_heights))
    check_fraction(n, "vocab.character_coverage", v.character_coverage, closed_low=False, closed_high=True)
    check_text(n, "vocab.model_type", v.model_type)
    if t.patience is not None:
        check_int(n, "train.patience", t.patience, 1)
    check_number(n, "train.lr", t.lr, 0.0, strict=True)
    check_number(n, "train.weight_decay", t.weight_decay, 0.0)
    check_number(n, "model.he_a", m.he_a, 0.0)
    check_fraction(n, "model.embed_dropout", m.embed_dropout, closed_low=True, closed_high=False)
    _device(n, "train.device", t.device)
    check_choice(n, "train.autocast_dtype", t.autocast_dtype)
    check_bool(n, "train.stack_strategies", t.stack_strategies)
    check_bool(n, "prune.prune_biases", p.prune_biases)
    # the paper's p: the one check of the prune fraction on its way to the masks
    # (config.check_prune_fraction is the rule; masks only do arithmetic with it)
    try:
        if not is_number(p.prune_fraction_per_round):
            raise TypeError
        config.check_prune_fraction(p.prune_fraction_per_round)
    except (ValueError, TypeError):
        raise n.error("prune.prune_fraction_per_round", f" must be a number in (0, 1), "
                                                        f"got {p.prune_fraction_per_round!r}") from None


def resolve(settings: ExperimentSettings, labels: Labels = None) -> ExperimentSettings:
    """``settings`` checked, with canonical domain names (``Books``/``B`` -> ``books``),
    marked resolved. Idempotent: resolving resolved settings gives equal settings.

    Raises ``ValueError`` naming the first bad setting (or the chapter parameter that
    set it: ``labels``).
    """
    n = Names(labels)
    _check_numbers(n, settings)
    d = settings.data
    seeds = check_ints(n, "seeds", settings.seeds, 0)
    more = None if settings.ticket_seeds is None else check_ints(n, "ticket_seeds", settings.ticket_seeds, 0)
    chosen = _strategies(n, "strategies", settings.strategies, "tickets")

    _dataset(n, "data.dataset", d.dataset)
    domains = _domains(n, "data.domains", d.domains, d.dataset, None)
    if not domains:
        raise n.error("data.domains", " must name at least one domain")
    control = (None if settings.control_domains is None
               else _domains(n, "control_domains", settings.control_domains, d.dataset, domains))
    pairs = _pairs(n, "transfer_pairs", settings.transfer_pairs, d.dataset, domains)
    rounds = settings.transfer_rounds
    if rounds is not None:
        if isinstance(rounds, (str, int)) or not isinstance(rounds, (list, tuple)) or not rounds:
            raise n.error("transfer_rounds", f" must be a non-empty list of rounds or null, got {rounds!r}")
        for r in rounds:
            check_int(n, "transfer_rounds", r, 1)
        rounds = tuple(sorted(set(rounds)))
    out = replace(settings, data=replace(d, domains=domains), seeds=seeds, ticket_seeds=more, strategies=chosen,
                  control_domains=control, transfer_pairs=pairs, transfer_rounds=rounds,
                  federated=_federated(n, settings.federated, d.dataset, domains))
    object.__setattr__(out, "resolved", True)   # frozen; the mark is not a setting
    return out


def rounds_reached(settings: ExperimentSettings, name: str, labels: Labels = None) -> None:
    """``transfer_rounds`` or ``federated.rounds`` past ``prune.rounds`` are left out where
    they are used; none left is an error (it would give an empty table without a word).
    Checked by the procedure that uses them (a ticket run with few rounds may keep a
    profile's federated rounds it never uses)."""
    rounds = settings.transfer_rounds if name == "transfer_rounds" else settings.federated.rounds
    if rounds is not None and not any(r <= settings.prune.rounds for r in rounds):
        raise Names(labels).error(name, f" has no round the pruning reaches: {list(rounds)} vs "
                                        f"prune.rounds = {settings.prune.rounds}")


def _federated(n: Names, f: config.FederatedSettings, dataset: str, domains: tuple[str, ...]
               ) -> config.FederatedSettings:
    """The ``federated.*`` settings checked (pairs canonical, strategies as table keys)."""
    for name in ("clients", "comm_rounds", "local_epochs"):
        check_int(n, f"federated.{name}", getattr(f, name), 1)
    if isinstance(f.rounds, (str, int)) or not isinstance(f.rounds, (list, tuple)) or not f.rounds:
        raise n.error("federated.rounds", f" must be a non-empty list of pruning rounds, got {f.rounds!r}")
    for r in f.rounds:
        check_int(n, "federated.rounds", r, 1)
    # None: derived where used (lottery.federated.jobs.pairs_of)
    pairs = (None if f.pairs is None else
             _pairs(n, "federated.pairs", f.pairs, dataset, domains, roles="server, clients"))
    keys = _strategies(n, "federated.strategies", f.strategies, "federated")
    check_choice(n, "federated.backend", f.backend)
    return replace(f, pairs=pairs, rounds=tuple(sorted(set(f.rounds))), strategies=keys)


def ensure_resolved(settings: ExperimentSettings) -> ExperimentSettings:
    """``settings`` if :func:`resolve` returned them, else resolved (library entry
    points call this: settings from the CLI or a chapter are not checked twice)."""
    return settings if getattr(settings, "resolved", False) else resolve(settings)


def apply_overrides(settings: ExperimentSettings, changes: dict[str, Any] | None,
                    labels: Labels = None) -> ExperimentSettings:
    """``settings`` with dotted overrides (``{"train.lr": 1e-3}``), resolved.

    When ``data.domains`` is overridden, the profile's own transfer pairs and control
    domains that fall outside the new domains are dropped (a profile default should
    not break a narrower run); values the caller sets are checked as given. When
    ``data.dataset`` is overridden without ``data.domains`` and the dataset lacks the
    profile's domains, every domain of the dataset is used.
    """
    n = Names(labels)
    changes = dict(changes or {})
    if "data.dataset" in changes and "data.domains" not in changes:
        # another dataset without its own domain list: the profile's domains are kept
        # when the dataset has them all (e.g. Blitzer), else every domain of the dataset
        _dataset(n, "data.dataset", changes["data.dataset"])
        spec = get_dataset(changes["data.dataset"])
        try:
            for d in settings.data.domains:
                resolve_domain(d, spec.name)
        except ValueError:
            changes["data.domains"] = spec.domains
    try:
        out = config.override(settings, **changes)
    except TypeError as exc:
        raise ValueError(f"bad override {changes!r}: {exc}") from None
    if "data.domains" in changes:
        _dataset(n, "data.dataset", out.data.dataset)
        domains = _domains(n, "data.domains", out.data.domains, out.data.dataset, None)
        if "transfer_pairs" not in changes:
            out = replace(out, transfer_pairs=tuple(p for p in out.transfer_pairs
                                                    if p[0] in domains and p[1] in domains))
        if "federated.pairs" not in changes and out.federated.pairs is not None:
            kept = tuple(p for p in out.federated.pairs if p[0] in domains and p[1] in domains)
            out = replace(out, federated=replace(out.federated, pairs=kept or None))
        if "control_domains" not in changes and out.control_domains is not None:
            out = replace(out, control_domains=tuple(d for d in out.control_domains if d in domains))
    return resolve(out, labels)


def from_profile(profile: str, changes: dict[str, Any] | None = None) -> ExperimentSettings:
    """A profile with dotted overrides, resolved (see :func:`apply_overrides`)."""
    return apply_overrides(config.get_profile(profile), changes)


# ---------------------------------------------------------------------------- selection
def ticket_seeds(settings: ExperimentSettings) -> tuple[int, ...]:
    """The seeds of the ticket grid: ``ticket_seeds``, or ``seeds`` when it is null."""
    return tuple(settings.seeds if settings.ticket_seeds is None else settings.ticket_seeds)


@dataclass(frozen=True)
class Selection:
    """Which runs of resolved settings to train or show (the settings are unchanged)."""

    domains: tuple[str, ...]
    seeds: tuple[int, ...]
    pairs: tuple[tuple[str, str], ...]
    strategies: tuple[str, ...]


#: How errors name the parts of a selection, unless the caller says otherwise.
SELECTION_LABELS = {"domains": "selected domains", "seeds": "selected seeds",
                    "pairs": "selected pairs", "strategies": "selected strategies"}


def domain_names(values: Any, dataset: str, label: str = SELECTION_LABELS["domains"],
                 labels: Labels = None) -> tuple[str, ...]:
    """Domain names (a list, or one name) made canonical for ``dataset``, in order and
    without repeats; ``label`` names them in errors (a bad ``dataset`` is named by
    ``labels``, as in :func:`resolve`)."""
    _dataset(Names(labels), "data.dataset", dataset)
    n = Names({"domains": label}, helps=False)
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)) or not values:
        raise n.error("domains", f" must be a non-empty list of domain names, got {values!r}")
    return _domains(n, "domains", values, dataset, None, unique=False)


def select(settings: ExperimentSettings, domains: Any = None, seeds: Any = None, pairs: Any = None,
           strategies: Any = None, procedure: str = "tickets", labels: Labels = None,
           hint: str = "add it to data.domains") -> Selection:
    """The selection checked against ``settings`` (resolved if they are not): domains
    among ``data.domains``, distinct non-negative seeds, transfer pairs of two different
    such domains, and strategies of ``procedure``. ``None`` = the settings' own: every
    domain and seed, the transfer pairs inside the selected domains, the profile's
    ticket strategies (none or empty) or every strategy of another ``procedure``.
    ``hint`` says how to add a domain (in errors)."""
    settings = ensure_resolved(settings)
    if procedure in ("transfer", "federated"):
        rounds_reached(settings, "transfer_rounds" if procedure == "transfer" else "federated.rounds", labels)
    n = Names({**SELECTION_LABELS, **(labels or {})}, helps=False)
    dataset, allowed = settings.data.dataset, settings.data.domains
    if domains is None:
        chosen = tuple(allowed)
    else:
        chosen = domain_names(domains, dataset, n.what("domains"))
        for d in chosen:
            _domain(n, "domains", d, dataset, allowed, hint)
    chosen_seeds = settings.seeds if seeds is None else check_ints(n, "seeds", seeds, 0, one=True)
    if pairs is None:
        chosen_pairs = tuple((a, b) for a, b in settings.transfer_pairs if a in chosen and b in chosen)
    else:
        chosen_pairs = _pairs(n, "pairs", pairs, dataset, allowed, hint=hint)
    if procedure == "tickets" and not strategies:
        keys = settings.strategies
    elif strategies is None:
        keys = strategy_table.keys(procedure)
    else:
        keys = _strategies(n, "strategies", strategies, procedure)
    return Selection(chosen, chosen_seeds, chosen_pairs, keys)
