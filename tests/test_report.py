"""The chapters' display tables: data, divergences, compute."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lottery.book import layout, provenance, tables
from lottery.stats import divergence
from synthetic import jsd_frame, tickets_frame, transfer_frame


def test_jsd_table_and_extremes():
    jsd = jsd_frame({frozenset(("books", "electronics")): 3.0,
                     frozenset(("books", "music")): 7.0,
                     frozenset(("electronics", "music")): 5.0}, ("books", "electronics", "music"))
    table = tables.jsd_table(jsd)
    assert list(table.index) == ["Books", "Electronics", "CDs"]
    assert table.loc["Books", "CDs"] == 7.0
    ex = divergence.jsd_extremes(jsd)
    assert set(ex["most_similar"]) == {"books", "electronics"}
    assert set(ex["least_similar"]) == {"books", "music"}
    assert ex["mean_jsd_x1e5"] == pytest.approx(5.0)


def test_length_distribution_shares_sum_to_one():
    hist = tables.length_distribution({"books": [1, 30, 2000, 60], "music": [5]}, bin_width=25, cap=100)
    for _, g in hist.groupby("domain"):
        assert g["share"].sum() == pytest.approx(1.0)
    books = hist[hist["domain"] == "books"].set_index("bin_start")["count"]
    assert books[0] == 1 and books[25] == 1 and books[50] == 1
    assert books[75] == 1  # 2000 is beyond the cap: counted in the last bin
    assert books.index.max() == 75


def test_length_table_and_domain_table():
    table = tables.length_table({"music": ["a b c", "a b c d e"]}, {"music": [3, 9]}, max_len=5)
    assert table.loc["CDs", "median tokens"] == 4 and table.loc["CDs", "max tokens"] == 5
    assert table.loc["CDs", "share > 5 subwords"] == "50.0%"
    assert list(tables.domain_table(["dvd"]).index) == ["Movies"]


def test_split_counts_table_wide_by_split_and_class():
    summary = pd.DataFrame([{"domain": "books", "split": s, "label": c, "n_reviews": n}
                            for s, n in (("train", 10), ("val", 3), ("test", 4)) for c in (0, 1)])
    wide = tables.split_counts_table(summary)
    assert wide.loc["Books", ("train", "neg")] == 10 and wide.loc["Books", ("all", "total")] == 34


def test_compute_summary_totals():
    t = tickets_frame()  # 2 domains x 3 seeds; round 0 listed under 3 strategies
    out = provenance.compute_summary(t, transfer_frame())
    assert out.loc["tickets", "trained subnetworks"] == len(t) - 2 * 2 * 3
    assert out.loc["total", "trained subnetworks"] == len(t) - 12 + len(transfer_frame())
    assert out.loc["transfer", "training time (min)"] == pytest.approx(len(transfer_frame()) * 2 / 60, abs=0.05)


def test_build_timings_read_what_the_pipeline_wrote(tmp_path):
    assert provenance.build_timings(tmp_path) is None
    (tmp_path / layout.TIMINGS_FILE).write_text(json.dumps({"data": 1.234, "tickets": 50.0}))
    assert provenance.build_timings(tmp_path)["seconds"].to_dict() == {"data": 1.2, "tickets": 50.0}


def test_data_source_follows_the_mirror(monkeypatch):
    monkeypatch.setenv("LOTTERY_DATA_MIRROR", "/somewhere")
    assert "mirror" in provenance.data_source()
    monkeypatch.delenv("LOTTERY_DATA_MIRROR")
    assert "canonical" in provenance.data_source()
