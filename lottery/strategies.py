"""The paper's strategies as one table: how survivors start and how the mask is chosen.

Every curve of Fig. 3 and Fig. 4 is one row of :data:`STRATEGIES`. The engine
(:mod:`lottery.procedures`), the charts and the chapters read this table instead of
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

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

import torch

from lottery.masks import Mask, magnitude_prune, random_prune
from lottery.model import TextCNN, init_model, reset_parameters


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed that depends only on ``parts`` (stable across runs and machines)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:15], 16)


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


#: The federated simulation (:mod:`lottery.federated`, §7) trains the curves of Fig. 4
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


# ------------------------------------------------------------------ how survivors start

# Each init reads the start states it needs from ``starts``: "theta0" (θ0 of this seed,
# always there) and "rewind" (θ_k, computed by the engine only for runs with a strategy
# whose init is "rewind": see :func:`needs`).

def _from_theta0(model: TextCNN, starts: dict[str, Any], seed: int, key: str, r: int) -> None:
    """Reset-type: the survivors take their values in θ0 (the same θ0 of this seed)."""
    model.load_state_dict(starts["theta0"])


def _fresh_draw(model: TextCNN, starts: dict[str, Any], seed: int, key: str, r: int) -> None:
    """Random-type: a fresh draw from the §4.3.1 distributions, seeded by (seed, strategy, round)."""
    reset_parameters(model, torch.Generator().manual_seed(derive_seed(seed, key, r)))


def _from_rewind(model: TextCNN, starts: dict[str, Any], seed: int, key: str, r: int) -> None:
    """Rewind-type: the survivors take their values at iteration k of round 0 (θ_k)."""
    model.load_state_dict(starts["rewind"])


INITS: dict[str, Callable[..., None]] = {"theta0": _from_theta0, "fresh": _fresh_draw,
                                         "rewind": _from_rewind}


def needs(keys, state: str) -> bool:
    """Whether any of the strategies ``keys`` starts its survivors from ``state``."""
    return any(strategy(k).init == state for k in keys)


def initial_model(key: str, starts: dict[str, Any], vocab_size: int, pad_id: int,
                  model_settings, seed: int, r: int) -> TextCNN:
    """The network round ``r`` of strategy ``key`` starts from, before its mask is applied."""
    model = init_model(vocab_size, model_settings, seed, pad_id)
    INITS[strategy(key).init](model, starts, seed, key, r)
    return model


# ------------------------------------------------------------------ how the mask is chosen

def _magnitude(prev_mask: Mask, prev_weights: dict[str, torch.Tensor], p: float, seed: int,
               key: str, r: int) -> Mask:
    return magnitude_prune(prev_mask, prev_weights, p)


def _random(prev_mask: Mask, prev_weights: dict[str, torch.Tensor], p: float, seed: int,
            key: str, r: int) -> Mask:
    return random_prune(prev_mask, p, torch.Generator().manual_seed(derive_seed(seed, key, "mask", r)))


MASKS: dict[str, Callable[..., Mask]] = {"magnitude": _magnitude, "random": _random}


def next_mask(key: str, prev_mask: Mask, prev_weights: dict[str, torch.Tensor], p: float,
              seed: int, r: int) -> Mask:
    """Round ``r``'s mask of a ticket strategy from its round ``r-1`` mask and trained weights."""
    return MASKS[strategy(key).mask](prev_mask, prev_weights, p, seed, key, r)
