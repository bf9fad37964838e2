"""What training costs: the text CNN's FLOPs, the relative work of a network, a probe
of this machine's training speed, and the CPU's name for speed figures."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import torch

from lottery import config, data
from lottery.config import ExperimentSettings
from lottery.engine import masks, model, train


# ---------------------------------------------------------------------------- a whole profile
#: Subword pieces per whitespace word, measured on the course profile's 6,000 training
#: reviews with its 8K vocabulary (175.7 pieces vs 149.2 words per review).
PIECES_PER_WORD = 1.18


#: Dense peak FLOP/s of named GPUs (NVIDIA data sheets; SXM parts, no sparsity).
GPU_PEAK = {"H100": {"fp32": 67e12, "tf32": 495e12, "bf16": 989e12},
            "H200": {"fp32": 67e12, "tf32": 495e12, "bf16": 989e12},
            "A100": {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12}}


#: The share of a GPU's TF32 peak this text CNN is assumed to reach: a range, not a
#: measurement (``benchmarks/gpu_check.sh`` measures it on a card). Batch-32 training
#: steps of a model this small are bound by kernel launches and memory traffic, not by
#: arithmetic, so the low end (2-5%) is the likelier one.
GPU_EFFICIENCY_RANGE = (0.02, 0.10)


def tokens_per_review(settings: ExperimentSettings) -> float:
    """Mean training-review length in subword pieces, clipped at ``max_len``: measured
    in words on the profile's reviews (or, when the dataset cannot supply the profile's
    split sizes, on the course profile's reviews of the same domains) × PIECES_PER_WORD."""
    warnings.filterwarnings("ignore", category=data.DataWarning)   # reported by the chapters
    for source in (settings.data, config.get_profile("course").data):
        try:
            words = np.concatenate([
                [len(t.split()) for t in data.load_splits(source, d).train["text"]]
                for d in settings.data.domains if d in source.domains or source is settings.data])
        except Exception:   # not enough reviews for these split sizes, or another dataset
            continue
        if len(words):
            return float(np.minimum(words * PIECES_PER_WORD, settings.vocab.max_len).mean())
    return float(settings.vocab.max_len)


def forward_flops(m: Any, tokens: float) -> float:
    """Dense forward FLOPs of the text CNN (model settings ``m``) on one review of
    ``tokens`` pieces: the convolutions (2 per multiply-add) and the MLP; a training
    step costs about 3 × this (forward + backward)."""
    conv = 2 * m.embed_dim * m.channels * sum(m.kernel_heights) * tokens
    return conv + 2 * (len(m.kernel_heights) * m.channels * m.hidden + m.hidden * m.n_classes)


def flops_per_network(s: ExperimentSettings, tokens: float) -> float:
    """Training FLOPs of one network (dense: the engine multiplies by masks, it does not
    skip pruned weights): ``max_epochs`` epochs of forward + backward (≈ 3 × forward) on
    the training reviews, a validation pass per epoch and one test pass."""
    forward = forward_flops(s.model, tokens)
    d = s.data
    return s.train.max_epochs * (3 * d.n_train + d.n_val) * forward + d.n_test * forward


def federated_flops(s: ExperimentSettings, tokens: float) -> float:
    """Training FLOPs of one federated training (dense): ``comm_rounds × local_epochs``
    epochs of forward + backward over the clients' shards (together the training
    reviews), and the referee's validation and test passes at round 0 and after every
    communication round."""
    forward = forward_flops(s.model, tokens)
    f, d = s.federated, s.data
    return (f.comm_rounds * f.local_epochs * 3 * d.n_train
            + (f.comm_rounds + 1) * (d.n_val + d.n_test)) * forward


def work_per_network(s: ExperimentSettings) -> float:
    """Relative training work of one network (examples × epochs × length × conv size)."""
    conv = s.model.embed_dim * s.model.channels * sum(s.model.kernel_heights)
    return float(s.data.n_train * s.train.max_epochs * s.vocab.max_len * conv)


def probe_flops_per_second(s: ExperimentSettings, tokens: float, seconds: float = 2.0) -> float:
    """Training FLOP/s of one single-threaded worker on this machine, measured on the
    profile's model (random token ids, the real training step) for ``seconds`` after a
    two-step warm-up."""
    length = max(8, int(round(tokens)))
    with train.intra_op_threads(1):
        net = model.init_model(s.vocab.vocab_size, s.model, seed=0)
        opt = train.make_optimizer(net, s.train)
        fm = train.float_masks(net, [masks.full_mask(net)])
        gen = torch.Generator().manual_seed(0)
        x = torch.randint(1, s.vocab.vocab_size, (s.train.batch_size, length), generator=gen)
        y = torch.randint(0, s.model.n_classes, (s.train.batch_size,), generator=gen)
        net.train()
        for _ in range(2):   # warm-up
            train.masked_step(net, opt, fm, x, y)
        start, batches = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            train.masked_step(net, opt, fm, x, y)
            batches += 1
        per_batch_s = (time.perf_counter() - start) / batches
    return 3 * forward_flops(s.model, length) * s.train.batch_size / per_batch_s
