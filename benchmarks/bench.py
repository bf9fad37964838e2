"""Ticket engine vs the naive way, in one process, on the same job (issue 5).

    python benchmarks/bench.py            # full: books, paper width, 3 seeds, 1 round, 2 epochs
    python benchmarks/bench.py --quick    # < 2 min: 128 reviews, 1 seed, 1 round, 1 epoch
    python benchmarks/bench.py --tiny     # seconds: smoke-test sizes (tests/test_bench.py)

Job: one domain (FDU-MTL books via ``lottery.engine.jobs.domain_data``), paper-width model
(ModelSettings() = 417/127/117, max_len 500), FULL-MODEL + TICKET-RESET + TICKET-RANDOM
for R rounds, fixed epochs, no early stopping (patience None), so both paths do the same
number of training and evaluation examples with the same seeds and inits.

* naive: one process with torch's default threads, every batch padded to max_len, random
  batches, masks via ``torch.nn.utils.prune.custom_from_mask``, default Adam, unsorted
  evaluation batches, one model at a time;
* engine: ``lottery.engine.runner.run_tickets`` (length bucketing, exact dynamic padding, mask
  multiply after the step, fused Adam, sorted large-batch eval, single-threaded worker
  processes), writing into a throw-away run store.

Useful FLOPs count only real (non-padding) token windows: for a review of n tokens,
MACs(n) = Σ_h C·d·h·max(n-h+1, 0) + 3C·H + H·K (conv + MLP); a training example costs
6·MACs(n) (2 per MAC, ×3 for forward + backward), an evaluated example 2·MACs(n). That is
dense-equivalent work: the engine's sparse convolution backward (one window per filter)
skips most of it, so the engine's useful rate can pass the peak. Its *executed* FLOPs
count a training example as 2·MACs(n) + 2·(2·Σ_h C·d·h + 2·(3C·H + H·K)).
The matmul peak is a 2048² float32 ``torch.mm`` measured in this run.

Results: a table on stdout and JSON in ``benchmarks/results/`` (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import multiprocessing as mp

import torch
import torch.nn.functional as F
from torch.nn.utils import prune

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lottery import config
from lottery.engine import jobs as procedures, runner
from lottery.engine import starts  # noqa: E402
from lottery.config import DataSettings, ExperimentSettings, ModelSettings, PruneSettings, TrainSettings, VocabSettings  # noqa: E402
from lottery.engine.masks import full_mask, magnitude_prune  # noqa: E402
from lottery.engine.model import TextCNN, dropout_noise, init_model  # noqa: E402
from lottery.engine.store import RunStore  # noqa: E402
from lottery.engine.train import accuracy, bucketed_batches, collate, make_optimizer, masked_step, train_masked  # noqa: E402

DOMAIN = "books"
STRATEGIES = ("reset", "random")


def job_settings(mode: str) -> ExperimentSettings:
    if mode == "tiny":
        return ExperimentSettings(
            data=DataSettings(domains=(DOMAIN,), n_train=64, n_val=32, n_test=32),
            vocab=VocabSettings(vocab_size=500),
            model=ModelSettings(embed_dim=16, channels=8, hidden=8),
            train=TrainSettings(max_epochs=1, patience=None),
            prune=PruneSettings(rounds=1), seeds=(0,), strategies=STRATEGIES)
    if mode == "quick":
        return ExperimentSettings(
            data=DataSettings(domains=(DOMAIN,), n_train=128, n_val=64, n_test=64),
            vocab=VocabSettings(vocab_size=2000),
            train=TrainSettings(max_epochs=1, patience=None),
            prune=PruneSettings(rounds=1), seeds=(0,), strategies=STRATEGIES)
    return ExperimentSettings(
        data=DataSettings(n_train=1200, n_val=300, n_test=400),   # FDU-MTL has ~1,000 per class
        train=TrainSettings(max_epochs=2, patience=None),
        prune=PruneSettings(rounds=1), seeds=(0, 1, 2), strategies=STRATEGIES)


# ------------------------------------------------------------------ machine and peak

#: The CPU flags a speed figure depends on (reported beside every number).
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def machine() -> dict:
    """The CPU's name, family/model and the flags of :data:`SPEED_FLAGS` (Linux's
    /proc/cpuinfo; "unknown" elsewhere), cores, torch and Python versions."""
    info: dict[str, str] = {}
    try:
        for line in open("/proc/cpuinfo"):
            if not line.strip():
                break                                        # the first processor is enough
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    return {"cpu": info.get("model name", "unknown"), "cpu_family": info.get("cpu family", "unknown"),
            "cpu_model": info.get("model", "unknown"), "flags": [f for f in SPEED_FLAGS if f in flags],
            "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}


def describe(mc: dict) -> str:
    """One line naming the machine of a speed figure: CPU, family/model, flags, cores."""
    return (f"{mc['cpu']} (family {mc.get('cpu_family', '?')} model {mc.get('cpu_model', '?')}; "
            f"{' '.join(mc.get('flags', [])) or 'no listed flags'}), {mc['cores']} cores, torch {mc['torch']}")


def matmul_peak(threads: int, n: int = 2048, reps: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of an n×n matmul in ``dtype`` with ``threads`` threads (best of ``reps``)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    torch.set_num_threads(old)
    return 2 * n ** 3 / best / 1e9


def _peak_worker(_):
    return matmul_peak(1)


def peak_two_processes() -> float:
    """Sum of two single-threaded matmul peaks measured at the same time (engine layout)."""
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        return sum(pool.map(_peak_worker, range(2)))


# ------------------------------------------------------------------ bf16

def bf16_capability() -> dict:
    """Which bf16 hardware this machine has (CPU flags from /proc/cpuinfo, CUDA)."""
    flags: set[str] = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    cuda = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    cpu = {"avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags}
    return {**cpu, "cuda_bf16": cuda, "has_bf16_hardware": cuda or any(cpu.values())}


def matmul_peak_bf16(threads: int, n: int = 2048, reps: int = 5) -> float:
    """bfloat16 GFLOP/s of an n×n matmul with ``threads`` threads (best of ``reps``)."""
    return matmul_peak(threads, n, reps, torch.bfloat16)


def paired_effect(fp32_rows: list[dict], bf16_rows: list[dict]) -> dict:
    """bf16 − fp32 test accuracy over networks paired by (seed, strategy, round)."""
    key = lambda r: (r["seed"], r["strategy"], r["round"])  # noqa: E731
    a = {key(r): r["test_acc"] for r in fp32_rows}
    diffs = [r["test_acc"] - a[key(r)] for r in bf16_rows if key(r) in a]
    n = len(diffs)
    mean = sum(diffs) / n if n else float("nan")
    sd = (sum((d - mean) ** 2 for d in diffs) / (n - 1)) ** 0.5 if n > 1 else float("nan")
    return {"n_networks": n, "mean_diff_pts": 100 * mean, "sd_diff_pts": 100 * sd}


# ------------------------------------------------------------------ work accounting

def macs(n: int, m: ModelSettings) -> int:
    conv = sum(m.channels * m.embed_dim * h * max(n - h + 1, 0) for h in m.kernel_heights)
    pooled = m.channels * len(m.kernel_heights)
    return conv + pooled * m.hidden + m.hidden * m.n_classes


def sparse_backward_macs(m: ModelSettings) -> int:
    """MACs of one training example's backward on the engine's CPU path: the 1-max
    pooled convolutions send their gradient through one window per filter (weight and
    input gradient: d·h each), plus the MLP's two gradients per layer."""
    conv = sum(2 * m.channels * m.embed_dim * h for h in m.kernel_heights)
    pooled = m.channels * len(m.kernel_heights)
    return conv + 2 * (pooled * m.hidden + m.hidden * m.n_classes)


