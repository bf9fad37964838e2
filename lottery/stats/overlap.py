"""Are tickets domain-specific? Overlap of TICKET-RESET masks, from the run store only.

For two masks of one layer with the same number ``k`` of surviving weights out of
``n`` (the layer's prunable weights; every layer keeps the same count in every domain,
since the prune fraction is per layer), the Jaccard overlap is |A ∩ B| / |A ∪ B|. Two
masks drawn at random with those sizes overlap, in expectation, by ``k²/n`` weights,
so chance Jaccard ≈ d / (2 − d) with density d = k / n (ratio of expectations; exact
as n grows). ``excess`` = (J − chance) / (1 − chance): 0 at chance, 1 for equal masks.

Two comparisons, both at the same pruning round (so the same density):
- **across domains**, same seed: the masks start from the *same* θ0, so part of any
  overlap is the shared initialisation (magnitude pruning keeps large initial weights);
- **across seeds**, same domain: different θ0, same data — the reference for how much
  of a ticket the data alone determines.

A comparison needs two of what it varies: with one seed there is no pair across seeds,
with one domain none across domains. Its column is then NaN (not available) and
:func:`reading` says which comparison is missing and why, instead of failing.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from lottery.data.vocab import shared_vocab
from lottery.engine.jobs import TicketChain, step_name
from lottery.engine.masks import full_mask
from lottery.engine.model import init_model
from lottery.engine.store import RunStore, load_tensors
from lottery.experiment import validate as experiment

Mask = Mapping[str, torch.Tensor]

#: The two comparisons (see the module's docstring); the columns of :func:`overlap_table`.
KINDS = ("across domains", "across seeds")

#: The columns of :func:`overlaps`' frame: :func:`jaccard`'s, then which masks were compared.
COLUMNS = ["layer", "kept", "size", "jaccard", "chance", "excess", "kind", "a", "b", "seed_a",
           "seed_b", "round"]

#: Why a comparison can be missing.
NEEDS = {"across domains": "one domain: no two domains to compare (needs two or more)",
         "across seeds": "one seed: no two seeds of a domain to compare (needs two or more)"}


def stored_mask(settings: Any, domain: str, seed: int, round_: int, store: RunStore,
                strategy: str = "reset") -> dict[str, torch.Tensor]:
    """The mask a stored TICKET-* round trained with (raises if it is not stored)."""
    path = TicketChain(settings, domain, seed, (strategy,)).path(store)
    file = path / step_name(strategy, round_) / "mask.pt"
    if not file.exists():
        raise FileNotFoundError(f"no stored mask for {domain}, seed {seed}, round {round_} "
                                f"({file}); run the tickets chapter first")
    return load_tensors(file)


def jaccard(a: Mask, b: Mask, reference: Mask | None = None) -> pd.DataFrame:
    """Per layer: kept weights, layer size, Jaccard, the chance Jaccard and the excess.
    ``reference`` (default: the union of prunable entries, i.e. every entry) sets n."""
    rows = []
    for name in a:
        x, y = a[name].bool(), b[name].bool()
        n = int(reference[name].sum()) if reference is not None else x.numel()
        k = (int(x.sum()) + int(y.sum())) / 2
        inter, union = int((x & y).sum()), int((x | y).sum())
        j = inter / union if union else 1.0
        d = k / n if n else 0.0
        chance = d / (2 - d) if d < 2 else 1.0
        rows.append({"layer": name, "kept": int(k), "size": n, "jaccard": j, "chance": chance,
                     "excess": (j - chance) / (1 - chance) if chance < 1 else float("nan")})
    return pd.DataFrame(rows)


def overlaps(settings: Any, domains: Sequence[str], seeds: Sequence[int], rounds: Sequence[int],
             store: RunStore | None = None) -> pd.DataFrame:
    """Every cross-domain (same seed) and cross-seed (same domain) pair, per round and layer."""

    settings = experiment.resolve(settings)
    store = store or RunStore()
    vocab = shared_vocab(settings.data, settings.vocab)
    reference = full_mask(init_model(vocab.size, settings.model, 0, vocab.pad_id))
    cache: dict[tuple[str, int, int], dict[str, torch.Tensor]] = {}

    def mask(d: str, s: int, r: int) -> dict[str, torch.Tensor]:
        if (d, s, r) not in cache:
            cache[(d, s, r)] = stored_mask(settings, d, s, r, store)
        return cache[(d, s, r)]

    frames = []
    for r in rounds:
        for s in seeds:
            for a, b in combinations(domains, 2):
                frames.append(jaccard(mask(a, s, r), mask(b, s, r), reference).assign(
                    kind="across domains", a=a, b=b, seed_a=s, seed_b=s, round=r))
        for d in domains:
            for s, t in combinations(seeds, 2):
                frames.append(jaccard(mask(d, s, r), mask(d, t, r), reference).assign(
                    kind="across seeds", a=d, b=d, seed_a=s, seed_b=t, round=r))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def overlap_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean Jaccard (%) per round, layer and kind, with the chance level (%). Both kinds
    are columns even when one has no pair (one seed, or one domain): NaN, not available."""
    g = df.groupby(["round", "layer", "kind"], sort=False)
    out = g.agg(jaccard=("jaccard", "mean"), chance=("chance", "mean"), pairs=("jaccard", "size"))
    wide = (out["jaccard"].unstack("kind") * 100).reindex(columns=list(KINDS))
    wide.columns.name = "kind"
    wide["chance"] = out["chance"].groupby(level=["round", "layer"], sort=False).first() * 100
    return wide.astype(float).round(1)


