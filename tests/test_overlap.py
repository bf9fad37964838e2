"""Mask overlap (lottery.stats.overlap): Jaccard against its chance level, on masks whose
overlap is known, and on stored masks of a real (smoke) ticket run."""

from __future__ import annotations

import pytest
import torch

from lottery.stats import overlap


def _random_mask(n: int, k: int, seed: int) -> torch.Tensor:
    m = torch.zeros(n, dtype=torch.bool)
    m[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]] = True
    return m


def test_equal_masks_overlap_fully_and_disjoint_ones_not_at_all():
    a = {"w": _random_mask(1000, 300, 0)}
    t = overlap.jaccard(a, a).iloc[0]
    assert t["jaccard"] == 1.0 and t["excess"] == pytest.approx(1.0)
    b = {"w": ~a["w"] & _random_mask(1000, 1000, 1)}
    assert overlap.jaccard(a, b).iloc[0]["jaccard"] == 0.0


@pytest.mark.parametrize("density", [0.5, 0.1, 0.02])
def test_random_masks_overlap_at_the_stated_chance_level(density):
    n = 200_000
    k = int(density * n)
    t = overlap.jaccard({"w": _random_mask(n, k, 0)}, {"w": _random_mask(n, k, 1)}).iloc[0]
    assert t["chance"] == pytest.approx(density / (2 - density))
    expected_common = k * k / n                 # hypergeometric mean; sd ≈ its square root
    assert t["jaccard"] == pytest.approx(t["chance"], rel=4 / expected_common ** 0.5)
    assert abs(t["excess"]) < 4 / expected_common ** 0.5


def test_the_reference_sets_the_layer_size():
    a = {"w": torch.tensor([True, True, False, False])}
    ref = {"w": torch.tensor([True, True, True, False])}        # 3 prunable entries
    t = overlap.jaccard(a, a, ref).iloc[0]
    assert t["size"] == 3 and t["chance"] == pytest.approx((2 / 3) / (2 - 2 / 3))


def test_overlaps_of_stored_smoke_masks(mirror, tmp_path):
    from lottery.engine import runner
    from lottery.engine.store import RunStore
    from lottery.experiment import selection

    run = selection.chapter_settings("smoke")
    store = RunStore(tmp_path / "runs")
    runner.run_tickets(run.settings, progress=False, workers=1, store=store, strategies=["reset"])
    df = overlap.overlaps(run.settings, run.domains, run.seeds, [1, 2], store)
    assert set(df["kind"]) == {"across domains", "across seeds"}
    n_pairs = len(run.seeds) * 1 + len(run.domains) * 1          # 2 domains, 2 seeds
    layers = df["layer"].nunique()
    assert len(df) == 2 * n_pairs * layers
    assert ((df["jaccard"] >= 0) & (df["jaccard"] <= 1)).all()
    table = overlap.overlap_table(df)
    assert list(table.columns) == ["across domains", "across seeds", "chance"]
    with pytest.raises(FileNotFoundError, match="run the tickets chapter"):
        overlap.stored_mask(run.settings, run.domains[0], 99, 1, store)
