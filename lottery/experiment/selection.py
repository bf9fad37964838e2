"""A chapter's (or command's) selection: the experiment settings plus which domains,
seeds and transfer pairs it trains and shows, built from chapter parameters.

:func:`chapter_settings` turns a chapter's parameters into a :class:`ChapterSettings`;
its errors name the offending parameter, so a bad ``-p`` value fails in one line
before any notebook runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

from lottery import config, data
from lottery.experiment import validate as experiment
from lottery.experiment.labels import display_name, pair_label


# ---------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ChapterSettings:
    """What one chapter runs: the experiment settings plus the selection shown.

    ``settings`` is the profile with setting-level overrides (rounds, epochs, ...);
    ``domains``, ``seeds`` and ``pairs`` select which runs the chapter trains/loads,
    without changing the settings (so the run store is shared between chapters).
    """

    profile: str
    settings: config.ExperimentSettings
    domains: tuple[str, ...]
    seeds: tuple[int, ...]
    pairs: tuple[tuple[str, str], ...]

    @property
    def sparsities(self) -> list[float]:
        p = self.settings.prune.prune_fraction_per_round
        return [config.sparsity_after(p, r) for r in range(self.settings.prune.rounds + 1)]

    @property
    def control_label(self) -> str:
        """Domains where the RANDOM-PRUNING control runs (all, unless the profile limits it)."""
        control = getattr(self.settings, "control_domains", None)
        if not control:
            return "all domains"
        shown = [display_name(d) for d in self.domains if d in control]
        return ", ".join(shown) if shown else "none of the selected domains"

    def describe(self) -> pd.DataFrame:
        """The settings a reader needs to interpret the chapter, as a two-column table."""
        s = self.settings
        rows = [
            ("profile", self.profile),
            ("dataset", s.data.dataset),
            ("domains", ", ".join(display_name(d) for d in self.domains)),
            ("reviews per domain (train / val / test)",
             f"{s.data.n_train} / {s.data.n_val} / {s.data.n_test}"),
            ("vocabulary", f"{s.vocab.vocab_size} BPE pieces, max length {s.vocab.max_len}"),
            ("CNN", f"embed {s.model.embed_dim}, filters {list(s.model.kernel_heights)} × "
                    f"{s.model.channels} channels, hidden {s.model.hidden}"),
            ("training", f"Adam lr {s.train.lr:g}, batch {s.train.batch_size}, "
                         f"≤ {s.train.max_epochs} epochs"
                         + (f", patience {s.train.patience}" if s.train.patience else "")),
            ("pruning", f"p = {s.prune.prune_fraction_per_round:.0%} per round, "
                        f"{s.prune.rounds} rounds → {self.sparsities[-1]:.2%} sparsity"),
            ("seeds", ", ".join(str(x) for x in self.seeds)),
            ("RANDOM-PRUNING control", self.control_label),
            ("transfer pairs", ", ".join(pair_label(a, b) for a, b in self.pairs) or "none"),
            ("transferred masks", "every round" if s.transfer_rounds is None else
             "rounds " + ", ".join(f"{r} ({config.sparsity_after(s.prune.prune_fraction_per_round, r):.1%})"
                                   for r in s.transfer_rounds if r <= s.prune.rounds)),
        ]
        return pd.DataFrame(rows, columns=["setting", "value"]).set_index("setting")


def _int_list(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"parameter {name!r} must be a non-empty list of integers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"parameter {name!r}: {v!r} is not a non-negative integer")
        out.append(v)
    if len(set(out)) != len(out):
        raise ValueError(f"parameter {name!r} has duplicates: {value!r}")
    return tuple(out)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"parameter {name!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _prune_fraction(value: Any) -> float:
    """The ``p`` parameter, checked by the one rule for prune fractions (config)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        config.check_prune_fraction(value)
    except (TypeError, ValueError):  # TypeError: not a number ("abc" < 1)
        raise ValueError(f"parameter 'p' (prune fraction per round) must be a number in "
                         f"(0, 1), got {value!r}") from None
    return float(value)


def _resolve(name: str, domains: Sequence[str], dataset: str) -> tuple[str, ...]:
    try:
        return tuple(data.resolve_domain(d, dataset) for d in domains)
    except ValueError as exc:
        raise ValueError(f"parameter {name!r}: {exc}") from None