def job_work(settings: ExperimentSettings, splits) -> dict:
    """Useful FLOPs (dense-equivalent: what a full convolution backward does) and the
    FLOPs the engine executes (its sparse backward), both counting real tokens only."""
    _, train, val, test = splits
    m, e = settings.model, settings.train.max_epochs
    lens = {k: [len(t) for t in s.ids] for k, s in (("train", train), ("val", val), ("test", test))}
    evaluated = e * sum(2 * macs(n, m) for n in lens["val"]) + sum(2 * macs(n, m) for n in lens["test"])
    per_run_flops = e * sum(6 * macs(n, m) for n in lens["train"]) + evaluated
    per_run_executed = e * sum(2 * macs(n, m) + 2 * sparse_backward_macs(m) for n in lens["train"]) + evaluated
    per_run_examples = e * (len(train) + len(val)) + len(test)
    trainings = len(settings.seeds) * (1 + settings.prune.rounds * len(settings.strategies))
    return {"trainings": trainings, "examples": trainings * per_run_examples,
            "useful_flops": trainings * per_run_flops, "engine_executed_flops": trainings * per_run_executed}


# ------------------------------------------------------------------ the naive way

PRUNABLE = ("embedding", "convs.0", "convs.1", "convs.2", "hidden", "out")


def _module(model, dotted):
    mod = model
    for part in dotted.split("."):
        mod = mod[int(part)] if part.isdigit() else getattr(mod, part)
    return mod


