"""What the federated chapter shows: the communication–accuracy table, the paired
intervals, and accuracy against bytes communicated.

Accuracy is the global model's test accuracy on the clients' domain after the last
communication round. Comparisons are paired by seed (the same θ0, shards and batches
per seed) with t-intervals over seeds, Bonferroni-corrected over the family shown, as
every claim in the book (:mod:`lottery.stats.inference`).

Conditions are the strategy table's keys in every frame, filter and dictionary here;
tables and charts name them with the paper's labels (:mod:`lottery.experiment.labels`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lottery.config import strategies as strat
from lottery.experiment.labels import pair_label, sparsity_label, strategy_key, strategy_label
from lottery.stats import inference

#: The conditions (keys of the strategy table).
FULL, MOVED, RANDOM, TARGET = "full", "masks_reset", "masks_random", "target"
MB = 1e6

#: The comparisons of the chapter, a − b (keys).
CONTRASTS: tuple[tuple[str, str], ...] = ((MOVED, FULL), (MOVED, TARGET), (MOVED, RANDOM))
#: The name under which :func:`glue_numbers` glues each comparison's reading for the prose.
GLUE_NAMES: dict[tuple[str, str], str] = {(MOVED, FULL): "fed_masks_reset_full_model",
                                          (MOVED, TARGET): "fed_masks_reset_ticket_target",
                                          (MOVED, RANDOM): "fed_masks_reset_masks_random"}


def _keyed(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its ``strategy`` column as strategy keys (stored tasks may hold labels)."""
    return df.assign(strategy=df["strategy"].map(strategy_key)) if len(df) else df


def comparison_name(a: str, b: str) -> str:
    """How the tables name the comparison a − b: ``MASKS-RESET − FULL-MODEL``."""
    return f"{strategy_label(a)} − {strategy_label(b)}"


def _mask_label(df: pd.DataFrame) -> pd.Series:
    return df["sparsity"].map(lambda s: f"{sparsity_label(s)} sparse")


def settings_table(settings: Any, pairs: Any) -> pd.DataFrame:
    """The federated settings, in the two-column form of ``ChapterSettings.describe``."""
    f = settings.federated
    rows = [("federated tasks (server → clients)", ", ".join(pair_label(a, b) for a, b in pairs) or "none"),
            ("clients", f"{f.clients} IID shards of {settings.data.n_train // f.clients} training reviews"),
            ("communication rounds", f"{f.comm_rounds}, {f.local_epochs} local epoch(s) each, all clients"),
            ("server masks", "pruning rounds " + ", ".join(map(str, f.rounds))),
            ("conditions", ", ".join(strat.label(k) for k in f.strategies)),
            ("backend", f.backend)]
    return pd.DataFrame(rows, columns=["setting", "value"]).set_index("setting")


KEY_COLUMNS = ["task", "mask", "strategy", "MB first round", "MB in all", "share of dense bytes",
               "test acc (%)", "last-round gain (pts)", "dense at the same MB (%)", "seeds"]


