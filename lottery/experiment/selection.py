"""A chapter's (or command's) selection: the experiment settings plus which domains,
seeds and transfer pairs it trains and shows, built from chapter parameters.

:func:`chapter_settings` turns a chapter's parameters into setting changes and a
selection, and hands both to the one validator (:mod:`lottery.experiment.validate`);
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
    #: the ticket grid's seeds (claims 2-5): the profile's ``ticket_seeds`` unless the
    #: chapter's ``seeds`` parameter chose the seeds of every grid
    ticket_seeds: tuple[int, ...] = ()

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
            ("seeds of the ticket grid", ", ".join(str(x) for x in self.ticket_seeds)),
            ("RANDOM-PRUNING control", self.control_label),
            ("transfer pairs", ", ".join(pair_label(a, b) for a, b in self.pairs) or "none"),
            ("transferred masks", "every round" if s.transfer_rounds is None else
             "rounds " + ", ".join(f"{r} ({config.sparsity_after(s.prune.prune_fraction_per_round, r):.1%})"
                                   for r in s.transfer_rounds if r <= s.prune.rounds)),
        ]
        return pd.DataFrame(rows, columns=["setting", "value"]).set_index("setting")


#: The chapter parameters that set one setting each, and how errors name them.
PARAMETER_SETTINGS: dict[str, tuple[str, str]] = {
    "rounds": ("prune.rounds", "parameter 'rounds' (pruning rounds)"),
    "p": ("prune.prune_fraction_per_round", "parameter 'p' (prune fraction per round)"),
    "max_epochs": ("train.max_epochs", "parameter 'max_epochs' (training epochs)"),
    "n_train": ("data.n_train", "parameter 'n_train' (training reviews per domain)"),
    "dataset": ("data.dataset", "parameter 'dataset'"),
}


def _profile(profile: Any, overrides: Any) -> config.ExperimentSettings:
    """The ``profile`` parameter's settings (and an ``overrides`` parameter of the right type)."""
    if not isinstance(profile, str):
        raise ValueError(f"parameter 'profile' must be a string, got {profile!r}")
    try:
        base = config.get_profile(profile)
    except ValueError as exc:
        raise ValueError(f"parameter 'profile': {exc}") from None
    if overrides and not isinstance(overrides, Mapping):
        raise ValueError(f"parameter 'overrides' must be a dict of dotted settings, got {overrides!r}")
    return base


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

    This only translates parameters into setting changes and a selection; both are
    checked by the one validator (:mod:`lottery.experiment.validate`), once.
    """
    base = _profile(profile, overrides)

    # parameters -> setting changes; 'overrides' wins over the parameters, except 'dataset'
    given = {"rounds": rounds, "p": p, "max_epochs": max_epochs, "n_train": n_train}
    changes: dict[str, Any] = {PARAMETER_SETTINGS[k][0]: v for k, v in given.items() if v is not None}
    changes.update(overrides or {})
    if dataset is not None:
        changes["data.dataset"] = dataset
    labels = {PARAMETER_SETTINGS[k][0]: PARAMETER_SETTINGS[k][1] for k, v in given.items()
              if v is not None and PARAMETER_SETTINGS[k][0] not in (overrides or {})}
    if dataset is not None:
        labels["data.dataset"] = PARAMETER_SETTINGS["dataset"][1]

    selected = None
    try:
        if domains is not None:   # named in the chosen dataset; new ones join data.domains
            dataset_name = changes.get("data.dataset", base.data.dataset)
            selected = experiment.domain_names(domains, dataset_name, "parameter 'domains'", labels)
            extra = tuple(d for d in selected if d not in base.data.domains)
            if extra and dataset_name == base.data.dataset and "data.domains" not in changes:
                changes["data.domains"] = tuple(base.data.domains) + extra
                labels["data.domains"] = "parameter 'domains'"
        # the one check of the settings (and canonical domain names)
        settings = experiment.apply_overrides(base, changes, labels)
    except (ValueError, TypeError) as exc:   # a setting no parameter names came from 'overrides'
        message = str(exc)
        raise ValueError(message if message.startswith("parameter ")
                         else f"parameter 'overrides': {message}") from None
    hint = ("data.domains is set by 'overrides'" if "data.domains" in (overrides or {})
            else "add it with the 'domains' parameter")
    chosen = experiment.select(settings, domains=selected, seeds=seeds, pairs=pairs, hint=hint,
                               labels={"domains": "parameter 'domains'", "seeds": "parameter 'seeds'",
                                       "pairs": "parameter 'pairs'"})
    data.use_display_names(settings.data.dataset)   # "Movies" only where dvd is FDU-MTL's
    grid = chosen.seeds if seeds is not None else experiment.ticket_seeds(settings)
    return ChapterSettings(profile, settings, chosen.domains, chosen.seeds, chosen.pairs, grid)
