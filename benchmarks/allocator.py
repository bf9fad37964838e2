"""Kept freed memory vs glibc's defaults (issue 27): seconds and minor page faults per
course network, processes alternated A B A B so that both see the machine's drift.

    python benchmarks/allocator.py              # 6 pairs of processes, 3 networks each (~2 min)
    python benchmarks/allocator.py --pairs 10

A: the engine with :func:`lottery.engine.allocator.keep_freed_memory` stubbed out
(glibc's own mmap/trim thresholds); B: the engine as it is. Each process trains one
warm-up and then ``--networks`` FULL-MODEL course networks on Books (one thread), the
same seeds in A and B (bitwise the same accuracies: checked). Reported: mean seconds
and faults per network of each path, the A/B time ratio per pair with a 95% t-interval.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import torch
from scipy import stats as sps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import describe, machine, save_and_print  # noqa: E402
from lottery import config  # noqa: E402
from lottery.engine import train as train_module  # noqa: E402
from lottery.engine.encoded import domain_data  # noqa: E402
from lottery.engine.masks import full_mask  # noqa: E402
from lottery.engine.model import init_model  # noqa: E402
from lottery.experiment import validate  # noqa: E402


def child(path: str, networks: int) -> dict:
    if path == "A":
        train_module.keep_freed_memory = lambda: None
    torch.set_num_threads(1)
    s = validate.resolve(config.get_profile("course"))
    data = domain_data(s.data, s.vocab, "books")

    def one(seed):
        net = init_model(data.vocab.size, s.model, seed, data.vocab.pad_id)
        return train_module.train_models([net], [full_mask(net, s.prune.prune_biases)], data.train, data.val,
                                         data.test, s.train, s.vocab.max_len, seed=seed)[0]
    one(10_000)                                            # warm-up, not counted
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    results = [one(seed) for seed in range(networks)]
    return {"path": path, "seconds": statistics.fmean(r.seconds for r in results),
            "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / networks,
            "test_acc": [r.test_acc for r in results]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--networks", type=int, default=3, help="networks per process")
    ap.add_argument("--child", choices=["A", "B"], help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "allocator.json")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.networks)))
        return {}
    rows = []
    for pair in range(args.pairs):
        for path in "AB":
            out = subprocess.run([sys.executable, __file__, "--child", path, "--networks", str(args.networks)],
                                 capture_output=True, text=True, check=True)
            rows.append({"pair": pair, **json.loads(out.stdout.strip().splitlines()[-1])})
            print(f"pair {pair} {path}: {rows[-1]['seconds']:.3f} s/network, {rows[-1]['faults']:.0f} faults",
                  flush=True)
    a, b = rows[0::2], rows[1::2]
    if any(x["test_acc"] != y["test_acc"] for x, y in zip(a, b)):
        raise SystemExit("A and B trained different numbers: the allocator setting must be bitwise neutral")
    ratios = [x["seconds"] / y["seconds"] for x, y in zip(a, b)]
    half = sps.t.ppf(0.975, len(ratios) - 1) * statistics.stdev(ratios) / len(ratios) ** 0.5
    result = {"machine": machine(), "pairs": args.pairs, "networks_per_process": args.networks,
              "glibc_defaults": {"seconds_per_network": statistics.fmean(r["seconds"] for r in a),
                                 "faults_per_network": statistics.fmean(r["faults"] for r in a)},
              "kept": {"seconds_per_network": statistics.fmean(r["seconds"] for r in b),
                       "faults_per_network": statistics.fmean(r["faults"] for r in b)},
              "speed_ratio": {"mean": statistics.fmean(ratios), "low": statistics.fmean(ratios) - half,
                              "high": statistics.fmean(ratios) + half}, "rows": rows}
    return save_and_print(result, args.out, print_table)


def print_table(r: dict) -> None:
    g, k, q = r["glibc_defaults"], r["kept"], r["speed_ratio"]
    print(f"\nmachine: {describe(r['machine'])}; {r['pairs']} A/B pairs of processes, "
          f"{r['networks_per_process']} course networks each")
    print(f"glibc defaults (A): {g['seconds_per_network']:.3f} s/network, {g['faults_per_network']:,.0f} minor faults")
    print(f"freed memory kept (B): {k['seconds_per_network']:.3f} s/network, {k['faults_per_network']:,.0f} minor faults")
    print(f"A/B: {q['mean']:.2f}x [{q['low']:.2f}, {q['high']:.2f}] (95% t-interval over pairs); accuracies bitwise equal")


if __name__ == "__main__":
    main()