def pair_overlap(df: pd.DataFrame, round_: int) -> pd.DataFrame:
    """Per domain pair: the excess overlap at ``round_``, all layers weighted by size,
    averaged over seeds (for the comparison with divergence and transfer)."""
    x = df[(df["kind"] == "across domains") & (df["round"] == round_)].copy()
    x["w"] = x["size"]
    rows = []
    for (a, b), g in x.groupby(["a", "b"], sort=False):
        rows.append({"a": a, "b": b, "excess": float((g["excess"] * g["w"]).sum() / g["w"].sum())})
    return pd.DataFrame(rows)


def reading(table: pd.DataFrame, round_: int, margin_pts: float = 1.0) -> str:
    """One sentence saying what the overlaps at ``round_`` show, chosen from the numbers:
    whether masks from one θ0 (across domains) overlap more than masks from one domain
    (across seeds), in every layer, and whether the latter stay within ``margin_pts`` of
    chance. A comparison with no pair (one seed, or one domain) is named as missing."""
    t = table.loc[round_]
    missing = [k for k in KINDS if t[k].isna().all()]
    if missing:
        return _partial_reading(t, missing, margin_pts)
    init_more = bool((t["across domains"] > t["across seeds"] + margin_pts).all())
    data_more = bool((t["across seeds"] > t["across domains"] + margin_pts).all())
    seeds_at_chance = bool(((t["across seeds"] - t["chance"]).abs() <= margin_pts).all())
    if init_more and seeds_at_chance:
        return ("in every layer the mask is set far more by the initial weights than by the "
                "domain: with another θ0 the same data gives a mask no closer than chance "
                "(within a point), while other data from the same θ0 keeps a common core")
    if init_more:
        return ("in every layer masks from one θ0 overlap more than masks from one domain, "
                "and masks from one domain overlap more than chance: both the initial weights "
                "and the data shape the ticket")
    if data_more:
        return ("in every layer masks from one domain overlap more than masks from one θ0: "
                "the data shapes the ticket more than the initial weights do")
    return "neither the initial weights nor the domain dominates the overlap in every layer"


def _partial_reading(t: pd.DataFrame, missing: Sequence[str], margin_pts: float) -> str:
    """:func:`reading` when a comparison has no pair: say which and why, and what the
    other one shows against chance."""
    why = "; ".join(f"masks {k} are not available ({NEEDS[k]})" for k in missing)
    present = [k for k in KINDS if k not in missing]
    if not present:
        return f"no overlap can be read: {why}"
    k = present[0]
    above = bool((t[k] > t["chance"] + margin_pts).all())
    return (f"{why}, so whether the initial weights or the domain sets the mask more cannot be "
            f"told here; masks {k} overlap "
            + ("more than chance in every layer" if above else
               f"within {margin_pts:g} point(s) of chance or below it in some layer"))