def pad_all(split, max_len: int, pad_id: int) -> torch.Tensor:
    tokens = torch.full((len(split), max_len), pad_id, dtype=torch.long)
    for i, s in enumerate(split.ids):
        tokens[i, :len(s)] = s
    return tokens


@torch.no_grad()
def naive_accuracy(model, tokens, labels, batch_size) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):          # in data order, padded to max_len
        correct += int((model(tokens[start:start + batch_size]).argmax(1) == labels[start:start + batch_size]).sum())
    return correct / len(labels)


def kim_forward(self, tokens):
    """The forward pass a typical reproduction writes (and this engine used before the
    speed issue): ``F.dropout``, ReLU before max-over-time with ``amax``."""
    x = F.dropout(self.embedding(tokens), self.settings.embed_dropout, self.training)
    x = x.transpose(1, 2).contiguous()
    pooled = [F.relu(conv(x)).amax(dim=2) for conv in self.convs]
    return self.out(F.relu(self.hidden(torch.cat(pooled, dim=1))))


def forward_variant(conv2d: bool, relu_after: bool, max_indices: bool, rand_dropout: bool):
    """The engine's forward-pass levers one at a time (for the per-lever table)."""
    def forward(self, tokens):
        x = self.embedding(tokens)
        if rand_dropout and self.training:
            x = x * dropout_noise(x.shape, self.settings.embed_dropout, x.device, x.dtype)
        else:
            x = F.dropout(x, self.settings.embed_dropout, self.training)
        if conv2d:      # (B, d, 1, L) channels-last view of the embedding: oneDNN brgemm conv
            x = x.transpose(1, 2).unsqueeze(2)
            ys = [F.conv2d(x, c.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last),
                           c.bias).squeeze(2) for c in self.convs]
        else:
            x = x.transpose(1, 2).contiguous()
            ys = [c(x) for c in self.convs]
        pool = (lambda y: y.max(dim=2).values) if max_indices else (lambda y: y.amax(dim=2))
        h = (F.relu(torch.cat([pool(y) for y in ys], 1)) if relu_after
             else torch.cat([pool(F.relu(y)) for y in ys], 1))
        return self.out(F.relu(self.hidden(h)))
    return forward


def naive_train(model, mask, padded, settings: TrainSettings, seed: int):
    """A typical reproduction: prune hooks, default Adam, fixed-length random batches."""
    model.forward = kim_forward.__get__(model, TextCNN)
    (xtr, ytr), (xva, yva), (xte, yte) = padded
    for name in mask:
        module_name = name.rsplit(".", 1)[0]
        prune.custom_from_mask(_module(model, module_name), "weight", mask[name])
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    best, best_state = -1.0, None
    for _ in range(settings.max_epochs):
        model.train()
        for idx in torch.randperm(len(ytr), generator=g).split(settings.batch_size):
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = naive_accuracy(model, xva, yva, settings.eval_batch_size)
        if acc > best:
            best, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    test = naive_accuracy(model, xte, yte, settings.eval_batch_size)
    for name in mask:
        prune.remove(_module(model, name.rsplit(".", 1)[0]), "weight")
    return best, test, {k: v.detach().clone() for k, v in model.state_dict().items()}


def run_naive(settings: ExperimentSettings, splits) -> list[dict]:
    vocab, train, val, test = splits
    max_len = settings.vocab.max_len
    padded = [(pad_all(s, max_len, vocab.pad_id), s.labels) for s in (train, val, test)]
    rows = []
    for seed in settings.seeds:
        theta0 = init_model(vocab.size, settings.model, seed, vocab.pad_id).state_dict()
        reference = full_mask(init_model(vocab.size, settings.model, seed, vocab.pad_id))
        model = starts.initial_model("full", {"theta0": theta0}, vocab.size, vocab.pad_id, settings.model, seed, 0)
        val0, test0, w0 = naive_train(model, reference, padded, settings.train, starts.derive_seed(seed, "round", 0))
        rows.append({"seed": seed, "strategy": "full", "round": 0, "val_acc": val0, "test_acc": test0})
        for strategy in settings.strategies:
            prev_mask, prev_w = reference, w0
            for r in range(1, settings.prune.rounds + 1):
                mask = magnitude_prune(prev_mask, prev_w, settings.prune.prune_fraction_per_round)
                model = starts.initial_model(strategy, {"theta0": theta0}, vocab.size, vocab.pad_id, settings.model, seed, r)
                v, t, w = naive_train(model, mask, padded, settings.train, starts.derive_seed(seed, "round", r))
                rows.append({"seed": seed, "strategy": strategy, "round": r,
                             "val_acc": v, "test_acc": t})
                prev_mask, prev_w = mask, w
    return rows