def key_points(results: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per pair, mask sparsity and condition: bytes of the first round (with the mask)
    and of the whole training, their share of the dense model's, the final test accuracy
    (mean ± std over seeds), its gain in the last round (still rising?), and the dense
    model's accuracy after the same number of bytes (its last round within that budget;
    round 0 = untrained). The ``strategy`` level names the conditions with their labels."""
    results, history = _keyed(results), _keyed(history)
    order = {s: i for i, s in enumerate((FULL, TARGET, MOVED, RANDOM))}
    rows = []
    for (src, tgt), pair in results.groupby(["source", "target"], sort=False):
        h_pair = history[(history["source"] == src) & (history["target"] == tgt)]
        dense = h_pair[h_pair["strategy"] == FULL]
        dense_bytes = float(pair[pair["strategy"] == FULL]["bytes"].mean())
        groups = sorted(pair.groupby(["round", "strategy"]), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9)))
        for (r, strategy), g in groups:
            h = h_pair[(h_pair["round"] == r) & (h_pair["strategy"] == strategy)]
            last = int(h["comm_round"].max())
            curve = h.groupby("comm_round")["test_acc"].mean()
            total = float(g["bytes"].mean())
            within = dense[dense["bytes"] <= total]
            budget = within[within["comm_round"] == within["comm_round"].max()]["test_acc"].mean()
            rows.append({
                "task": pair_label(src, tgt),
                "mask": "dense" if r == 0 else sparsity_label(float(g["sparsity"].mean())),
                "strategy": strategy_label(strategy),
                "MB first round": round(float(h[h["comm_round"] == 1]["bytes"].mean()) / MB, 2),
                "MB in all": round(total / MB, 2),
                "share of dense bytes": f"{100 * total / dense_bytes:.1f}%" if dense_bytes else "—",
                "test acc (%)": (f"{100 * g['test_acc'].mean():.1f} ± {100 * g['test_acc'].std():.1f}"
                                 if len(g) > 1 else f"{100 * g['test_acc'].mean():.1f}"),
                "last-round gain (pts)": f"{100 * (curve[last] - curve[last - 1]):+.1f}",
                "dense at the same MB (%)": "—" if strategy == FULL else f"{100 * budget:.1f}",
                "seeds": int(g["seed"].nunique())})
    return pd.DataFrame(rows, columns=KEY_COLUMNS).set_index(["task", "mask", "strategy"])


def contrasts(results: pd.DataFrame, alpha: float = inference.ALPHA) -> pd.DataFrame:
    """a − b at the last communication round, paired by seed, for each of
    :data:`CONTRASTS` (FULL-MODEL's one dense run is b at every mask): per pair and mask
    sparsity, and pooled over the masks (per seed, the mean over the mask sparsities).
    Two families, each Bonferroni-corrected over its own intervals: the pooled rows
    (the chapter's headline) and the per-sparsity rows.

    ``comparison`` names a − b with the labels (:func:`comparison_name`); the index holds
    the keys (levels ``a``, ``b``), which :func:`reading` selects by."""
    results = _keyed(results)
    parts = []
    for (src, tgt), g in results.groupby(["source", "target"], sort=False):
        dense = g[g["strategy"] == FULL].set_index("seed")["test_acc"]
        per_seed: dict[tuple[str, str], list[pd.Series]] = {}
        for r, gr in g[g["round"] > 0].groupby("round"):
            acc = {k: v.set_index("seed")["test_acc"] for k, v in gr.groupby("strategy")}
            acc[FULL] = dense
            for a, b in CONTRASTS:
                if a in acc and b in acc:
                    diff = (acc[a] - acc[b]).dropna()
                    per_seed.setdefault((a, b), []).append(diff)
                    parts.append({"a": a, "b": b, "task": pair_label(src, tgt),
                                  "mask": sparsity_label(float(gr["sparsity"].mean())),
                                  "comparison": comparison_name(a, b), "values": diff.tolist()})
        for (a, b), diffs in per_seed.items():
            pooled = pd.concat(diffs, axis=1).dropna().mean(axis=1)
            parts.append({"a": a, "b": b, "task": pair_label(src, tgt), "mask": "all (pooled)",
                          "comparison": comparison_name(a, b), "values": pooled.tolist()})
    family = {True: sum(p["mask"] == "all (pooled)" for p in parts),
              False: sum(p["mask"] != "all (pooled)" for p in parts)}
    rows = []
    for p in parts:
        level = inference.level_for(family[p["mask"] == "all (pooled)"], alpha)
        iv = inference.t_interval(p.pop("values"), level)
        rows.append({**p, "difference (pts)": iv.text(), "level": f"{100 * level:.2f}%",
                     "seeds": iv.n, "interval": iv})
    out = pd.DataFrame(rows, columns=["a", "b", "task", "mask", "comparison", "difference (pts)",
                                      "level", "seeds", "interval"])
    return out.set_index(["a", "b"])


def reading(table: pd.DataFrame, a: str, b: str) -> str:
    """The pooled interval of a − b (keys) and what it says, then the mask sparsities
    where the per-sparsity interval excludes 0 (from :func:`contrasts`)."""
    rows = table[(table.index.get_level_values("a") == a) & (table.index.get_level_values("b") == b)]
    if rows.empty:
        return "not tested in this build"
    pooled = rows[rows["mask"] == "all (pooled)"]
    out = []
    for text, iv in zip(pooled["difference (pts)"], pooled["interval"]):
        what = ("higher" if iv.above_zero else "lower" if iv.below_zero
                else "not distinguishable from 0")
        out.append(f"{text} pooled over the masks ({what})")
    single = rows[rows["mask"] != "all (pooled)"]
    shown = [f"{m} ({'higher' if iv.above_zero else 'lower'})" for m, iv in
             zip(single["mask"], single["interval"]) if iv.above_zero or iv.below_zero]
    out.append("separated at " + ", ".join(shown) if shown
               else f"no single mask sparsity of {len(single)} separates")
    return "; ".join(out)


def _last_gain(history: pd.DataFrame) -> float:
    """Mean test accuracy after the last communication round minus after the one before."""
    curve = history.groupby("comm_round")["test_acc"].mean()
    return float(curve.iloc[-1] - curve.iloc[-2]) if len(curve) > 1 else float("nan")


def glue_numbers(results: pd.DataFrame, history: pd.DataFrame, table: pd.DataFrame) -> dict[str, Any]:
    """The numbers the chapter's prose quotes, computed (for the first task)."""
    out: dict[str, Any] = {}
    for a, b in CONTRASTS:
        out[GLUE_NAMES[(a, b)]] = reading(table, a, b)
    if results.empty:
        return out
    results, history = _keyed(results), _keyed(history)
    first = results.iloc[0]
    same = lambda df: df[(df["source"] == first["source"]) & (df["target"] == first["target"])]
    r, h = same(results), same(history)
    dense = r[r["strategy"] == FULL]
    top = r[(r["strategy"] == MOVED) & (r["round"] == r["round"].max())]
    if len(dense) and len(top):
        top_round = int(top["round"].iloc[0])
        out |= {"fed_dense_mb": f"{dense['bytes'].mean() / MB:.1f} MB",
                "fed_dense_acc": f"{100 * dense['test_acc'].mean():.1f}%",
                "fed_top_mask": sparsity_label(float(top["sparsity"].mean())),
                "fed_top_mb": f"{top['bytes'].mean() / MB:.2f} MB",
                "fed_top_share": f"{100 * top['bytes'].mean() / dense['bytes'].mean():.1f}%",
                "fed_top_acc": f"{100 * top['test_acc'].mean():.1f}%",
                "fed_dense_gain": f"{100 * _last_gain(h[h['strategy'] == FULL]):+.1f} points",
                "fed_top_gain": f"{100 * _last_gain(h[(h['strategy'] == MOVED) & (h['round'] == top_round)]):+.1f} points"}
    return out
