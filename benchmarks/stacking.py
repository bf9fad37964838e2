"""Would training K course networks as one batched computation pay on this CPU? (issue 27)

    python benchmarks/stacking.py            # ~1 min, one thread

Three measurements at course width (the ``course`` profile's model, vocabulary size and
max_len; random token ids at full length; batch 32; the engine's own training step, ``masked_step``;
dense networks: the mask multiply after each step costs the same per network either way):

1. ms per network and training step: K = 3 separate engine networks (the sparse 1-max
   backward) vs the opt-in :class:`lottery.engine.stacked.StackedTextCNN` (K = 3 as one
   module: one embedding table, grouped convolutions under autograd, batched matmuls),
   repetitions alternated so that both see the machine's drift;
2. the fixed cost of one step: the same step at batch 1 and length 8, where the tensors
   are tiny and what remains is dispatch plus the per-parameter work (Adam over the
   embedding table), which stacking cannot remove;
3. the three convolution forwards of K = 3 networks as one grouped convolution per height
   vs 3 × 3 separate ones.

From these, an upper bound for any stacked engine (not only the present module): per
network it can save at most (K-1)/K of the fixed step cost plus the grouped convolution's
gain, so its speed-up is at most step / (step - (K-1)/K · fixed - conv gain / K).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import describe, machine, save_and_print  # noqa: E402
from lottery import config  # noqa: E402
from lottery.config import TrainSettings  # noqa: E402
from lottery.engine.model import TextCNN, init_model  # noqa: E402
from lottery.engine.stacked import StackedTextCNN  # noqa: E402
from lottery.engine.train import make_optimizer, masked_step  # noqa: E402
from lottery.experiment import validate  # noqa: E402

K, BATCH = 3, 32


def median_ms(f, reps: int, warm: int = 5) -> float:
    for _ in range(warm):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def separate_step(nets: list[TextCNN], train: TrainSettings):
    """The engine's training step (:func:`masked_step`) for each of ``nets``, one after the other."""
    opts = [make_optimizer(net, train) for net in nets]

    def step(x, y):
        for net, opt in zip(nets, opts):
            masked_step(net, opt, [], x, y)
    return step


def stacked_step(nets: list[TextCNN], train: TrainSettings):
    """The same step with ``nets`` stacked into one module; returns (step, stacked module)."""
    net = StackedTextCNN(nets)
    opt = make_optimizer(net, train)
    return (lambda x, y: masked_step(net, opt, [], x, y)), net


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=8, help="alternated repetitions of 20 steps per path")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stacking.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    s = validate.resolve(config.get_profile("course"))
    vocab, length, ms = s.vocab.vocab_size, s.vocab.max_len, s.model
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randint(1, vocab, (BATCH, length), generator=g), torch.randint(0, 2, (BATCH,), generator=g))
               for _ in range(20)]

    # 1. separate vs stacked, per network and step
    paths = {"separate": separate_step([init_model(vocab, ms, seed) for seed in range(K)], s.train),
             "stacked": stacked_step([init_model(vocab, ms, seed) for seed in range(K)], s.train)[0]}
    for f in paths.values():
        for x, y in batches[:3]:
            f(x, y)
    per_step: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(args.reps):
        for p, f in paths.items():
            t = time.perf_counter()
            for x, y in batches:
                f(x, y)
            per_step[p].append(1e3 * (time.perf_counter() - t) / len(batches) / K)
    ratios = [a / b for a, b in zip(per_step["separate"], per_step["stacked"])]

    # 2. fixed cost of one network's step (tiny batch)
    one = separate_step([init_model(vocab, ms, seed) for seed in range(K)], s.train)
    tiny = (torch.randint(1, vocab, (1, 8), generator=g), torch.randint(0, 2, (1,), generator=g))
    fixed = median_ms(lambda: one(*tiny), 60) / K

    # 3. grouped vs separate convolution forwards
    x = torch.randn(BATCH, K * ms.embed_dim, length)
    weights = [torch.randn(K * ms.channels, ms.embed_dim, h) for h in ms.kernel_heights]
    parts = [x[:, k * ms.embed_dim:(k + 1) * ms.embed_dim].contiguous() for k in range(K)]
    conv_grouped = median_ms(lambda: [F.conv1d(x, w, groups=K) for w in weights], 50)
    conv_separate = median_ms(lambda: [F.conv1d(parts[k], w[k * ms.channels:(k + 1) * ms.channels])
                                       for k in range(K) for w in weights], 50)

    step = statistics.median(per_step["separate"])
    saving = (K - 1) / K * fixed + max(conv_separate - conv_grouped, 0.0) / K
    result = {"machine": machine(), "k": K, "batch": BATCH, "max_len": length, "vocab_size": vocab,
              "model": config.to_dict(ms), "reps": args.reps,
              "ms_per_network_step": {p: statistics.median(v) for p, v in per_step.items()},
              "ms_per_network_step_all": per_step,
              "stacked_speedup_median": statistics.median(ratios),
              "stacked_speedup_range": [min(ratios), max(ratios)],
              "fixed_ms_per_network_step": fixed,
              "conv_forward_ms": {"grouped": conv_grouped, "separate": conv_separate},
              "upper_bound_speedup_any_stacked_engine": step / (step - saving)}
    return save_and_print(result, args.out, print_table)


def print_table(r: dict) -> None:
    print(f"machine: {describe(r['machine'])}")
    print(f"course width {r['model']['embed_dim']}/{r['model']['channels']}/{r['model']['hidden']}, "
          f"batch {r['batch']}, length {r['max_len']}, vocabulary {r['vocab_size']}, one thread, K = {r['k']}")
    for p, v in r["ms_per_network_step"].items():
        print(f"  {p:9s} {v:7.2f} ms per network-step (median of {r['reps']})")
    lo, hi = r["stacked_speedup_range"]
    print(f"  stacked module vs separate: {r['stacked_speedup_median']:.2f}x per network (range {lo:.2f}-{hi:.2f})")
    print(f"  fixed cost per network-step (batch 1, length 8): {r['fixed_ms_per_network_step']:.2f} ms")
    c = r["conv_forward_ms"]
    print(f"  conv forwards of K networks: grouped {c['grouped']:.2f} ms, separate {c['separate']:.2f} ms")
    print(f"  upper bound for any stacked engine: {r['upper_bound_speedup_any_stacked_engine']:.2f}x per network")


if __name__ == "__main__":
    main()