# ------------------------------------------------------------------ exactness checks

def exactness(settings: ExperimentSettings, splits, n_train: int) -> dict:
    """Where the maths is the same, both ways must give the same numbers.

    1. The same weights evaluated both ways (max_len padding, data order vs exact dynamic
       padding, sorted large batches): identical accuracy, logits to float tolerance.
    2. A controlled training run (dropout off, identical batch order, same seed): naive
       (padding to max_len, prune hooks, default Adam) vs engine (``train_masked``).
    """
    vocab, train, val, test = splits
    max_len = settings.vocab.max_len
    torch.set_num_threads(1)
    model = init_model(vocab.size, settings.model, 0, vocab.pad_id)
    mask = magnitude_prune(full_mask(model), dict(model.named_parameters()), 0.5)
    ts = replace(settings.train, max_epochs=1)
    sub = type(train)(train.ids[:n_train], train.labels[:n_train])
    train_masked(model, mask, sub, val, test, ts, max_len, seed=1)
    xva = pad_all(val, max_len, vocab.pad_id)
    naive_acc = naive_accuracy(model, xva, val.labels, 256)
    engine_acc = accuracy(model, val, max_len)
    with torch.no_grad():
        model.eval()
        full = model(xva)
        order = torch.sort(val.lengths, stable=True).indices
        dyn = torch.empty_like(full)
        for idx in order.split(256):
            tok, _ = collate(val, idx, max_len, settings.model, vocab.pad_id)
            dyn[idx] = model(tok)
    out = {"eval_same_weights": {"naive_acc": naive_acc, "engine_acc": engine_acc,
                                 "max_abs_logit_diff": float((full - dyn).abs().max()),
                                 "equal": naive_acc == engine_acc}}

    # Controlled training: no dropout, the engine's batch order for both.
    ms = replace(settings.model, embed_dropout=0.0)
    base = init_model(vocab.size, ms, 0, vocab.pad_id)
    mask = magnitude_prune(full_mask(base), dict(base.named_parameters()), 0.5)
    a = init_model(vocab.size, ms, 0, vocab.pad_id)
    res = train_masked(a, mask, sub, val, test, ts, max_len, seed=3)
    b = init_model(vocab.size, ms, 0, vocab.pad_id)
    b.forward = kim_forward.__get__(b, TextCNN)
    for name in mask:
        prune.custom_from_mask(_module(b, name.rsplit(".", 1)[0]), "weight", mask[name])
    opt = torch.optim.Adam(b.parameters(), lr=ts.lr, weight_decay=ts.weight_decay)
    xtr = pad_all(sub, max_len, vocab.pad_id)
    b.train()
    for idx in bucketed_batches(sub.lengths, ts.batch_size, torch.Generator().manual_seed(3)):
        loss = F.cross_entropy(b(xtr[idx]), sub.labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name in mask:
        prune.remove(_module(b, name.rsplit(".", 1)[0]), "weight")
    sa, sb = res.state, b.state_dict()
    naive_val = naive_accuracy(b, xva, val.labels, 256)
    out["controlled_training"] = {"naive_val_acc": naive_val, "engine_val_acc": res.val_acc,
                                  "max_abs_weight_diff": max(float((sa[k] - sb[k]).abs().max()) for k in sa),
                                  "equal_acc": naive_val == res.val_acc}
    torch.set_num_threads(os.cpu_count() or 1)
    return out


# ------------------------------------------------------------------ levers

def _time(fn, reps: int, warm: int = 1) -> float:
    for _ in range(warm):
        fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def _steps_per_s(model, batches, opt=None, masks=(), reps=1):
    opt = opt or make_optimizer(model, TrainSettings())

    def run():
        for tok, lab in batches:
            masked_step(model, opt, masks, tok, lab)   # the engine's own training step
    return len(batches) * batches[0][0].shape[0] / _time(run, reps)


def _ready(_):
    return os.getpid()


def _two_process_worker(args):
    settings, vocab_size, batches, threads = args
    torch.set_num_threads(threads)
    model = init_model(vocab_size, settings.model, 0)
    return _steps_per_s(model, batches)


def levers(settings: ExperimentSettings, splits, n_batches: int) -> dict:
    vocab, train, val, _ = splits
    max_len, m = settings.vocab.max_len, settings.model
    torch.set_num_threads(1)
    out = {}
    g = torch.Generator().manual_seed(0)
    bucketed = bucketed_batches(train.lengths, 32, g)[:n_batches]
    rand = torch.randperm(len(train), generator=g).split(32)[:n_batches]
    # Padded tokens per epoch (exact) for the three padding schemes.
    ep_rand = torch.randperm(len(train), generator=torch.Generator().manual_seed(1)).split(32)
    ep_buck = bucketed_batches(train.lengths, 32, torch.Generator().manual_seed(1))
    L = train.lengths
    tok_full = len(train) * max_len
    tok_dyn = sum(len(b) * min(max_len, int(L[b].max()) + max(m.kernel_heights)) for b in ep_rand)
    tok_buck = sum(len(b) * min(max_len, int(L[b].max()) + max(m.kernel_heights)) for b in ep_buck)

    def batches(index_list, pad_to=None):
        out_b = []
        for idx in index_list:
            tok, lab = collate(train, idx, max_len, m, vocab.pad_id)
            if pad_to:
                tok = F.pad(tok, (0, pad_to - tok.shape[1]), value=vocab.pad_id)
            out_b.append((tok, lab))
        return out_b

    model = init_model(vocab.size, m, 0, vocab.pad_id)
    b_full, b_dyn, b_buck = batches(rand, max_len), batches(rand), batches(bucketed)
    # per-example speed × tokens ratio gives the epoch-level effect
    r_full = _steps_per_s(model, b_full)
    r_dyn = _steps_per_s(model, b_dyn)
    r_buck = _steps_per_s(model, b_buck)
    out["padding"] = {"tokens_per_epoch": {"max_len": tok_full, "dynamic_unsorted": tok_dyn, "bucketed": tok_buck},
                      "sample_ex_per_s": {"max_len": r_full, "dynamic_unsorted": r_dyn, "bucketed": r_buck},
                      "note": "samples are different batches; tokens_per_epoch is the exact epoch-level ratio"}

    # Optimizers on the bucketed sample.
    opts = {}
    for name, kw in (("for_loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        model = init_model(vocab.size, m, 0, vocab.pad_id)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5, **kw)
        loss = F.cross_entropy(model(b_buck[0][0]), b_buck[0][1])
        loss.backward()
        opts[name] = _time(opt.step, 10, 2) * 1e3
    out["adam_step_ms"] = opts

    # Masks: multiply after the step vs prune hooks (whole training step).
    model = init_model(vocab.size, m, 0, vocab.pad_id)
    mask = magnitude_prune(full_mask(model), dict(model.named_parameters()), 0.5)
    params = dict(model.named_parameters())
    after = _steps_per_s(model, b_buck, masks=[(params[n], mk.float()) for n, mk in mask.items()])
    hooked = init_model(vocab.size, m, 0, vocab.pad_id)
    for name in mask:
        prune.custom_from_mask(_module(hooked, name.rsplit(".", 1)[0]), "weight", mask[name])
    hooks = _steps_per_s(hooked, b_buck)
    out["masking_ex_per_s"] = {"multiply_after_step": after, "prune_hooks": hooks}

    # Contiguous conv input (the model's default) vs the transposed view.
    model = init_model(vocab.size, m, 0, vocab.pad_id)
    model.forward = kim_forward.__get__(model, TextCNN)
    contig = _steps_per_s(model, b_buck)

    def view_forward(self, tokens):
        x = F.dropout(self.embedding(tokens), self.settings.embed_dropout, self.training).transpose(1, 2)
        pooled = [F.relu(conv(x)).amax(dim=2) for conv in self.convs]
        return self.out(F.relu(self.hidden(torch.cat(pooled, dim=1))))
    model.forward = view_forward.__get__(model, TextCNN)
    view = _steps_per_s(model, b_buck)
    out["conv_input_ex_per_s"] = {"contiguous": contig, "transposed_view": view}

    # Forward-pass levers, one at a time and together (1 thread, bucketed batches),
    # against the forward a typical reproduction writes (kim_forward).
    variants = {"typical (F.dropout, ReLU, amax)": (0, 0, 0, 0), "rand < keep dropout": (0, 0, 0, 1),
                "ReLU after max": (0, 1, 0, 0), "max with indices": (0, 0, 1, 0),
                "conv2d channels-last": (1, 0, 0, 0),
                "engine (rand dropout + ReLU after max + max indices)": (0, 1, 1, 1),
                "engine + conv2d channels-last": (1, 1, 1, 1)}
    fwd = {}
    for name, flags in variants.items():
        model = init_model(vocab.size, m, 0, vocab.pad_id)
        model.forward = forward_variant(*map(bool, flags)).__get__(model, TextCNN)
        fwd[name] = _steps_per_s(model, b_buck)
    base = fwd["typical (F.dropout, ReLU, amax)"]
    out["forward_levers"] = {k: {"ex_per_s": v, "vs_typical": v / base} for k, v in fwd.items()}

    # Evaluation: sorted large batches vs unsorted, both with dynamic padding, and max_len.
    model = init_model(vocab.size, m, 0, vocab.pad_id)
    t_sorted = _time(lambda: accuracy(model, val, max_len, 256), 1)
    t_sorted_small = _time(lambda: accuracy(model, val, max_len, 32), 1)

    @torch.no_grad()
    def unsorted():
        model.eval()
        for idx in torch.arange(len(val)).split(256):
            model(collate(val, idx, max_len, m, vocab.pad_id)[0])
    t_unsorted = _time(unsorted, 1)
    xva = pad_all(val, max_len, vocab.pad_id)
    t_full = _time(lambda: naive_accuracy(model, xva, val.labels, 256), 1)
    out["eval_ex_per_s"] = {"sorted_dynamic_b32": len(val) / t_sorted_small,
                            "sorted_dynamic": len(val) / t_sorted, "unsorted_dynamic": len(val) / t_unsorted,
                            "max_len": len(val) / t_full, "note": "batch 256 unless _b32"}

    # Two single-thread processes vs one two-thread process (same batches, per-process work).
    torch.set_num_threads(2)
    two_threads = _steps_per_s(init_model(vocab.size, m, 0, vocab.pad_id), b_buck)
    torch.set_num_threads(1)
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_ready, range(2)))       # start both workers first
        # Each worker times its own steps (after a warm-up pass, like every lever here);
        # both run at the same time, so the machine's throughput is the sum.
        two_proc = sum(pool.map(_two_process_worker, [(settings, vocab.size, b_buck, 1)] * 2))
    out["parallelism_ex_per_s"] = {"one_process_two_threads": two_threads,
                                   "two_processes_one_thread": two_proc}

    # Stacking K = 3 course-width models (the strategies of a round) vs 3 separate ones.
    from lottery.engine.stacked import StackedTextCNN
    cm = config.get_profile("course").model
    cb = [(tok[:, :256 + 5], lab) for tok, lab in b_buck]
    seps = [init_model(vocab.size, cm, s, vocab.pad_id) for s in range(3)]
    sep_opts = [make_optimizer(s, TrainSettings()) for s in seps]

    def separate():
        for tok, lab in cb:
            for mdl, opt in zip(seps, sep_opts):
                loss = F.cross_entropy(mdl(tok), lab)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    stk = StackedTextCNN([init_model(vocab.size, cm, s, vocab.pad_id) for s in range(3)])
    stk_opt = make_optimizer(stk, TrainSettings())

    def stacked():
        for tok, lab in cb:
            logits = stk(tok)
            loss = sum(F.cross_entropy(logits[i], lab) for i in range(3))
            stk_opt.zero_grad(set_to_none=True)
            loss.backward()
            stk_opt.step()
    n_ex = 3 * len(cb) * 32
    out["stacking_course_K3_ex_per_s"] = {"separate": n_ex / _time(separate, 1),
                                          "stacked": n_ex / _time(stacked, 1)}
    torch.set_num_threads(os.cpu_count() or 1)
    return out


# ------------------------------------------------------------------ main

def maxrss_mb(who) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="< 2 minutes")
    g.add_argument("--tiny", action="store_true", help="seconds (smoke test)")
    ap.add_argument("--no-levers", action="store_true", help="skip the per-lever measurements")
    ap.add_argument("--bf16", action="store_true",
                    help="also time the engine with bf16 autocast where the machine has no bf16 hardware "
                         "(emulated: slow; on AMX/avx512_bf16 CPUs and GPUs it runs by default)")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/bench-<mode>.json)")
    args = ap.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    settings = job_settings(mode)
    out_path = args.out or ROOT / "benchmarks" / "results" / f"bench-{mode}.json"
    t_all = time.perf_counter()

    splits = procedures.domain_data(settings.data, settings.vocab, DOMAIN)
    work = job_work(settings, splits)
    threads = os.cpu_count() or 1
    peak = {"one_process_all_threads": matmul_peak(threads), "two_single_thread_processes": peak_two_processes()}

    # Engine first (its peak memory is in the worker processes).
    with tempfile.TemporaryDirectory(prefix="bench-store-") as root:
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        df = runner.run_tickets(settings, [DOMAIN], settings.seeds, list(settings.strategies),
                                progress=False, store=RunStore(root))
        engine_wall = time.perf_counter() - t
    df = df[["seed", "strategy", "round", "val_acc", "test_acc"]].copy()
    df.loc[df["round"] == 0, "strategy"] = "full"                 # round 0 is listed once per strategy
    engine_rows = df.drop_duplicates().to_dict("records")
    engine_rss = max(maxrss_mb(resource.RUSAGE_CHILDREN), maxrss_mb(resource.RUSAGE_SELF))
    engine_workers = runner.default_workers(len(settings.seeds) * len(settings.strategies))
    torch.set_num_threads(threads)

    torch.set_num_threads(threads)
    load1 = os.getloadavg()[0]
    t = time.perf_counter()
    naive_rows = run_naive(settings, splits)
    naive_wall = time.perf_counter() - t
    naive_rss = maxrss_mb(resource.RUSAGE_SELF)
    peak["one_process_all_threads_after"] = matmul_peak(threads)
    best_peak = max(peak["one_process_all_threads"], peak["two_single_thread_processes"],
                    peak["one_process_all_threads_after"])

    bf16 = {"capability": bf16_capability()}
    if bf16["capability"]["has_bf16_hardware"] or args.bf16:
        bf16["matmul_peak_gflop_per_s"] = max(matmul_peak_bf16(threads), matmul_peak_bf16(threads))
        half = replace(settings, train=replace(settings.train, autocast_dtype="bfloat16"))
        with tempfile.TemporaryDirectory(prefix="bench-store-") as root:
            t = time.perf_counter()
            hdf = runner.run_tickets(half, [DOMAIN], half.seeds, list(half.strategies), progress=False,
                                     store=RunStore(root))
            bf16_wall = time.perf_counter() - t
        hdf = hdf[["seed", "strategy", "round", "val_acc", "test_acc"]].copy()
        hdf.loc[hdf["round"] == 0, "strategy"] = "full"
        bf16.update({"wall_s": bf16_wall, "examples_per_s": work["examples"] / bf16_wall,
                     "ratio_vs_fp32_naive": naive_wall / bf16_wall, "ratio_vs_fp32_engine": engine_wall / bf16_wall,
                     "fraction_of_bf16_peak": work["useful_flops"] / bf16_wall / 1e9
                     / bf16["matmul_peak_gflop_per_s"],
                     "fraction_of_bf16_peak_executed": work["engine_executed_flops"] / bf16_wall / 1e9
                     / bf16["matmul_peak_gflop_per_s"],
                     "accuracy_effect": paired_effect(engine_rows, hdf.drop_duplicates().to_dict("records"))})
    else:
        bf16["skipped"] = "no bf16 hardware (avx512_bf16, amx_bf16 or a CUDA GPU); --bf16 forces an emulated run"
    checks = exactness(settings, splits, n_train={"tiny": 32, "quick": 64}.get(mode, 256))
    lever = None if args.no_levers else levers(settings, splits, {"tiny": 2, "quick": 2}.get(mode, 12))

    def path(wall, rss, layout, executed):
        return {"wall_s": wall, "examples_per_s": work["examples"] / wall,
                "useful_gflop_per_s": work["useful_flops"] / wall / 1e9,
                "fraction_of_peak": work["useful_flops"] / wall / 1e9 / best_peak,
                "executed_gflop_per_s": executed / wall / 1e9,
                "fraction_of_peak_executed": executed / wall / 1e9 / best_peak,
                "peak_rss_mb": rss, "layout": layout}

    result = {
        "mode": mode, "machine": machine(),
        "job": {"domain": DOMAIN, "model": config.to_dict(settings.model), "max_len": settings.vocab.max_len,
                "n_train": settings.data.n_train, "n_val": settings.data.n_val, "n_test": settings.data.n_test,
                "seeds": list(settings.seeds), "strategies": list(settings.strategies),
                "rounds": settings.prune.rounds, "epochs": settings.train.max_epochs, **work},
        "flop_formula": "per review of n tokens: MACs = sum_h C*d*h*max(n-h+1,0) + 3C*H + H*K; "
                        "train example 6*MACs (fwd+bwd), evaluated example 2*MACs; engine executed: train "
                        "example 2*MACs + 2*(2*sum_h C*d*h + 2*(3C*H + H*K)) (sparse backward)",
        "matmul_peak_gflop_per_s": {**peak, "used": best_peak},
        "naive": path(naive_wall, naive_rss, f"1 process x {threads} threads", work["useful_flops"]),
        "engine": path(engine_wall, engine_rss, f"{engine_workers} processes x 1 thread",
                       work["engine_executed_flops"]),
        "ratio": naive_wall / engine_wall,
        "loadavg_1min_at_start": {"engine": load0, "naive": load1},
        "accuracies": {"naive": naive_rows, "engine": engine_rows},
        "exactness": checks, "levers": lever, "bf16": bf16,
        "gpu_peak_memory_mb": (torch.cuda.max_memory_allocated() / 2 ** 20) if torch.cuda.is_available() else None,
        "total_s": time.perf_counter() - t_all,
    }
    return save_and_print(result, out_path, print_table)


