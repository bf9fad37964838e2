"""How a strategy's survivors start and how its next mask is chosen: the functions that
the strategy table's ``init`` and ``mask`` columns name (:mod:`lottery.config.strategies`).
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import torch

from lottery.config.strategies import strategy
from lottery.engine.masks import Mask, magnitude_prune, random_prune
from lottery.engine.model import TextCNN, init_model, reset_parameters


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed that depends only on ``parts`` (stable across runs and machines)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:15], 16)


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
