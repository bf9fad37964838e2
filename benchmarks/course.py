"""Course width (issue 27): the cost of one course network before and after the sparse
backward, bfloat16 at course width, and the course book projected from them.

    python benchmarks/course.py            # 25 networks per path (~5 min on 2 cores)
    python benchmarks/course.py --quick    # 4 networks per path (~1 min)

All in this process, one thread, interleaved by seed so that the paths share the
machine's state: FULL-MODEL networks of the course profile on Books (48/24/24 CNN,
max_len 256, 1,200 training reviews, 8 epochs, lr 1e-2), seeds 0..N-1.

* ``engine 2``: the engine of ENGINE_VERSION 2, rebuilt here: autograd's full
  convolution backward, a copy per review when a batch is padded, dropout from
  ``torch.rand``;
* ``engine now``: the engine of this commit (``ENGINE_VERSION``, in the JSON; 4: the
  sparse backward of :class:`lottery.engine.model.ConvMax` as two sparse products, one
  row gather per batch, dropout from 21-bit integer draws);
* ``engine now bf16``: the same with ``train.autocast_dtype="bfloat16"``.

Reported: seconds per network (mean over seeds, paired ratios), useful GFLOP/s against a
single-thread matmul peak (fp32 and bf16, measured in this run), the paired accuracy
effect (bf16 − fp32, and engine now − engine 2: float summation order and dropout stream only), and the course
book's training time projected from the per-network time (FLOPs of every training of
``lottery plan course`` × the measured seconds per FLOP / usable cores).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from scipy import stats as sps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import bf16_capability, describe, machine, matmul_peak, save_and_print  # noqa: E402
from lottery import config  # noqa: E402
from lottery.book import plan  # noqa: E402
from lottery.engine import cost, model as model_module, train as train_module  # noqa: E402
from lottery.engine.jobs import ENGINE_VERSION  # noqa: E402
from lottery.engine.encoded import domain_data  # noqa: E402
from lottery.engine.masks import full_mask  # noqa: E402
from lottery.engine.model import init_model, pad_length  # noqa: E402
from lottery.experiment import validate  # noqa: E402

DOMAIN = "books"


def plain_pooled(x, convs):
    """Engine 2's convolutions: full convolution, max over time, autograd's backward."""
    xt = x.transpose(1, 2).contiguous()
    return torch.cat([conv(xt).max(dim=2).values for conv in convs], dim=1)


def collate_v2(split, index, max_len, model, pad_id):
    """Engine 2's padding: one copy per review."""
    seqs = [split.ids[i] for i in index.tolist()]
    width = pad_length(max(len(s) for s in seqs), max_len, model)
    tokens = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for row, s in enumerate(seqs):
        tokens[row, : len(s)] = s
    return tokens, split.labels[index]


def dropout_noise_v2(shape, p, device, dtype):
    """Engine 2's dropout multipliers: ``torch.rand(shape) < 1-p``."""
    keep = 1.0 - p
    return (torch.rand(shape, device=device) < keep).to(dtype).mul_(1.0 / keep)


