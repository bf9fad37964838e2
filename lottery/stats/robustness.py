"""Does a verdict survive "another machine"? A perturbation of the seeds.

Rebuilding the book on a CPU with other vector instructions changes the float
summation order, and training then diverges like a new seed: another machine is, in
effect, another draw of seeds. A verdict is **robust** when it stays the same

* without any one seed (leave-one-seed-out: every subset of n − 1 seeds), and
* in at least :data:`AGREEMENT` of :data:`BOOTSTRAP` bootstrap resamples of the seeds
  (seeds drawn with replacement, seeded; a seed's networks stay together, so pairing
  by seed holds; seeds of the ticket grid only and seeds shared with the transfer grid
  are resampled separately).

A verdict that is not robust is provisional: the book shows it with the seeds its
weakest test would need (:mod:`lottery.stats.power`). Claims without seeds (the JSD
ranking) are not perturbed.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from lottery.stats.record import Claim

BOOTSTRAP = 100
AGREEMENT = 0.8

Evaluate = Callable[[pd.DataFrame, "pd.DataFrame | None"], Sequence[Claim]]


def _remap(df: pd.DataFrame | None, mapping: pd.DataFrame) -> pd.DataFrame | None:
    """``df`` with its seeds replaced as ``mapping`` (columns ``seed`` → ``new``) says;
    a seed listed twice appears twice under two new ids; unlisted seeds are dropped."""
    if df is None:
        return None
    return df.merge(mapping, on="seed").drop(columns="seed").rename(columns={"new": "seed"})


def perturbations(ticket_seeds: Sequence[int], shared_seeds: Sequence[int], boot: int = BOOTSTRAP,
                  seed: int = 0) -> Iterator[tuple[str, pd.DataFrame]]:
    """("leave out s", mapping) for every seed, then ("bootstrap i", mapping) ``boot`` times."""
    every = sorted(set(ticket_seeds) | set(shared_seeds))
    for s in every:
        kept = [x for x in every if x != s]
        yield f"leave out {s}", pd.DataFrame({"seed": kept, "new": kept})
    rng = np.random.default_rng(seed)
    only = [x for x in every if x not in set(shared_seeds)]
    shared = [x for x in every if x in set(shared_seeds)]
    for i in range(boot):
        drawn = [*rng.choice(shared, len(shared)).tolist()] if shared else []
        drawn += rng.choice(only, len(only)).tolist() if only else []
        yield f"bootstrap {i}", pd.DataFrame({"seed": drawn, "new": range(len(drawn))})


def add_robustness(found: Sequence[Claim], tickets: pd.DataFrame, transfer: pd.DataFrame | None,
                   evaluate: Evaluate, boot: int = BOOTSTRAP, seed: int = 0) -> list[Claim]:
    """``found`` with ``robust`` and ``robustness`` filled in: each claim's verdict
    recomputed by ``evaluate(tickets, transfer)`` under every perturbation."""
    shared = sorted(set(transfer["seed"])) if transfer is not None and len(transfer) else []
    loso: dict[int, list[str]] = {c.number: [] for c in found}
    boots: dict[int, list[str]] = {c.number: [] for c in found}
    for name, mapping in perturbations(sorted(set(tickets["seed"])), shared, boot, seed):
        again = {c.number: c.verdict for c in evaluate(_remap(tickets, mapping), _remap(transfer, mapping))}
        for c in found:
            (loso if name.startswith("leave") else boots)[c.number].append(again.get(c.number, ""))
    out = []
    for c in found:
        if not c.tested or not c.details:
            c.robust = c.tested or None
            c.robustness = "no seeds: not perturbed" if c.tested else ""
            out.append(c)
            continue
        same_loso = sum(v == c.verdict for v in loso[c.number])
        share = float(np.mean([v == c.verdict for v in boots[c.number]])) if boots[c.number] else 1.0
        c.robust = same_loso == len(loso[c.number]) and share >= AGREEMENT
        c.robustness = (f"same verdict without any one seed: {same_loso}/{len(loso[c.number])}; "
                        f"in {100 * share:.0f}% of {len(boots[c.number])} bootstrap resamples of the seeds")
        out.append(c)
    return out
