"""The tidy results table: one row per trained network and curve, with strategy keys."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lottery.experiment.labels import by_strategy_label, in_domain_order, strategy_key

RESULT_COLUMNS = ["procedure", "strategy", "domain", "source", "target", "seed", "round", "sparsity",
                  "val_acc", "test_acc", "test_positive_share", "epochs", "epochs_run", "seconds"]


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The tidy results table the book plots (one row per trained network and curve).

    ``strategy`` holds the strategy table's keys (labels in rows read from older stores
    are mapped to keys). Rows are listed by procedure, strategy (in the order of their
    labels, as the book prints them), seed and round, then in the paper's domain order."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    # reindex: a column newer than the store (test_positive_share) is NaN in its rows
    df = df.reindex(columns=RESULT_COLUMNS).assign(strategy=lambda d: d["strategy"].map(strategy_key))
    df = df.sort_values(["procedure", "strategy", "seed", "round"], key=by_strategy_label)
    return in_domain_order(df, "source", "target")   # the paper's domain order


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std of test accuracy over seeds, by curve (strategy keys) and round, listed
    with the strategies in the order of their labels."""
    keys = ["procedure", "source", "target", "strategy", "round"]
    return (df.groupby(keys, sort=True)
            .agg(sparsity=("sparsity", "mean"), test_mean=("test_acc", "mean"), test_std=("test_acc", "std"),
                 n_seeds=("seed", "nunique"))
            .reset_index()
            .sort_values(keys, key=by_strategy_label, kind="stable", ignore_index=True))
