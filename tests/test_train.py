"""Masked training: pruned weights stay exactly zero, runs are deterministic, early stopping."""

import torch

from lottery.config import ModelSettings, TrainSettings
from lottery.engine.masks import apply_mask, full_mask, magnitude_prune
from lottery.engine.model import init_model
from lottery.engine.train import EncodedSplit, accuracy, bucketed_batches, train_masked

SMALL = ModelSettings(embed_dim=16, channels=8, hidden=8)


def synthetic_split(n, seed, vocab=200, max_len=60):
    """Reviews whose label is whether token 7 appears: learnable, so training moves weights."""
    g = torch.Generator().manual_seed(seed)
    ids, labels = [], []
    for _ in range(n):
        length = int(torch.randint(5, max_len, (1,), generator=g))
        seq = torch.randint(8, vocab, (length,), generator=g)
        label = int(torch.rand(1, generator=g) < 0.5)
        if label:
            seq[int(torch.randint(0, length, (1,), generator=g))] = 7
        ids.append(seq)
        labels.append(label)
    return EncodedSplit(ids, torch.tensor(labels))


def splits():
    return synthetic_split(640, 0), synthetic_split(128, 1), synthetic_split(128, 2)


def sparse_mask(model, sparsity_rounds=5):
    mask = full_mask(model)
    for _ in range(sparsity_rounds):                       # 1 - 0.63^5 ≈ 0.90
        mask = magnitude_prune(mask, dict(model.named_parameters()), 0.37)
    return mask


def test_pruned_weights_stay_exactly_zero_for_hundreds_of_steps():
    model = init_model(200, SMALL, seed=0)
    mask = sparse_mask(model)
    alive = sum(int(m.sum()) for m in mask.values())
    total = sum(m.numel() for m in mask.values())
    assert 1 - alive / total > 0.89
    params = dict(model.named_parameters())
    nonzeros, steps = [], []

    def check(m):
        for name, keep in mask.items():
            assert torch.all(params[name][~keep] == 0.0), name
        nonzeros.append(sum(int((params[n] != 0).sum()) for n in mask))
        steps.append(1)

    train, val, test = splits()
    train_masked(model, mask, train, val, test, TrainSettings(max_epochs=15, lr=1e-2), 60, seed=0, on_step=check)
    assert len(steps) >= 300
    assert all(b <= a for a, b in zip(nonzeros, nonzeros[1:]))
    assert nonzeros[-1] <= alive


def test_same_seed_gives_bitwise_identical_results():
    train, val, test = splits()
    results = []
    for seed in (3, 3, 4):
        model = init_model(200, SMALL, seed=0)
        results.append(train_masked(model, full_mask(model), train, val, test,
                                    TrainSettings(max_epochs=3), 60, seed=seed))
    a, b, c = results
    assert a.history == b.history and a.test_acc == b.test_acc
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert any(not torch.equal(a.state[k], c.state[k]) for k in a.state)


def test_training_learns_and_restores_the_best_epoch():
    train, val, test = splits()
    model = init_model(200, SMALL, seed=0)
    res = train_masked(model, full_mask(model), train, val, test, TrainSettings(max_epochs=8, lr=1e-2), 60, seed=0)
    assert res.val_acc == max(res.history) and res.history[res.best_epoch - 1] == res.val_acc
    assert accuracy(model, val, 60) == res.val_acc                 # the model holds the best weights
    assert res.test_acc > 0.7                                      # the task is learnable


def test_patience_stops_early():
    train, val, test = splits()
    model = init_model(200, SMALL, seed=0)
    res = train_masked(model, full_mask(model), train, val, test,
                       TrainSettings(max_epochs=15, lr=1e-6, patience=1), 60, seed=0)
    assert res.epochs_run < 15
    assert res.epochs_run - res.best_epoch == 1


def test_bucketed_batches_are_a_permutation_of_similar_lengths():
    lengths = torch.randint(1, 500, (1000,), generator=torch.Generator().manual_seed(0))
    batches = bucketed_batches(lengths, 32, torch.Generator().manual_seed(0), chunk_batches=10)
    flat = torch.cat(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = sum(int(lengths[b].max() - lengths[b].min()) for b in batches) / len(batches)
    assert spread < 100                                             # random batches: ~450


def test_the_padding_row_stays_zero_and_unpruned_weights_move():
    """The padding token's embedding is a constant zero: not trainable, not counted."""
    model = init_model(200, SMALL, seed=0)
    mask = full_mask(model)
    assert not mask["embedding.weight"][model.pad_id].any()
    start = model.embedding.weight.detach().clone()
    pad_rows = []
    train, val, test = splits()
    res = train_masked(model, mask, train, val, test, TrainSettings(max_epochs=2, lr=1e-2), 60, seed=0,
                       on_step=lambda m: pad_rows.append(m.embedding.weight[m.pad_id].abs().max().item()))
    assert max(pad_rows) == 0.0 and torch.all(res.state["embedding.weight"][model.pad_id] == 0)
    assert not torch.equal(res.state["embedding.weight"][1:], start[1:])


def test_the_mask_is_applied_before_the_first_step():
    """A model handed over with pruned weights still non-zero trains as the masked model."""
    train, val, test = splits()
    a, b = init_model(200, SMALL, seed=0), init_model(200, SMALL, seed=0)
    mask = sparse_mask(init_model(200, SMALL, seed=0))
    apply_mask(b, mask)
    ts = TrainSettings(max_epochs=1, lr=1e-2)
    ra, rb = (train_masked(m, mask, train, val, test, ts, 60, seed=1) for m in (a, b))
    assert all(torch.equal(ra.state[k], rb.state[k]) for k in ra.state)
