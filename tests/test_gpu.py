"""CUDA tests, skipped without a GPU (`benchmarks/gpu_check.sh` runs them on one):
the model on the GPU computes what it computes on the CPU, masks stay exact under
masked training on the GPU, stacked models train as separate ones, and a short ticket
procedure (train, prune, reset, retrain) runs on CUDA. Synthetic data: the GPU machine
needs no data mirror. Also runnable without pytest: ``python tests/test_gpu.py``."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train import SMALL, sparse_mask, splits  # noqa: E402

from lottery.config import TrainSettings  # noqa: E402
from lottery.engine.masks import full_mask, magnitude_prune, nested  # noqa: E402
from lottery.engine.model import init_model  # noqa: E402
from lottery.engine.train import train_masked, train_models  # noqa: E402

try:
    import pytest

    pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
except ImportError:   # run as a script on a machine without pytest
    pytest = None

CUDA = TrainSettings(max_epochs=2, lr=1e-2, device="cuda")


def _no_tf32():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def test_the_model_computes_the_same_logits_on_the_gpu():
    _no_tf32()
    model = init_model(200, SMALL, seed=0).eval()
    tokens = torch.randint(1, 200, (16, 60), generator=torch.Generator().manual_seed(0))
    cpu = model(tokens)
    gpu = model.to("cuda")(tokens.to("cuda")).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4, rtol=1e-4), (cpu - gpu).abs().max()


def test_masks_stay_exact_under_masked_training_on_the_gpu():
    train, val, test = splits()
    model = init_model(200, SMALL, seed=0)
    mask = sparse_mask(model)
    res = train_masked(model, mask, train, val, test, CUDA, 60, seed=0)
    for name, alive in mask.items():
        assert (res.state[name][~alive] == 0).all(), name          # exactly zero, not small
        assert (res.state[name][alive] != 0).any(), name


def test_a_pruning_mask_from_gpu_weights_is_the_cpu_one():
    model = init_model(200, SMALL, seed=0)
    weights = {n: p.detach() for n, p in model.named_parameters()}
    on_gpu = {n: w.to("cuda") for n, w in weights.items()}
    mask = full_mask(model)
    a, b = magnitude_prune(mask, weights, 0.35), magnitude_prune(mask, on_gpu, 0.35)
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_stacked_models_train_like_separate_ones_on_the_gpu():
    _no_tf32()
    train, val, test = splits()
    models = [init_model(200, SMALL, seed=s) for s in (0, 1)]
    masks = [full_mask(m) for m in models]
    alone = [train_masked(init_model(200, SMALL, seed=s), full_mask(models[0]), train, val, test,
                          CUDA, 60, seed=7).test_acc for s in (0, 1)]
    stacked = [r.test_acc for r in train_models(models, masks, train, val, test, CUDA, 60, seed=7)]
    assert max(abs(a - b) for a, b in zip(alone, stacked)) <= 0.02   # float order differs


def test_a_ticket_procedure_runs_on_cuda():
    train, val, test = splits()
    theta0 = init_model(200, SMALL, seed=0).state_dict()
    model = init_model(200, SMALL, seed=0)
    mask = full_mask(model)
    res = train_masked(model, mask, train, val, test, CUDA, 60, seed=0)
    for _ in range(2):                      # prune the trained weights, reset, retrain
        pruned = magnitude_prune(mask, res.state, 0.5)
        assert nested(pruned, mask)
        mask = pruned
        model = init_model(200, SMALL, seed=0)
        model.load_state_dict(theta0)
        res = train_masked(model, mask, train, val, test, replace(CUDA, autocast_dtype="bfloat16"),
                           60, seed=0)
        assert all((res.state[n][~m] == 0).all() for n, m in mask.items())
    assert 0.0 <= res.test_acc <= 1.0


if __name__ == "__main__":
    if not torch.cuda.is_available():
        sys.exit("no GPU")
    failed = 0
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                print(f"PASS {name}")
            except Exception as exc:   # report every test, then fail
                failed += 1
                print(f"FAIL {name}: {type(exc).__name__}: {exc}")
    sys.exit(1 if failed else 0)
