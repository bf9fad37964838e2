"""Synthetic results frames shaped like the engine's, for the analysis and report tests.

TICKET-RESET gains 1 point per round, TICKET-RANDOM loses 2 and RANDOM-PRUNING 5 (tiny
noise), so the expected signs of every gap and verdict are known. Strategies are the
strategy table's keys, as in the engine's frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lottery import config


def tickets_frame(seeds=(0, 1, 2), rounds=3, domains=("books", "electronics")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for d in domains:
        for seed in seeds:
            full = 0.8 + 0.01 * seed
            for strat, drift in (("reset", 0.01), ("random", -0.02), ("random_pruning", -0.05)):
                for r in range(rounds + 1):
                    acc = full if r == 0 else full + drift * r + rng.normal(0, 0.003)
                    rows.append({"procedure": "tickets", "strategy": strat, "domain": d,
                                 "source": d, "target": d, "seed": seed, "round": r,
                                 "sparsity": config.sparsity_after(0.35, r),
                                 "val_acc": acc, "test_acc": acc, "epochs": 1, "seconds": 1.0})
    return pd.DataFrame(rows)


def transfer_frame(pairs=(("books", "electronics"),), seeds=(0, 1, 2), rounds=3,
                   noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for a, b in pairs:
        for seed in seeds:
            for strat, drift in (("masks_reset", -0.01), ("masks_random", -0.03)):
                for r in range(1, rounds + 1):
                    acc = 0.78 + drift * r + 0.002 * seed + (rng.normal(0, noise) if noise else 0.0)
                    rows.append({"procedure": "transfer", "strategy": strat, "domain": b,
                                 "source": a, "target": b, "seed": seed, "round": r,
                                 "sparsity": config.sparsity_after(0.35, r), "val_acc": acc,
                                 "test_acc": acc, "epochs": 1, "seconds": 2.0})
    return pd.DataFrame(rows)


def jsd_frame(values: dict[frozenset, float], names) -> pd.DataFrame:
    """Tidy JSD frame (both orders and the diagonal) from ×1e5 values per unordered pair."""
    rows = []
    for a in names:
        for b in names:
            v = 0.0 if a == b else values.get(frozenset((a, b)), 10.0)
            rows.append({"domain_a": a, "domain_b": b, "jsd": v / 1e5, "jsd_x1e5": v})
    return pd.DataFrame(rows)
