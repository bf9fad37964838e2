"""The phase chapter's instability section: its two parameters, the jobs it runs (the
plan counts the very same ones, :mod:`lottery.book.plan`), and its chart.

By default (:func:`workload`) the section measures, at the two rounds around 96%
sparsity (:func:`lottery.stats.instability.transition_rounds`; where the pruning does not
cross 96%, as in the smoke profile, its last two rounds, and the stated test is not run):

* TICKET-RESET and TICKET-RANDOM, and TICKET-REWIND where the profile's ticket runs
  train it (the controls' domains), in the chapter's first domain, over all ticket seeds;
* MASKS-RESET and MASKS-RANDOM on the chapter's first transfer pair, over the first
  :data:`TRANSFER_SEEDS` ticket seeds.

``instability_rounds`` (a list of rounds: e.g. all of them, for the whole curve) and
``instability_transfer`` (another ``[source, target]`` pair, or ``[]`` for none) change
that; their errors name the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import altair as alt
import pandas as pd

from lottery.book.plots import LABEL, _configured, _faceted, _strategy_colour, sparsity_axis, with_labels
from lottery.config import ExperimentSettings
from lottery.engine.instability import InstabilityJob, instability_jobs
from lottery.experiment import validate as experiment
from lottery.experiment.fields import Names, check_ints
from lottery.experiment.labels import display_name, nines, pair_label, strategy_label
from lottery.stats.instability import STABLE_BARRIER, transition_rounds

#: The transfer task's seeds: the first five ticket seeds (cost).
TRANSFER_SEEDS = 5
TRANSFER_STRATEGIES = ("masks_reset", "masks_random")
#: The chapter's parameters of this section (besides the settings parameters).
PARAMETERS = ("instability_rounds", "instability_transfer")


@dataclass(frozen=True)
class Workload:
    """What the section measures: ``rounds`` (empty: nothing), the ticket strategies in
    ``domain`` over ``seeds``, and the transfer strategies on ``pair`` (None: none) over
    ``transfer_seeds``; ``crossing``: the rounds around 96% (None: not crossed)."""

    rounds: tuple[int, ...]
    crossing: tuple[int, int] | None
    domain: str | None
    strategies: tuple[str, ...]
    seeds: tuple[int, ...]
    pair: tuple[str, str] | None
    transfer_seeds: tuple[int, ...]

    def jobs(self, settings: ExperimentSettings, points: int = 11) -> list[InstabilityJob]:
        """The instability jobs (ticket ones first), as the chapter runs them."""
        if not self.rounds:
            return []
        out = instability_jobs(settings, [self.domain], self.seeds, self.strategies, self.rounds, points)
        pruned = [r for r in self.rounds if r > 0]   # a transfer has no round 0
        if self.pair and pruned:
            source, target = self.pair
            out += instability_jobs(settings, [target], self.transfer_seeds, TRANSFER_STRATEGIES, pruned,
                                    points, source=source)
        return out

    @property
    def tests_hypothesis(self) -> bool:
        """Whether the stated test can run: both crossing rounds measured."""
        return self.crossing is not None and set(self.crossing) <= set(self.rounds)

    def panels(self) -> dict[str, str]:
        """Chart panel per strategy: the ticket domain, or the transfer task."""
        out = {k: f"{display_name(self.domain)}: ticket finding" for k in self.strategies}
        if self.pair:
            out.update({k: f"{pair_label(*self.pair)}: transferred masks" for k in TRANSFER_STRATEGIES})
        return out


def ticket_strategies(settings: ExperimentSettings, domain: str) -> tuple[str, ...]:
    """RESET and RANDOM, and REWIND where the profile's ticket runs train it in ``domain``
    (it is a control: :func:`lottery.engine.runner.ticket_jobs`)."""
    controls = settings.control_domains
    rewinds = "rewind" in settings.strategies and (controls is None or domain in controls)
    return ("reset", "random") + (("rewind",) if rewinds else ())


def choose_rounds(settings: ExperimentSettings, value: Any) -> tuple[int, ...]:
    """``instability_rounds``: None = the rounds around 96% (not crossed: the last two)."""
    if value is None:
        last = settings.prune.rounds
        crossing = transition_rounds(settings.prune.prune_fraction_per_round, last)
        return tuple(crossing or range(max(1, last - 1), last + 1))
    n = Names({"rounds": "parameter 'instability_rounds'"}, helps=False)
    rounds = check_ints(n, "rounds", value, 0, one=True)
    if max(rounds) > settings.prune.rounds:
        raise n.error("rounds", f": {max(rounds)} is past the last round ({settings.prune.rounds})")
    return tuple(sorted(rounds))


def choose_pair(settings: ExperimentSettings, pairs: Sequence[tuple[str, str]], value: Any
                ) -> tuple[str, str] | None:
    """``instability_transfer``: None = the chapter's first pair; ``[]`` = none; else a
    ``[source, target]`` pair of the profile's domains."""
    if value is None:
        return tuple(pairs[0]) if pairs else None
    if isinstance(value, (list, tuple)) and len(value) == 0:
        return None
    label = {"pairs": "parameter 'instability_transfer'"}
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        value = [value]     # one pair, as the parameter takes it
    chosen = experiment.select(settings, pairs=value, labels=label).pairs
    if len(chosen) != 1:
        raise ValueError(f"parameter 'instability_transfer' must be one [source, target] pair, got {value!r}")
    return chosen[0]