def chapter_settings(
    profile: str = "course",
    *,
    domains: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    pairs: Sequence[Sequence[str]] | None = None,
    rounds: int | None = None,
    p: float | None = None,
    max_epochs: int | None = None,
    n_train: int | None = None,
    dataset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ChapterSettings:
    """The profile with a chapter's parameters applied (``None`` = the profile's value).

    ``p`` is the prune fraction per round (``prune.prune_fraction_per_round``).
    ``overrides`` takes any dotted setting (``{"train.lr": 3e-4}``, the vocabulary of
    ``--set``). Domains outside the profile's list are added to it (they need the
    shared vocabulary to cover them, so this changes the vocabulary and everything
    trained on it). Errors name the offending parameter.
    """
    if not isinstance(profile, str):
        raise ValueError(f"parameter 'profile' must be a string, got {profile!r}")
    try:
        settings = config.get_profile(profile)
    except ValueError as exc:
        raise ValueError(f"parameter 'profile': {exc}") from None
    if dataset is not None:
        if not isinstance(dataset, str) or not dataset.strip():
            raise ValueError(f"parameter 'dataset' must be a dataset name or the path of a "
                             f"JSON dataset spec, got {dataset!r}")
        overrides = {**(overrides if isinstance(overrides, Mapping) else {}), "data.dataset": dataset}
    dataset = settings.data.dataset
    if isinstance(overrides, Mapping):    # domain names are checked against the chosen dataset
        dataset = overrides.get("data.dataset", dataset)
        try:
            data.get_dataset(str(dataset))
        except ValueError as exc:
            raise ValueError(f"parameter 'dataset': {exc}") from None

    changes: dict[str, Any] = {}
    if rounds is not None:
        changes["prune.rounds"] = _positive_int("rounds", rounds, minimum=0)
    if p is not None:
        changes["prune.prune_fraction_per_round"] = _prune_fraction(p)
    if max_epochs is not None:
        changes["train.max_epochs"] = _positive_int("max_epochs", max_epochs)
    if n_train is not None:
        changes["data.n_train"] = _positive_int("n_train", n_train)
    if overrides:
        if not isinstance(overrides, Mapping):
            raise ValueError(f"parameter 'overrides' must be a dict of dotted settings, "
                             f"got {overrides!r}")
        changes.update(overrides)

    selected: tuple[str, ...]
    if domains is None:
        selected = tuple(settings.data.domains)
    else:
        if isinstance(domains, str):
            domains = [domains]
        if not isinstance(domains, (list, tuple)) or not domains:
            raise ValueError(f"parameter 'domains' must be a non-empty list of domain "
                             f"names, got {domains!r}")
        selected = tuple(dict.fromkeys(_resolve("domains", domains, dataset)))
        extra = [d for d in selected if d not in settings.data.domains]
        if extra and dataset == settings.data.dataset:   # another dataset brings its own
            changes.setdefault("data.domains", tuple(settings.data.domains) + tuple(extra))
    try:   # the one check of an experiment's settings (and canonical domain names)
        settings = experiment.apply_overrides(settings, changes)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"parameter 'overrides': {exc}") from None
    if domains is None:   # the (possibly overridden, or another dataset's) domains
        selected = tuple(settings.data.domains)
    elif "data.domains" in changes:
        missing = [d for d in selected if d not in settings.data.domains]
        if missing:
            raise ValueError(f"parameter 'domains': {missing} are not in data.domains "
                             f"{list(settings.data.domains)} set by 'overrides'")

    chosen_seeds = tuple(settings.seeds) if seeds is None else _int_list("seeds", seeds)
    if pairs is None:
        chosen_pairs = tuple(
            (a, b) for a, b in settings.transfer_pairs if a in selected and b in selected
        )
    else:
        chosen_pairs = _check_pairs(pairs, settings)
    data.use_display_names(settings.data.dataset)   # "Movies" only where dvd is FDU-MTL's
    return ChapterSettings(profile, settings, selected, chosen_seeds, chosen_pairs)


def _check_pairs(pairs: Any, settings: config.ExperimentSettings
                 ) -> tuple[tuple[str, str], ...]:
    """The ``pairs`` parameter: resolved, distinct, and inside the profile's domains."""
    if not isinstance(pairs, (list, tuple)):
        raise ValueError(f"parameter 'pairs' must be a list of [source, target] pairs, "
                         f"got {pairs!r}")
    out = []
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"parameter 'pairs': {pair!r} is not a [source, target] pair")
        a, b = _resolve("pairs", pair, settings.data.dataset)
        if a == b:
            raise ValueError(f"parameter 'pairs': source and target are both {a!r}")
        for d in (a, b):
            if d not in settings.data.domains:
                raise ValueError(
                    f"parameter 'pairs': domain {d!r} is not in the profile's domains "
                    f"{list(settings.data.domains)}; add it with the 'domains' parameter"
                )
        out.append((a, b))
    return tuple(dict.fromkeys(out))
