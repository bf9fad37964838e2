"""Are the verdicts conditional on one data split? (issue 22, item 4)

Every seed of a profile trains and tests on the same split (``data.split_seed``), so the
same 400 test reviews judge every network and the intervals over seeds are conditional
on that split: they do not include the split-to-split variation (one network's accuracy
on 400 reviews has a binomial SE of ~2.4 pts). This script measures what varying the
split with the seed does, on Books (the domain of every ticket claim and of the
ablation), with the course settings and TICKET-RESET / TICKET-RANDOM:

* **shared split**: seeds 0–9 on ``split_seed = 0`` (as the book);
* **split per seed**: seed s on ``split_seed = 100 + s`` (a new split *and* a new shared
  vocabulary per seed, since the vocabulary is trained on the training split).

For each, the Books tests of claims 2, 4 and 5 (RESET − FULL at ≤ 90%; RESET − RANDOM
at ≤ 96%, TOST ±2 pts; the gap change past 96%) with the per-seed SD, the 95% interval
and the state of the test; and the collapses.

    LOTTERY_CACHE_DIR=/tmp/split-cache .venv/bin/python benchmarks/split_check.py
Writes benchmarks/results/split_check.json (~12 min on 2 cores).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

from lottery import config
from lottery.engine import devices, runner
from lottery.experiment import validate
from lottery.stats import inference as inf
from lottery.stats.analysis import MODERATE
from lottery.stats.verdicts import SeedTest

SEEDS = tuple(range(10))
DOMAIN = "books"


def _run(split_seed: int, seeds: tuple[int, ...]) -> pd.DataFrame:
    s = validate.apply_overrides(config.get_profile("course"), {"data.split_seed": split_seed})
    return runner.run_tickets(s, domains=[DOMAIN], seeds=seeds, strategies=["reset", "random"],
                              progress=False, workers=2)


def _tests(df: pd.DataFrame) -> dict[str, dict]:
    t = df[df["procedure"] == "tickets"]
    per = {
        "RESET − FULL ≤ 90% (claim 2)": (inf.seed_contrast(inf.with_full_model(t), "reset", "full",
                                                           within=MODERATE), "above"),
        "RESET − RANDOM ≤ 96% (claim 4)": (inf.seed_contrast(t, "reset", "random",
                                                             within=inf.BELOW_TRANSITION), "equivalent"),
        "gap change past 96% (claim 5)": (inf.gap_change(t, "reset", "random"), "above"),
    }
    out = {}
    for name, (frame, kind) in per.items():
        test = SeedTest("Books", name, "", tuple(frame.sort_values("seed")["diff"]), kind)
        d = test.detail()
        out[name] = {k: d[k] for k in ("seeds", "mean_pts", "low_pts", "high_pts", "level", "sd_pts",
                                       "mde_pts", "seeds_needed", "state")}
    pruned = t[t["round"] > 0]
    out["collapsed"] = {"networks": len(pruned), "collapsed": int(inf.collapsed(pruned).sum()),
                        "full model test acc (mean, sd)": [round(100 * x, 2) for x in
                                                           t[t["round"] == 0].drop_duplicates("seed")
                                                           ["test_acc"].agg(["mean", "std"])]}
    return out


def main() -> int:
    start = time.perf_counter()
    shared = _run(0, SEEDS)
    varied = pd.concat([_run(100 + s, (s,)) for s in SEEDS], ignore_index=True)
    out = {"domain": DOMAIN, "seeds": SEEDS, "cpu": devices.cpu_model(),
           "shared split (split_seed 0)": _tests(shared),
           "split per seed (split_seed 100 + seed)": _tests(varied),
           "seconds": round(time.perf_counter() - start, 1)}
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/results/split_check.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