def workload(settings: ExperimentSettings, domains: Sequence[str], seeds: Sequence[int],
             pairs: Sequence[tuple[str, str]], instability_rounds: Any = None,
             instability_transfer: Any = None) -> Workload:
    """The section's workload for a chapter's domains, ticket seeds and pairs, and its
    two parameters (checked here: errors name them)."""
    settings = experiment.ensure_resolved(settings)
    rounds = choose_rounds(settings, instability_rounds)
    pair = choose_pair(settings, pairs, instability_transfer)
    domain = list(domains)[0] if domains else None
    crossing = transition_rounds(settings.prune.prune_fraction_per_round, settings.prune.rounds)
    return Workload(rounds if domain else (), crossing, domain,
                    ticket_strategies(settings, domain) if domain else (), tuple(seeds), pair,
                    tuple(seeds)[:TRANSFER_SEEDS])


def for_chapter(run: Any, parameters: Mapping[str, Any] | None = None) -> Workload:
    """:func:`workload` of a chapter's settings (:class:`lottery.experiment.selection.ChapterSettings`)."""
    return workload(run.settings, run.domains, run.ticket_seeds, run.pairs, **dict(parameters or {}))


def describe(w: Workload, settings: ExperimentSettings) -> str:
    """What ``w`` measures, in a sentence for the page."""
    if not w.rounds:
        return "nothing (no domain)"
    p = settings.prune.prune_fraction_per_round
    rounds = ", ".join(f"{r} ({100 * (1 - (1 - p) ** r):.1f}%)" for r in w.rounds)
    parts = [f"{display_name(w.domain)}: {', '.join(map(strategy_label, w.strategies))}, "
             f"{len(w.seeds)} seeds"]
    if w.pair and any(r > 0 for r in w.rounds):
        parts.append(f"{pair_label(*w.pair)}: MASKS-RESET and MASKS-RANDOM, the first "
                     f"{len(w.transfer_seeds)} seeds")
    steps = sum(len(j.rounds) for j in w.jobs(settings))
    crossed = "" if w.crossing else " (this profile's pruning does not cross 96%)"
    return f"rounds {rounds} sparsity{crossed}; " + "; ".join(parts) + f" ({2 * steps} trainings)"


def barrier_chart(table: pd.DataFrame, panels: Mapping[str, str], title: str, columns: int = 2,
                  width: int = 260, height: int = 200) -> alt.Chart | alt.FacetChart:
    """Error barrier (points) vs sparsity per strategy: the mean over seeds and its 95%
    t-interval (:func:`lottery.stats.instability.barrier_table`), one panel per task
    (``panels``: strategy → panel), a dashed line at the stability threshold."""
    data = table.dropna(subset=["barrier_pts"])
    if data.empty:
        return alt.Chart(pd.DataFrame({"text": ["no instability measured in this build"]})).mark_text(
            fontSize=14).encode(text="text:N").properties(title=title, width=width, height=40)
    strategies = [k for k in panels if k in set(data["strategy"])]
    offset = {k: 0.02 * (i - (len(strategies) - 1) / 2) for i, k in enumerate(strategies)}
    order = {k: i for i, k in enumerate(strategies)}    # panels in the order of ``panels``: tickets first
    data = (with_labels(data).assign(panel=lambda d: d["strategy"].map(panels),
                                     x=lambda d: nines(d["sparsity"]) + d["strategy"].map(offset))
            .sort_values(["strategy", "round"], key=lambda c: c.map(order) if c.name == "strategy" else c))
    legend = alt.selection_point(fields=[LABEL], bind="legend", name="legend")
    span = (float(data["x"].min()) - 0.2, float(data["x"].max()) + 0.2)   # the measured rounds only
    x = sparsity_axis(data["sparsity"]).scale(domain=[max(0.0, span[0]), span[1]], nice=False)
    base = alt.Chart().encode(x=x,
                              color=_strategy_colour(strategies, title="strategy"),
                              opacity=alt.condition(legend, alt.value(1.0), alt.value(0.15)))
    bars = base.mark_rule(strokeWidth=2).encode(y=alt.Y("low_pts:Q", title="error barrier (points)"),
                                                y2="high_pts:Q")
    tooltip = [alt.Tooltip("panel:N", title="task"), alt.Tooltip(f"{LABEL}:N", title="strategy"),
               alt.Tooltip("round:Q"), alt.Tooltip("sparsity:Q", format=".2%"),
               alt.Tooltip("barrier_pts:Q", title="mean barrier (points)", format=".2f"),
               alt.Tooltip("low_pts:Q", title="95% low", format=".2f"),
               alt.Tooltip("high_pts:Q", title="95% high", format=".2f"), alt.Tooltip("n_seeds:Q", title="seeds")]
    means = base.mark_line(point=True, strokeWidth=2).encode(y="barrier_pts:Q", tooltip=tooltip)
    stable = alt.Chart().mark_rule(color="#999", strokeDash=[4, 3]).encode(y=alt.datum(100 * STABLE_BARRIER))
    layered = alt.layer(bars, means, stable, data=data).properties(width=width, height=height)
    return _configured(_faceted(layered, data, "panel", "task", columns, title, legend))
