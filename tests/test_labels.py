"""Display labels: domain and pair names, accuracy units, sparsity labels and axis."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lottery.experiment import labels


@pytest.mark.parametrize("s, text", [
    (0.0, "0%"), (0.35, "35%"), (1 - 0.65 ** 2, "58%"), (0.9, "90%"), (0.965, "96.5%"),
    (1 - 0.65 ** 11, "99.12%"), (1 - 0.5 ** 7, "99.22%"), (0.9998, "99.98%"), (float("nan"), "n/a"),
])
def test_sparsity_label(s, text):
    assert labels.sparsity_label(s) == text


def test_pct_and_pts():
    assert labels.pct(0.8123) == "81.2%"
    assert labels.pct(None) == "n/a"
    assert labels.pts(-0.031) == "-3.1 pts"
    assert labels.pts(0.031) == "+3.1 pts"
    assert labels.pts(float("nan")) == "n/a"


def test_nines_scalar_and_series_agree():
    assert labels.nines(0.0) == 0.0
    assert labels.nines(0.99) == pytest.approx(2.0)
    assert labels.nines(1.0) == pytest.approx(9.0)  # capped, not infinite
    s = pd.Series([0.0, 0.5, 0.999], index=[3, 5, 7])
    out = labels.nines(s)
    assert list(out.index) == [3, 5, 7] and out.dtype == float
    assert out.tolist() == pytest.approx([-math.log10(1 - v) for v in s])


def test_names_are_the_papers():
    assert labels.display_name("music") == "CDs"
    assert labels.display_name("kitchen_housewares") == "Home"
    assert labels.display_name("apparel") == "apparel"  # outside the paper's five
    assert labels.pair_label("books", "dvd") == "Books → Movies"
    assert labels.pair_name(("electronics", "kitchen_housewares")) == "Electronics–Home"


def test_strategy_keys_and_labels_come_from_the_table():
    assert labels.strategy_key("TICKET-RESET") == labels.strategy_key("reset") == "reset"
    assert labels.strategy_label("masks_random") == "MASKS-RANDOM"
    assert [labels.strategy_short(k) for k in ("reset", "random_pruning", "masks_random")] == \
        ["RESET", "PRUNING", "RANDOM"]
    df = pd.DataFrame({"strategy": ["full", "random_pruning", "reset", "random"], "n": [1, 2, 3, 4]})
    shown = labels.show_strategies(df)
    assert list(shown["strategy"]) == ["FULL-MODEL", "RANDOM-PRUNING", "TICKET-RESET", "TICKET-RANDOM"]
    assert list(df["strategy"])[0] == "full"                       # the frame itself keeps its keys
    ordered = df.sort_values(["strategy", "n"], key=labels.by_strategy_label)
    assert list(ordered["strategy"]) == ["full", "random_pruning", "random", "reset"]
    with pytest.raises(ValueError, match="unknown strategy"):
        labels.strategy_label("TICKET-NOPE")
