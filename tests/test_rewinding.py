"""The rewinding analysis (lottery.stats.rewinding) on synthetic results with known effects."""

from __future__ import annotations

import pandas as pd

from lottery.stats import rewinding
from synthetic import tickets_frame


def _with_rewind(gain: float, collapse: bool = False) -> pd.DataFrame:
    """TICKET-REWIND = TICKET-RESET + ``gain`` (per seed a little noise), optionally with
    TICKET-RESET at chance past 96%."""
    df = tickets_frame(seeds=(0, 1, 2, 3, 4), rounds=9)
    reset = df[df["strategy"] == "reset"].copy()
    rew = reset.assign(strategy="rewind",
                       test_acc=reset["test_acc"] + gain + 0.002 * reset["seed"])
    rew.loc[rew["round"] == 0, "test_acc"] = reset.loc[reset["round"] == 0, "test_acc"].values
    if collapse:
        hit = (df["strategy"] == "reset") & (df["sparsity"] > 0.96)
        df.loc[hit, "test_acc"] = 0.5
    return pd.concat([df, rew], ignore_index=True)


def test_a_clear_gain_past_96_percent_is_called_better():
    st = rewinding.rewind_statistics(_with_rewind(0.03))
    assert st["rewind_minus_reset"].above_zero and st["seeds"] == 5
    assert rewinding.verdict(st).startswith("past 96% TICKET-REWIND is better than TICKET-RESET")


def test_fewer_collapses_are_detected_and_no_effect_is_not_called_one():
    st = rewinding.rewind_statistics(_with_rewind(0.0, collapse=True))
    assert st["stability"].collapsed_a > 0 and st["stability"].collapsed_b == 0
    assert "collapses significantly less often" in rewinding.verdict(st)
    same = rewinding.rewind_statistics(_with_rewind(0.0))
    assert "not distinguishable" in rewinding.verdict(same)
    assert rewinding.verdict({}) .startswith("not tested")


def test_the_sweep_table_and_the_choice_of_k():
    base = tickets_frame(seeds=(0, 1, 2), rounds=9)
    frames = {k: _with_rewind(g)[lambda d: d["strategy"] == "rewind"]
              for k, g in ((5, 0.0), (19, 0.02), (75, 0.025))}
    table = rewinding.sweep_table(frames, base)
    assert list(table.index) == [5, 19, 75]
    assert rewinding.choose_k(table) == 19          # within a point of the best, smallest
    assert rewinding.iterations_per_epoch(1200, 32) == 38
    assert abs(rewinding.share_of_round0(19, 1200, 32, 8) - 19 / 304) < 1e-12


def test_a_build_that_never_passes_96_percent_says_so():
    df = tickets_frame(seeds=(0, 1, 2), rounds=3)               # at most 72.5% sparsity
    reset = df[df["strategy"] == "reset"]
    st = rewinding.rewind_statistics(pd.concat([df, reset.assign(strategy="rewind")]))
    assert rewinding.verdict(st) == "not tested: no round of this build passes 96% sparsity"
