"""The transfer chapter with one seed (issue item 11): the mask overlap across seeds needs
two seeds, so with one it is reported as not available (NaN, and a sentence saying why)
instead of failing with ``KeyError: 'across seeds'`` (lottery.stats.overlap)."""

from __future__ import annotations

import math
import zlib

import pandas as pd
import torch

from lottery.stats import overlap

LAYERS = {"embedding.weight": 400, "convs.0.weight": 120}


def _mask(n: int, k: int, seed: int) -> torch.Tensor:
    m = torch.zeros(n, dtype=torch.bool)
    m[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]] = True
    return m


def _masks(domain: str, seed: int, round_: int) -> dict[str, torch.Tensor]:
    """A mask per layer; masks of one seed share half their survivors (the common θ0)."""
    out = {}
    for name, n in LAYERS.items():
        k = n // 2 ** round_
        common = _mask(n, k // 2, seed)
        rest = (~common).nonzero().flatten()
        gen = torch.Generator().manual_seed(zlib.crc32(f"{domain} {seed} {round_} {name}".encode()))
        extra = rest[torch.randperm(len(rest), generator=gen)[: k - int(common.sum())]]
        m = common.clone()
        m[extra] = True
        out[name] = m
    return out


def _overlaps(domains: list[str], seeds: list[int], rounds: list[int]) -> pd.DataFrame:
    """The frame :func:`overlap.overlaps` returns, from synthetic masks."""
    frames = []
    for r in rounds:
        for s in seeds:
            for i, a in enumerate(domains):
                for b in domains[i + 1:]:
                    frames.append(overlap.jaccard(_masks(a, s, r), _masks(b, s, r)).assign(
                        kind="across domains", a=a, b=b, seed_a=s, seed_b=s, round=r))
        for d in domains:
            for i, s in enumerate(seeds):
                for t in seeds[i + 1:]:
                    frames.append(overlap.jaccard(_masks(d, s, r), _masks(d, t, r)).assign(
                        kind="across seeds", a=d, b=d, seed_a=s, seed_b=t, round=r))
    return pd.concat(frames, ignore_index=True)


def test_one_seed_gives_no_overlap_across_seeds_and_says_why():
    df = _overlaps(["books", "electronics", "dvd"], [0], [1, 2])
    assert set(df["kind"]) == {"across domains"}
    table = overlap.overlap_table(df)
    assert list(table.columns) == ["across domains", "across seeds", "chance"]
    last = table.loc[2]
    # what the transfer chapter reads (cell 23): a number across domains, NaN across seeds
    emb = table.loc[(2, "embedding.weight")]
    assert emb["across domains"] > emb["chance"] and math.isnan(emb["across seeds"])
    assert last["across seeds"].isna().all()
    text = overlap.reading(table, 2)
    assert "across seeds are not available" in text and "one seed" in text
    assert "across domains overlap more than chance" in text


def test_one_domain_gives_no_overlap_across_domains():
    table = overlap.overlap_table(_overlaps(["books"], [0, 1, 2], [1]))
    assert table["across domains"].isna().all() and table["across seeds"].notna().all()
    assert "one domain" in overlap.reading(table, 1)


def test_two_seeds_and_domains_read_as_before():
    table = overlap.overlap_table(_overlaps(["books", "electronics"], [0, 1], [1]))
    assert table[["across domains", "across seeds", "chance"]].notna().all().all()
    assert "not available" not in overlap.reading(table, 1)


def test_stored_masks_of_one_seed(mirror, tmp_path):
    """The chapter's own calls on a real (smoke) ticket run with one seed."""
    from lottery.engine import runner
    from lottery.engine.store import RunStore
    from lottery.experiment import selection

    run = selection.chapter_settings("smoke", seeds=[0])
    store = RunStore(tmp_path / "runs")
    runner.run_tickets(run.settings, domains=run.domains, seeds=run.seeds, strategies=["reset"],
                       progress=False, workers=1, store=store)
    df = overlap.overlaps(run.settings, run.domains, run.seeds, [1, 2], store)
    table = overlap.overlap_table(df)
    assert table["across seeds"].isna().all() and table["across domains"].notna().all()
    assert "one seed" in overlap.reading(table, 2)
    assert len(overlap.pair_overlap(df, 2)) == 1
    # one domain and one seed: no pair at all, an empty frame with the usual columns
    empty = overlap.overlaps(run.settings, run.domains[:1], run.seeds, [1], store)
    assert empty.empty and list(empty.columns) == overlap.COLUMNS