def train_one(settings, data, seed: int, path: str) -> dict:
    """One FULL-MODEL training on ``path``'s engine; its seconds and accuracies."""
    fast = (model_module.pooled_convolutions, train_module.collate, model_module.dropout_noise)
    if path == "engine 2":
        (model_module.pooled_convolutions, train_module.collate,
         model_module.dropout_noise) = plain_pooled, collate_v2, dropout_noise_v2
    t = settings.train if path != "engine now bf16" else replace(settings.train, autocast_dtype="bfloat16")
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    try:
        net = init_model(data.vocab.size, settings.model, seed, data.vocab.pad_id)
        res = train_module.train_models([net], [full_mask(net, settings.prune.prune_biases)], data.train,
                                        data.val, data.test, t, settings.vocab.max_len, seed=seed)[0]
    finally:
        model_module.pooled_convolutions, train_module.collate, model_module.dropout_noise = fast
    return {"path": path, "seed": seed, "seconds": res.seconds, "test_acc": res.test_acc,
            "minor_page_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults}


def paired(a: list[float], b: list[float]) -> dict:
    """Mean of b − a with a 95% t-interval over the pairs."""
    d = [y - x for x, y in zip(a, b)]
    n, mean = len(d), statistics.fmean(d)
    half = sps.t.ppf(0.975, n - 1) * statistics.stdev(d) / n ** 0.5 if n > 1 else float("nan")
    return {"n": n, "mean": mean, "low": mean - half, "high": mean + half}


def projection(settings, seconds_per_network: float, tokens: float) -> dict:
    """The course book's training seconds per chapter at ``seconds_per_network`` (a
    FULL-MODEL network of ``settings``), every training scaled by its FLOPs."""
    per_flop = seconds_per_network / cost.flops_per_network(settings, tokens)
    cores = config.usable_cores()
    loads = plan.profile_workload(settings, plan.review_lengths())
    chapters = {load.chapter: {"trainings": load.count, "seconds": load.flops * per_flop / cores}
                for load in loads if load.networks}
    return {"cores": cores, "chapters": chapters, "total_s": sum(c["seconds"] for c in chapters.values())}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 networks per path (~1 min)")
    ap.add_argument("--networks", type=int, default=None, help="networks per path (default 25; 4 with --quick)")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/course.json)")
    args = ap.parse_args(argv)
    n = args.networks or (4 if args.quick else 25)
    torch.set_num_threads(1)
    settings = validate.resolve(config.get_profile("course"))
    data = domain_data(settings.data, settings.vocab, DOMAIN)
    capability = bf16_capability()
    paths = ["engine 2", "engine now"] + (["engine now bf16"] if capability["has_bf16_hardware"] else [])
    peaks = {"fp32": matmul_peak(1)}
    if "engine now bf16" in paths:
        peaks["bf16"] = matmul_peak(1, dtype=torch.bfloat16)
    train_one(settings, data, 10_000, "engine now")                  # warm-up, not counted
    rows = []
    t0 = time.perf_counter()
    for seed in range(n):
        for path in paths:
            rows.append(train_one(settings, data, seed, path))
            print(f"seed {seed:2d} {path:14s} {rows[-1]['seconds']:6.2f} s  test acc {rows[-1]['test_acc']:.4f}",
                  flush=True)
    tokens = cost.tokens_per_review(settings)
    flops = cost.flops_per_network(settings, tokens)
    by = {p: [r for r in rows if r["path"] == p] for p in paths}
    summary = {}
    for p in paths:
        secs = [r["seconds"] for r in by[p]]
        peak = peaks["bf16" if p.endswith("bf16") else "fp32"]
        summary[p] = {"seconds_per_network": statistics.fmean(secs), "median_s": statistics.median(secs),
                      "minor_page_faults_per_network": statistics.fmean(r["minor_page_faults"] for r in by[p]),
                      "useful_gflop_per_s": flops / statistics.fmean(secs) / 1e9,
                      "fraction_of_peak": flops / statistics.fmean(secs) / 1e9 / peak,
                      "book_projection": projection(settings, statistics.fmean(secs), tokens)}
    effects = {"engine now vs engine 2": {"speed_ratio": statistics.fmean(
        [x["seconds"] / y["seconds"] for x, y in zip(by["engine 2"], by["engine now"])]),
        "accuracy_pts": {k: 100 * v if k != "n" else v for k, v in paired(
            [r["test_acc"] for r in by["engine 2"]], [r["test_acc"] for r in by["engine now"]]).items()}}}
    if "engine now bf16" in by:
        effects["bf16 vs fp32 (engine now)"] = {"speed_ratio": statistics.fmean(
            [x["seconds"] / y["seconds"] for x, y in zip(by["engine now"], by["engine now bf16"])]),
            "accuracy_pts": {k: 100 * v if k != "n" else v for k, v in paired(
                [r["test_acc"] for r in by["engine now"]], [r["test_acc"] for r in by["engine now bf16"]]).items()}}
    result = {"machine": machine(), "engine_version": ENGINE_VERSION, "bf16_capability": capability, "networks_per_path": n,
              "job": {"profile": "course", "domain": DOMAIN, "model": config.to_dict(settings.model),
                      "max_len": settings.vocab.max_len, "n_train": settings.data.n_train,
                      "epochs": settings.train.max_epochs, "tokens_per_review": tokens,
                      "useful_flops_per_network": flops},
              "matmul_peak_1thread_gflop_per_s": peaks, "paths": summary, "effects": effects, "rows": rows,
              "total_s": time.perf_counter() - t0}
    out = args.out or ROOT / "benchmarks" / "results" / ("course-quick.json" if args.quick else "course.json")
    return save_and_print(result, out, print_table)


def print_table(r: dict) -> None:
    mc, j = r["machine"], r["job"]
    print(f"\nmachine: {describe(mc)}; bf16 hardware: "
          f"{r['bf16_capability'].get('has_bf16_hardware')}")
    print(f"course width: {j['model']['embed_dim']}/{j['model']['channels']}/{j['model']['hidden']}, max_len "
          f"{j['max_len']}, {j['n_train']} reviews x {j['epochs']} epochs, {r['networks_per_path']} networks per path")
    print(f"engine now = ENGINE_VERSION {r.get('engine_version')}")
    print(f"{'path':15s} {'s/network':>9s} {'GFLOP/s':>8s} {'% peak':>7s} {'page faults':>11s} {'book training (projected)':>27s}")
    for p, s in r["paths"].items():
        b = s["book_projection"]
        print(f"{p:15s} {s['seconds_per_network']:9.2f} {s['useful_gflop_per_s']:8.1f} "
              f"{100 * s['fraction_of_peak']:6.1f}% {s.get('minor_page_faults_per_network', float('nan')):11.0f} "
              f"{b['total_s'] / 60:17.1f} min on {b['cores']} cores")
    for name, e in r["effects"].items():
        a = e["accuracy_pts"]
        print(f"{name}: {e['speed_ratio']:.2f}x faster; test accuracy {a['mean']:+.2f} pts "
              f"[{a['low']:+.2f}, {a['high']:+.2f}] over {a['n']} paired networks")


if __name__ == "__main__":
    main()
