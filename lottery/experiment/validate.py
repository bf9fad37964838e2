"""The one edge where an experiment's settings are checked and domain names made canonical.

Every entry point (the CLI, the chapters, :mod:`lottery.engine.runner`) calls :func:`resolve`
once; everything behind it (procedures, training, the run store) trusts its input.
Errors name the setting, the way it is written with ``--set`` (``train.max_epochs``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lottery import config
from lottery.config import ExperimentSettings, strategies
from lottery.data import get_dataset, resolve_domain


def _int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"setting {name} must be an integer >= {minimum}, got {value!r}")


def _number(name: str, value: Any, minimum: float, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < minimum or (strict and value == minimum):
        raise ValueError(f"setting {name} must be a number {'>' if strict else '>='} {minimum}, got {value!r}")


def _domains(name: str, values: Any, dataset: str, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ValueError(f"setting {name} must be a list of domain names, got {values!r}")
    out = []
    for v in values:
        try:
            d = resolve_domain(v, dataset)
        except ValueError as exc:
            raise ValueError(f"setting {name}: {exc}") from None
        if allowed is not None and d not in allowed:
            raise ValueError(f"setting {name}: domain {d!r} is not in data.domains {list(allowed)} "
                             f"(the shared vocabulary is trained on those; add it there)")
        out.append(d)
    if len(set(out)) != len(out):
        raise ValueError(f"setting {name} lists a domain twice: {values!r}")
    return tuple(out)


def resolve(settings: ExperimentSettings) -> ExperimentSettings:
    """``settings`` checked, with canonical domain names (``Books``/``B`` -> ``books``).

    Raises ``ValueError`` naming the first bad setting.
    """
    d, v, m, t, p = settings.data, settings.vocab, settings.model, settings.train, settings.prune
    for name, value in (("data.n_train", d.n_train), ("data.n_val", d.n_val), ("data.n_test", d.n_test),
                        ("vocab.vocab_size", v.vocab_size), ("model.embed_dim", m.embed_dim),
                        ("model.channels", m.channels), ("model.hidden", m.hidden),
                        ("train.batch_size", t.batch_size), ("train.eval_batch_size", t.eval_batch_size),
                        ("train.max_epochs", t.max_epochs), ("train.threads", t.threads)):
        _int(name, value, 1)
    _int("data.split_seed", d.split_seed, 0)
    _int("prune.rounds", p.rounds, 0)
    if not m.kernel_heights or any(isinstance(h, bool) or not isinstance(h, int) or h < 1
                                   for h in m.kernel_heights):
        raise ValueError(f"setting model.kernel_heights must be a list of integers >= 1, got {m.kernel_heights!r}")
    _int("vocab.max_len", v.max_len, max(m.kernel_heights))
    if t.patience is not None:
        _int("train.patience", t.patience, 1)
    _number("train.lr", t.lr, 0.0, strict=True)
    _number("train.weight_decay", t.weight_decay, 0.0)
    _number("model.he_a", m.he_a, 0.0)
    if not (isinstance(m.embed_dropout, (int, float)) and 0.0 <= m.embed_dropout < 1.0):
        raise ValueError(f"setting model.embed_dropout must be in [0, 1), got {m.embed_dropout!r}")
    if t.autocast_dtype not in (None, "bfloat16"):
        raise ValueError(f"setting train.autocast_dtype must be null or \"bfloat16\" (float16 would "
                         f"need loss scaling), got {t.autocast_dtype!r}")
    try:
        config.check_prune_fraction(p.prune_fraction_per_round)
    except (ValueError, TypeError):
        raise ValueError(f"setting prune.prune_fraction_per_round (p) must be a number in (0, 1), "
                         f"got {p.prune_fraction_per_round!r}") from None

    seeds = settings.seeds
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (list, tuple)) or not seeds:
        raise ValueError(f"setting seeds must be a non-empty list of integers, got {seeds!r}")
    for s in seeds:
        _int("seeds", s, 0)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"setting seeds lists a seed twice: {list(seeds)}")
    try:
        chosen = strategies.check(settings.strategies, "tickets")
    except ValueError as exc:
        raise ValueError(f"setting strategies: {exc}") from None

    domains = _domains("data.domains", d.domains, d.dataset, None)
    if not domains:
        raise ValueError("setting data.domains must name at least one domain")
    control = (None if settings.control_domains is None
               else _domains("control_domains", settings.control_domains, d.dataset, domains))
    pairs = []
    for pair in settings.transfer_pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"setting transfer_pairs: {pair!r} is not a [source, target] pair")
        (a,), (b,) = (_domains("transfer_pairs", (x,), d.dataset, domains) for x in pair)
        if a == b:
            raise ValueError(f"setting transfer_pairs: ({a!r}, {b!r}): source and target must differ")
        pairs.append((a, b))
    rounds = settings.transfer_rounds
    if rounds is not None:
        if isinstance(rounds, (str, int)) or not rounds:
            raise ValueError(f"setting transfer_rounds must be a non-empty list of rounds or null, "
                             f"got {rounds!r}")
        for r in rounds:
            _int("transfer_rounds", r, 1)
        rounds = tuple(sorted(set(rounds)))
    return replace(settings, data=replace(d, domains=domains), seeds=tuple(seeds), strategies=chosen,
                   control_domains=control, transfer_pairs=tuple(dict.fromkeys(pairs)),
                   transfer_rounds=rounds, federated=_federated(settings.federated, d.dataset, domains))


def _federated(f: config.FederatedSettings, dataset: str, domains: tuple[str, ...]
               ) -> config.FederatedSettings:
    """The ``federated.*`` settings checked (pairs canonical, strategies as table keys)."""
    for name in ("clients", "comm_rounds", "local_epochs"):
        _int(f"federated.{name}", getattr(f, name), 1)
    if isinstance(f.rounds, (str, int)) or not f.rounds:
        raise ValueError(f"setting federated.rounds must be a non-empty list of pruning rounds, "
                         f"got {f.rounds!r}")
    for r in f.rounds:
        _int("federated.rounds", r, 1)
    if f.pairs is None:     # derived where used (lottery.federated.jobs.pairs_of)
        pairs = None
    else:
        pairs = []
    for pair in f.pairs or ():
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"setting federated.pairs: {pair!r} is not a [server, clients] pair")
        (a,), (b,) = (_domains("federated.pairs", (x,), dataset, domains) for x in pair)
        if a == b:
            raise ValueError(f"setting federated.pairs: ({a!r}, {b!r}): the clients' domain must "
                             f"differ from the server's")
        pairs.append((a, b))
    try:
        keys = strategies.check(f.strategies, "federated")
    except ValueError as exc:
        raise ValueError(f"setting federated.strategies: {exc}") from None
    if f.backend not in ("flower", "inline"):
        raise ValueError(f"setting federated.backend must be \"flower\" or \"inline\", got {f.backend!r}")
    return replace(f, pairs=None if pairs is None else tuple(dict.fromkeys(pairs)),
                   rounds=tuple(sorted(set(f.rounds))), strategies=keys)


def apply_overrides(settings: ExperimentSettings, changes: dict[str, Any] | None) -> ExperimentSettings:
    """``settings`` with dotted overrides (``{"train.lr": 1e-3}``), resolved.

    When ``data.domains`` is overridden, the profile's own transfer pairs and control
    domains that fall outside the new domains are dropped (a profile default should
    not break a narrower run); values the caller sets are checked as given. When
    ``data.dataset`` is overridden without ``data.domains`` and the dataset lacks the
    profile's domains, every domain of the dataset is used.
    """
    changes = dict(changes or {})
    if "data.dataset" in changes and "data.domains" not in changes:
        # another dataset without its own domain list: the profile's domains are kept
        # when the dataset has them all (e.g. Blitzer), else every domain of the dataset

        spec = get_dataset(str(changes["data.dataset"]))
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
        domains = _domains("data.domains", out.data.domains, out.data.dataset, None)
        if "transfer_pairs" not in changes:
            out = replace(out, transfer_pairs=tuple(p for p in out.transfer_pairs
                                                    if p[0] in domains and p[1] in domains))
        if "federated.pairs" not in changes and out.federated.pairs is not None:
            kept = tuple(p for p in out.federated.pairs if p[0] in domains and p[1] in domains)
            out = replace(out, federated=replace(out.federated, pairs=kept or None))
        if "control_domains" not in changes and out.control_domains is not None:
            out = replace(out, control_domains=tuple(d for d in out.control_domains if d in domains))
    return resolve(out)


def from_profile(profile: str, changes: dict[str, Any] | None = None) -> ExperimentSettings:
    """A profile with dotted overrides, resolved (see :func:`apply_overrides`)."""
    return apply_overrides(config.get_profile(profile), changes)
