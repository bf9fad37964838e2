"""Sparsity arithmetic of iterative pruning: p (the prune fraction per round) and r
rounds give a sparsity of 1-(1-p)^r."""

from __future__ import annotations

import math

def sparsity_after(prune_fraction_per_round: float, rounds: int) -> float:
    """Fraction of prunable weights that are zero after ``rounds`` rounds: 1-(1-p)^r."""
    check_prune_fraction(prune_fraction_per_round)
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    return 1.0 - (1.0 - prune_fraction_per_round) ** rounds


def rounds_to_reach(prune_fraction_per_round: float, sparsity: float) -> int:
    """Smallest number of rounds whose sparsity is at least ``sparsity``."""
    check_prune_fraction(prune_fraction_per_round)
    return math.ceil(math.log(1.0 - sparsity) / math.log(1.0 - prune_fraction_per_round) - 1e-12)


def check_prune_fraction(p: float) -> None:
    if not (0.0 < p < 1.0):
        raise ValueError(f"prune_fraction_per_round must be in (0, 1), got {p}")
