"""The paper's strategies as one table: how survivors start and how the mask is chosen.

This module is data only (no torch); the functions the ``init`` and ``mask`` columns
name live in the engine (:mod:`lottery.engine.starts`).

Every curve of Fig. 3 and Fig. 4 is one row of :data:`STRATEGIES`. The engine
(:mod:`lottery.engine.jobs`), the charts and the chapters read this table instead of
branching on names, so adding a strategy (say, rewinding to iteration k) is one row
plus, if it starts its survivors in a new way, one init function in :data:`INITS`.

Columns:

* ``key``: the engine's name (in run directories and on the command line);
* ``label``: the paper's name, as the book prints it;
* ``procedure``: ``"tickets"`` (prunes its own trajectory in one domain),
  ``"transfer"`` (retrains a source domain's masks in a target domain) or
  ``"reference"`` (a curve made of other runs: the full model, the target's ticket);
* ``init``: how the surviving weights start each round (a key of :data:`INITS`);
* ``mask``: how the round's mask is chosen (a key of :data:`MASKS`, or ``"full"`` /
  ``"source"`` for the full model and transferred masks);
* ``control``: a control that runs only in ``ExperimentSettings.control_domains``.

TICKET-REWIND and MASKS-REWIND (beyond the paper) start their survivors at θ_k, the
weights after k iterations of round 0, instead of θ0.

FULL-MODEL is round 0 of every ticket run (the unpruned network from θ0); TICKET-RESET
prunes the smallest trained weights and resets the survivors to θ0 (Frankle & Carbin);
TICKET-RANDOM prunes the same way but draws the survivors afresh; RANDOM-PRUNING (the
control) keeps a random subset with the same per-layer counts, reset to θ0;
TICKET-TARGET is the target domain's own TICKET-RESET curve; MASKS-RESET and
MASKS-RANDOM retrain the source's TICKET-RESET masks in the target, from θ0 or a fresh
draw.
"""

from __future__ import annotations

from dataclasses import dataclass




@dataclass(frozen=True)
class Strategy:
    key: str
    label: str
    procedure: str
    init: str
    mask: str
    colour: str
    control: bool = False


STRATEGIES: tuple[Strategy, ...] = (
    #        key               label             procedure    init      mask         colour
    Strategy("full",           "FULL-MODEL",     "reference", "theta0", "full",      "#555555"),
    Strategy("reset",          "TICKET-RESET",   "tickets",   "theta0", "magnitude", "#1f77b4"),
    Strategy("random",         "TICKET-RANDOM",  "tickets",   "fresh",  "magnitude", "#ff7f0e"),
    Strategy("random_pruning", "RANDOM-PRUNING", "tickets",   "theta0", "random",    "#2ca02c", control=True),
    Strategy("target",         "TICKET-TARGET",  "reference", "theta0", "magnitude", "#1f77b4"),
    Strategy("masks_reset",    "MASKS-RESET",    "transfer",  "theta0", "source",    "#9467bd"),
    Strategy("masks_random",   "MASKS-RANDOM",   "transfer",  "fresh",  "source",    "#d62728"),
    # Late resetting (Frankle et al. 2019): survivors back to θ_k, the weights after k
    # iterations of round 0 (prune.rewind_iterations). Like the controls it runs only in
    # control_domains (cost); the paper profile has none, so it runs everywhere there.
    Strategy("rewind",         "TICKET-REWIND",  "tickets",   "rewind", "magnitude", "#8c564b", control=True),
    # The source's TICKET-RESET masks (as MASKS-RESET) with survivors at the source's θ_k.
    Strategy("masks_rewind",   "MASKS-REWIND",   "transfer",  "rewind", "source",    "#e377c2"),
)

#: The ticket run whose masks transferred strategies retrain.
SOURCE_STRATEGY = "reset"

_BY_KEY = {s.key: s for s in STRATEGIES}
_BY_LABEL = {s.label: s for s in STRATEGIES}


def strategy(name: str) -> Strategy:
    """A strategy by key (``reset``) or label (``TICKET-RESET``)."""
    found = _BY_KEY.get(name) or _BY_LABEL.get(name)
    if found is None:
        raise ValueError(f"unknown strategy {name!r}; choose from {sorted(_BY_KEY)}")
    return found


#: The federated simulation (:mod:`lottery.federated.protocol`, §7) trains the curves of Fig. 4
#: — no mask (FULL-MODEL), the clients' own ticket (TICKET-TARGET), the server's masks
#: (MASKS-*) — by federated averaging: the rows of these procedures.
GROUPS: dict[str, tuple[str, ...]] = {"federated": ("reference", "transfer")}


def _in(s: Strategy, procedure: str) -> bool:
    return s.procedure in GROUPS.get(procedure, (procedure,))


def keys(procedure: str) -> tuple[str, ...]:
    """The keys of every strategy that ``procedure`` trains, in table order."""
    return tuple(s.key for s in STRATEGIES if _in(s, procedure))


def check(names, procedure: str) -> tuple[str, ...]:
    """Keys for ``names`` (keys or labels); each must belong to ``procedure``."""
    out = []
    for name in names:
        s = _BY_KEY.get(name) or _BY_LABEL.get(name)
        if s is None or not _in(s, procedure):
            raise ValueError(f"unknown {procedure} strategy {name!r}; choose from {list(keys(procedure))}")
        out.append(s.key)
    return tuple(out)


def label(key: str) -> str:
    return strategy(key).label


def colour(name: str) -> str:
    return strategy(name).colour


def needs(keys, state: str) -> bool:
    """Whether any of the strategies ``keys`` starts its survivors from ``state``."""
    return any(strategy(k).init == state for k in keys)
