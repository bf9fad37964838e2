"""The ablation: departures from the paper, one at a time, and what they change."""

from __future__ import annotations

import pandas as pd
import pytest

from lottery import config
from lottery.experiment import validate as experiment
from lottery.stats import ablation
from test_claims import noisy


def test_select_and_departures():
    assert ablation.select("all") == ablation.DEPARTURES
    assert all(d.course for d in ablation.select(None))
    assert [d.key for d in ablation.select(["he_a", "lr"])] == ["he_a", "lr"]
    with pytest.raises(ValueError, match="unknown ablation variant 'lrr'"):
        ablation.select(["lrr"])
    table = ablation.departure_table()
    assert list(table.index) == [d.key for d in ablation.DEPARTURES]
    course = config.get_profile("course")
    for d in ablation.DEPARTURES:       # every departure is a valid change of the course profile
        s = ablation.variant_settings(experiment.resolve(course), d)
        assert s != course
        for key, value in d.overrides:
            obj = s
            for part in key.split("."):
                obj = getattr(obj, part)
            assert obj == value


def test_profile_differences_lists_changed_settings():
    diff = ablation.profile_differences(config.get_profile("course"), config.get_profile("paper"))
    assert "train.lr" in diff.index and "model.embed_dim" in diff.index
    assert "model.kernel_heights" not in diff.index       # the same in both


def test_ablation_table_names_the_verdicts_a_departure_moves():
    base = noisy(0.05, 0.05, 0.002).assign(variant=ablation.BASE)       # no transition
    paper = noisy(0.0, 0.08, 0.002).assign(variant="lr")                 # the paper's pattern
    same = noisy(0.05, 0.05, 0.002).assign(variant="he_a")
    table = ablation.ablation_table(pd.concat([base, paper, same], ignore_index=True))
    assert list(table.index) == [ablation.BASE, "lr", "he_a"]
    assert table.loc["lr", "4 RESET ≈ RANDOM"] == "reproduced"
    assert table.loc[ablation.BASE, "4 RESET ≈ RANDOM"] == "not reproduced"
    assert "4" in table.loc["lr", "verdicts changed"] and "5" in table.loc["lr", "verdicts changed"]
    assert table.loc["he_a", "verdicts changed"] == "none"
    text = ablation.conclusions(table)
    assert "claim 4 from *not reproduced* to *reproduced*" in text
    assert "(he_a) moves no verdict" in text


def test_run_ablation_on_real_data(mirror):
    """A departure trains its own runs; the base is the profile's own (same rows)."""
    from lottery.engine import runner

    s = experiment.resolve(config.override(config.get_profile("smoke"), **{
        "prune.rounds": 2, "train.max_epochs": 1, "seeds": (0, 1)}))
    he = ablation.departure("he_a")
    df = ablation.run_ablation(s, [he], "books", (0, 1))
    assert set(df["variant"]) == {ablation.BASE, "he_a"}
    own = runner.run_tickets(s, ["books"], (0, 1), ["reset", "random"], progress=False)
    base = df[df["variant"] == ablation.BASE].drop(columns="variant").reset_index(drop=True)
    pd.testing.assert_frame_equal(base, own.reset_index(drop=True))
    b, h = (df[(df["variant"] == v) & (df["round"] == 0)]["test_acc"].to_numpy() for v in (ablation.BASE, "he_a"))
    assert not (b == h).all()               # another init: other numbers