def save_and_print(result: dict, out_path: Path, table) -> dict:
    """Write ``result`` as JSON to ``out_path``, print its table and where it went."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1))
    table(result)
    print(f"\nJSON: {out_path}")
    return result


def print_table(r: dict) -> None:
    j, mc = r["job"], r["machine"]
    print(f"machine: {describe(mc)}")
    print(f"job ({r['mode']}): {j['domain']}, model {j['model']['embed_dim']}/{j['model']['channels']}/"
          f"{j['model']['hidden']}, max_len {j['max_len']}, {j['n_train']} train reviews, seeds {j['seeds']}, "
          f"FULL + {'/'.join(j['strategies'])} x {j['rounds']} round(s), {j['epochs']} epoch(s): "
          f"{j['trainings']} trainings, {j['examples']} examples, {j['useful_flops'] / 1e12:.2f} useful TFLOP")
    print(f"matmul peak (2048² fp32): {r['matmul_peak_gflop_per_s']['used']:.1f} GFLOP/s")
    print(f"{'path':8s} {'layout':26s} {'wall s':>8s} {'ex/s':>8s} {'GFLOP/s':>8s} {'% peak':>7s} "
          f"{'executed':>9s} {'% peak':>7s} {'RSS MB':>8s}")
    for name in ("naive", "engine"):
        p = r[name]
        print(f"{name:8s} {p['layout']:26s} {p['wall_s']:8.1f} {p['examples_per_s']:8.1f} "
              f"{p['useful_gflop_per_s']:8.1f} {100 * p['fraction_of_peak']:6.1f}% "
              f"{p.get('executed_gflop_per_s', p['useful_gflop_per_s']):9.1f} "
              f"{100 * p.get('fraction_of_peak_executed', p['fraction_of_peak']):6.1f}% {p['peak_rss_mb']:8.0f}")
    print("(GFLOP/s: useful = dense-equivalent work per second; executed = what the path computes, "
          "the engine's sparse convolution backward included)")
    print(f"engine speed-up: {r['ratio']:.2f}x")
    e = r["exactness"]
    print(f"exactness: same weights evaluated both ways -> accuracy equal: {e['eval_same_weights']['equal']} "
          f"(max |logit diff| {e['eval_same_weights']['max_abs_logit_diff']:.2e}); controlled training -> "
          f"val accuracy equal: {e['controlled_training']['equal_acc']} "
          f"(max |weight diff| {e['controlled_training']['max_abs_weight_diff']:.2e})")
    b = r["bf16"]
    if "wall_s" in b:
        e16 = b["accuracy_effect"]
        print(f"bf16 engine: {b['wall_s']:.1f} s, {b['ratio_vs_fp32_naive']:.2f}x fp32 naive, "
              f"{100 * b['fraction_of_bf16_peak']:.1f}% (executed: "
              f"{100 * b.get('fraction_of_bf16_peak_executed', float('nan')):.1f}%) of the bf16 matmul peak "
              f"({b['matmul_peak_gflop_per_s']:.1f} "
              f"GFLOP/s); test accuracy bf16 - fp32 = {e16['mean_diff_pts']:+.2f} ± {e16['sd_diff_pts']:.2f} pts "
              f"over {e16['n_networks']} paired networks")
    else:
        print(f"bf16: {b['skipped']}")
    if r["levers"]:
        print("levers:", json.dumps(r["levers"], indent=1, default=lambda x: round(x, 2)))


if __name__ == "__main__":
    main()
