"""Training throughput at paper width on a GPU, and the paper grid's projected GPU-hours.

    python benchmarks/gpu_check.py [--out FILE.json] [--seconds 20]
    python benchmarks/gpu_check.py --device cpu --tiny     # a seconds-long dry run (tests)

For one model and for K models stacked into one network (``lottery.engine.stacked``), in fp32
(TF32 off), TF32 and bf16 autocast: the real training step (``lottery.engine.train.masked_step``:
Adam, then masks re-applied) on random token ids, batch 32, reviews of the paper
profile's mean clipped length, timed for a fixed wall budget after a warm-up. Reported:
steps/s, networks-examples/s, achieved FLOP/s (the dense FLOPs that ``lottery.book.plan``
counts) and that as a share of the card's stated peak; then the paper grid's FLOPs
divided by the best achieved rate = projected GPU-hours (training only; evaluation
passes are in the FLOP count, data handling is not). Timed under the training's own
deterministic CUDA settings (``lottery.engine.devices.deterministic``: no cuDNN
autotuning, deterministic kernels), since those are what the grid runs with.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lottery import config
from lottery.book import plan  # noqa: E402
from lottery.engine import cost
from lottery.engine.devices import deterministic, device_name  # noqa: E402
from lottery.engine.masks import full_mask  # noqa: E402
from lottery.engine.model import init_model  # noqa: E402
from lottery.engine.train import float_masks, as_network, make_optimizer, masked_step  # noqa: E402

#: Mean clipped review length (subword pieces) of the paper profile, measured by
#: ``lottery plan paper`` on the project's CPU machine (the GPU machine has no data).
PAPER_TOKENS = 156.6


def _precision(mode: str) -> str | None:
    tf32 = mode == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return "bfloat16" if mode == "bf16" else None


def throughput(s: config.ExperimentSettings, k: int, mode: str, device: str, tokens: int,
               seconds: float) -> dict:
    amp = _precision(mode)
    models = [init_model(s.vocab.vocab_size, s.model, seed=i) for i in range(k)]
    masks = [full_mask(m) for m in models]
    net = as_network(models).to(device)
    fm = float_masks(net, masks)
    opt = make_optimizer(net, s.train)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(1, s.vocab.vocab_size, (s.train.batch_size, tokens), generator=gen).to(device)
    y = torch.randint(0, s.model.n_classes, (s.train.batch_size,), generator=gen).to(device)
    net.train()
    for _ in range(3):
        masked_step(net, opt, fm, x, y, amp)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(5):
            masked_step(net, opt, fm, x, y, amp)
        sync()
        steps += 5
    elapsed = time.perf_counter() - start
    flops_per_step = k * 3 * cost.forward_flops(s.model, tokens) * s.train.batch_size
    return {"k": k, "precision": mode, "steps_per_s": steps / elapsed,
            "examples_per_s": k * s.train.batch_size * steps / elapsed,
            "flops_per_s": flops_per_step * steps / elapsed}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--gpu", default=None, help="peak table entry (default: from the card's name)")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 5, 16], help="stacked models")
    ap.add_argument("--seconds", type=float, default=15.0, help="timing budget per configuration")
    ap.add_argument("--tiny", action="store_true", help="smoke sizes (a dry run anywhere)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA device (install a CUDA build, "
                 f"see docs/gpu.md; --device cpu --tiny is a dry run)")
    paper = config.get_profile("paper")
    s = config.get_profile("smoke") if args.tiny else paper
    tokens = 32 if args.tiny else int(round(PAPER_TOKENS))
    name = device_name(args.device)
    card = args.gpu or next((g for g in cost.GPU_PEAK if g in name), None)
    rows = []
    for mode in ("fp32", "tf32", "bf16"):
        for k in args.k:
            try:
                with deterministic(args.device):
                    r = throughput(s, k, mode, args.device, tokens, args.seconds)
            except torch.cuda.OutOfMemoryError:
                r = {"k": k, "precision": mode, "error": "out of memory"}
                torch.cuda.empty_cache()
            if card and "flops_per_s" in r:
                peak = cost.GPU_PEAK[card]["fp32" if mode == "fp32" else mode]
                r["share_of_peak"] = r["flops_per_s"] / peak
            rows.append(r)
            print(json.dumps(r), flush=True)
    best = max((r for r in rows if "flops_per_s" in r), key=lambda r: r["flops_per_s"])
    counts = plan.profile_networks(paper)
    total = sum(load.flops for load in plan.profile_workload(paper, lambda s: PAPER_TOKENS))  # federated included
    result = {"device": name, "peak_table": card, "torch": torch.__version__,
              "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
              "deterministic": args.device.startswith("cuda"),
              "model": "tiny (smoke)" if args.tiny else "paper width 417/127/117",
              "tokens_per_review": tokens, "rows": rows, "best": best,
              "paper_trainings": counts, "paper_flops": total,
              "paper_gpu_hours_at_best": total / best["flops_per_s"] / 3600}
    print(f"\n{name}: best {best['precision']} K={best['k']}: {best['flops_per_s'] / 1e12:.1f} "
          f"TFLOP/s; paper grid {sum(counts.values()):,} trainings, {total / 1e15:.0f} PFLOP -> "
          f"{result['paper_gpu_hours_at_best']:.1f} GPU-hours at that rate")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
