"""Masks and layerwise magnitude pruning (paper §4.3.2), plus the random-pruning control.

A mask is a plain ``{parameter name: bool tensor}`` dict (True = weight alive), stored
separately from weights. Prunable parameters are the embedding, conv and linear
*weights* (biases only with ``prune_biases``). The padding row of the embedding is a
constant zero, not a trainable weight: it is dead from the start and not counted, so
"sparsity" is the fraction of trainable prunable weights that are pruned.
"""

from __future__ import annotations

import math
import pandas as pd
import torch
from torch import nn

Mask = dict[str, torch.Tensor]


def prunable_names(model: nn.Module, prune_biases: bool = False) -> list[str]:
    """Names of the parameters that pruning acts on, in layer order (embedding = layer 0)."""
    return [n for n, p in model.named_parameters() if n.endswith("weight") or (prune_biases and n.endswith("bias"))]


def full_mask(model: nn.Module, prune_biases: bool = False) -> Mask:
    """Everything alive, except the embedding's padding row (a constant zero)."""
    mask = {n: torch.ones_like(p, dtype=torch.bool) for n, p in model.named_parameters()
            if n in set(prunable_names(model, prune_biases))}
    pad_id = getattr(model, "pad_id", None)
    if pad_id is not None and "embedding.weight" in mask:
        mask["embedding.weight"][pad_id] = False
    return mask


def keep_count(alive: int, prune_fraction: float) -> int:
    """Weights a layer keeps after one round: ceil((1-p)·alive), at least one (p is
    checked once, with the settings: :func:`lottery.experiment.validate.resolve`)."""
    if alive == 0:
        return 0
    return max(1, math.ceil((1.0 - prune_fraction) * alive - 1e-9))


def _keep_top(scores: torch.Tensor, alive: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of the ``k`` alive entries with the largest scores.

    Ties go to the lower flat index (a stable sort), so pruning is deterministic.
    """
    flat = torch.where(alive.flatten(), scores.flatten().double(), torch.tensor(-1.0, dtype=torch.float64))
    order = torch.sort(flat, descending=True, stable=True).indices
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    keep[order[:k]] = True
    return keep.view_as(alive)


def magnitude_prune(mask: Mask, weights: dict[str, torch.Tensor], prune_fraction: float) -> Mask:
    """One round of the ℓ0 projection (Eq. 5), layer by layer.

    Each layer keeps the ceil((1-p)·alive) surviving weights of largest magnitude in
    ``weights`` (the trained weights of the previous round); pruned weights stay pruned.
    """
    new = {}
    for name, alive in mask.items():
        k = keep_count(int(alive.sum()), prune_fraction)
        new[name] = _keep_top(weights[name].detach().abs().cpu(), alive, k)
    return new


def random_prune(mask: Mask, prune_fraction: float, generator: torch.Generator) -> Mask:
    """Random-pruning control: the same per-layer keep counts as :func:`magnitude_prune`,
    but the survivors are a uniformly random subset of the currently alive weights."""
    new = {}
    for name, alive in mask.items():
        k = keep_count(int(alive.sum()), prune_fraction)
        scores = torch.rand(alive.shape, generator=generator)
        new[name] = _keep_top(scores, alive, k)
    return new


def random_mask_like(mask: Mask, reference: Mask, generator: torch.Generator) -> Mask:
    """A random mask with exactly the same number of alive weights per layer as ``mask``,
    drawn uniformly among the weights alive in ``reference`` (normally the full mask)."""
    return {n: _keep_top(torch.rand(m.shape, generator=generator), reference[n], int(m.sum()))
            for n, m in mask.items()}


@torch.no_grad()
def apply_mask(model: nn.Module, mask: Mask) -> None:
    """Zero every pruned weight in place."""
    params = dict(model.named_parameters())
    for name, m in mask.items():
        params[name].mul_(m.to(params[name].device, params[name].dtype))


def mask_counts(mask: Mask, reference: Mask) -> pd.DataFrame:
    """Per-layer alive/total counts and sparsity relative to ``reference`` (a full mask)."""
    rows = []
    for name, m in mask.items():
        total = int(reference[name].sum())
        alive = int(m.sum())
        rows.append({"layer": name, "alive": alive, "total": total, "sparsity": 1 - alive / total})
    return pd.DataFrame(rows)


def overall_sparsity(mask: Mask, reference: Mask) -> float:
    """Fraction of the trainable prunable weights that ``mask`` removes."""
    alive = sum(int(m.sum()) for m in mask.values())
    total = sum(int(reference[n].sum()) for n in mask)
    return 1.0 - alive / total


def nested(inner: Mask, outer: Mask) -> bool:
    """True when every weight alive in ``inner`` is alive in ``outer``."""
    return all(bool((inner[n] & ~outer[n]).sum() == 0) for n in inner)
