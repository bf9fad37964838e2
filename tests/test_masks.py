"""Masks: layerwise magnitude pruning, its counts per round, and the random controls."""

import pytest
import torch

from lottery.config import ModelSettings, rounds_to_reach, sparsity_after
from lottery.engine.masks import (full_mask, keep_count, magnitude_prune, mask_counts, nested, overall_sparsity,
                                  random_mask_like, random_prune)
from lottery.engine.model import init_model

SMALL = ModelSettings(embed_dim=16, channels=8, hidden=8)


@pytest.fixture
def model():
    return init_model(300, SMALL, seed=0)


def weights(model):
    return {n: p.detach() for n, p in model.named_parameters()}


def test_full_mask_covers_weights_not_biases_and_not_the_padding_row(model):
    mask = full_mask(model)
    assert set(mask) == {"embedding.weight", "convs.0.weight", "convs.1.weight", "convs.2.weight",
                         "hidden.weight", "out.weight"}
    assert not mask["embedding.weight"][0].any() and mask["embedding.weight"][1:].all()
    assert "hidden.bias" in full_mask(model, prune_biases=True)


def test_sparsity_formula():
    assert sparsity_after(0.35, 0) == 0
    assert sparsity_after(0.35, 20) == pytest.approx(1 - 0.65 ** 20)
    assert rounds_to_reach(0.35, 0.99) == 11 and sparsity_after(0.35, 11) > 0.99 > sparsity_after(0.35, 10)
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="prune_fraction_per_round"):
            sparsity_after(bad, 3)
    with pytest.raises(ValueError, match="rounds"):
        sparsity_after(0.35, -1)


def test_magnitude_pruning_counts_per_layer_and_round(model):
    reference = full_mask(model)
    mask = reference
    expected = {n: int(m.sum()) for n, m in reference.items()}
    for r in range(1, 9):
        mask_before = mask
        mask = magnitude_prune(mask, weights(model), 0.35)
        for n, m in mask.items():
            expected[n] = keep_count(expected[n], 0.35)
            assert int(m.sum()) == expected[n], (n, r)
        assert nested(mask, mask_before)
        # ceil() keeps slightly more than the formula; never more than one weight per layer per round
        assert overall_sparsity(mask, reference) == pytest.approx(sparsity_after(0.35, r), abs=r * len(mask) / 5000)
    counts = mask_counts(mask, reference)
    assert list(counts["alive"]) == [expected[n] for n in mask]


def test_magnitude_pruning_keeps_the_largest_survivors():
    w = {"w": torch.tensor([[0.1, -5.0, 0.3, 2.0, -0.2, 4.0]])}
    alive = {"w": torch.tensor([[True, True, True, True, True, False]])}   # 4.0 is already pruned
    kept = magnitude_prune(alive, w, 0.5)["w"]
    assert kept.tolist() == [[False, True, True, True, False, False]]     # |-5|, |2|, |0.3|


def test_ties_are_broken_deterministically_towards_lower_indices():
    w = {"w": torch.ones(1, 10)}
    kept = magnitude_prune({"w": torch.ones(1, 10, dtype=torch.bool)}, w, 0.35)["w"]
    assert kept.tolist() == [[True] * 7 + [False] * 3]


def test_a_layer_keeps_at_least_one_weight():
    assert keep_count(1, 0.9) == 1 and keep_count(0, 0.5) == 0 and keep_count(10, 0.35) == 7


def test_random_pruning_same_counts_different_weights(model):
    reference = full_mask(model)
    magnitude = magnitude_prune(reference, weights(model), 0.35)
    rand = random_prune(reference, 0.35, torch.Generator().manual_seed(0))
    for n in reference:
        assert int(rand[n].sum()) == int(magnitude[n].sum())
        assert not torch.equal(rand[n], magnitude[n])
    assert not rand["embedding.weight"][0].any()      # never the padding row
    again = random_prune(reference, 0.35, torch.Generator().manual_seed(0))
    assert all(torch.equal(rand[n], again[n]) for n in rand)


def test_random_mask_like_matches_per_layer_counts(model):
    reference = full_mask(model)
    target = magnitude_prune(magnitude_prune(reference, weights(model), 0.5), weights(model), 0.5)
    rand = random_mask_like(target, reference, torch.Generator().manual_seed(1))
    for n in target:
        assert int(rand[n].sum()) == int(target[n].sum())
        assert not (rand[n] & ~reference[n]).any()
