"""The analyses the chapters show: summaries over seeds, curves, gaps and paired tests.

Everything here takes the engine's tidy results frames (one row per trained network:
``procedure``, ``strategy``, ``domain``, ``source``, ``target``, ``seed``, ``round``,
``sparsity``, ``test_acc``, ...) and returns frames the notebooks print or plot. It
lives in the library, not in the notebooks, so that cells stay short and the same code
is tested. The paper's statements are about sparsity *ranges* (up to 90%, beyond the
96% phase transition); :data:`SPARSITY_RANGES` names them once.

Strategies are named by the strategy table's keys (``reset``, ``masks_random``) in every
frame, filter and argument; the paper's labels (TICKET-RESET) appear only in what is
printed: table headers, comparison names (:mod:`lottery.experiment.labels`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd
from scipy import stats

from lottery.experiment.labels import (by_strategy_label, display_name, in_domain_order, nines,
                                       pair_label, pct, pts, sparsity_label, strategy_label)

#: "matches FULL-MODEL": mean test accuracy at most this far (1 point) below it.
WITHIN_PTS = 0.01
#: A network that predicts one class for at least 95% of the test reviews has
#: collapsed: it no longer reads the review (on the balanced test split its accuracy is
#: then within 5 points of chance, but a 50% network need not have collapsed).
COLLAPSE_SHARE = 0.95
CHANCE = 0.5
#: Rows from stores written before the predicted-class share was recorded
#: (``test_positive_share`` NaN) fall back to: test accuracy within 1 point of 50%.
COLLAPSE_PTS = 0.01


def collapsed(df: pd.DataFrame) -> pd.Series:
    """True for networks that predict one class for ≥ :data:`COLLAPSE_SHARE` of the test
    reviews (rows without the share: accuracy within :data:`COLLAPSE_PTS` of chance)."""
    by_accuracy = (df["test_acc"] - CHANCE).abs() <= COLLAPSE_PTS + 1e-12
    if "test_positive_share" not in df:
        return by_accuracy
    share = df["test_positive_share"].astype(float)
    one_class = (share >= COLLAPSE_SHARE - 1e-12) | (share <= 1 - COLLAPSE_SHARE + 1e-12)
    return one_class.where(share.notna(), by_accuracy).astype(bool)


@dataclass(frozen=True)
class SparsityRange:
    """Sparsities in ``(lo, hi]``: one of the ranges the paper's claims speak of."""

    name: str  # as the tables print it
    lo: float
    hi: float

    @property
    def bound(self) -> str:
        """Short form for column titles: ``≤ 90%``, ``> 96%``, ``90–96%``."""
        if self.lo <= 0:
            return f"≤ {self.hi:.0%}"
        return f"> {self.lo:.0%}" if self.hi >= 1 else self.name

    def contains(self, sparsity: pd.Series) -> pd.Series:
        return (sparsity > self.lo) & (sparsity <= self.hi)


MODERATE = SparsityRange("0–90%", 0.0, 0.90)  # the paper's "0-90%": tickets beat the full model
TRANSITION = SparsityRange("90–96%", 0.90, 0.96)  # up to the phase transition
EXTREME = SparsityRange("> 96%", 0.96, 1.0)  # beyond it: the initial values matter
SPARSITY_RANGES: tuple[SparsityRange, ...] = (MODERATE, TRANSITION, EXTREME)


def range_names(sparsity: pd.Series) -> pd.Series:
    """The :data:`SPARSITY_RANGES` name of each sparsity (``0–90%``, ``90–96%``, ``> 96%``)."""
    out = pd.Series("", index=sparsity.index)
    for r in SPARSITY_RANGES:
        out[r.contains(sparsity)] = r.name
    return out


# ---------------------------------------------------------------------------- summaries
def _round_sparsity(df: pd.DataFrame) -> pd.Series:
    """Mean achieved sparsity per round (over everything in ``df``), for the x axis."""
    return df.groupby("round")["sparsity"].mean()


def _tickets(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["procedure"] == "tickets"]


def _pair_rows(df: pd.DataFrame, source: str, target: str) -> pd.DataFrame:
    return df[(df["source"] == source) & (df["target"] == target)]


def summarise(df: pd.DataFrame, group: Sequence[str], value: str = "test_acc") -> pd.DataFrame:
    """Mean, std (ddof=1; 0 for one seed), band (mean ± std), count over seeds, and how
    many of those networks collapsed to chance (``at_chance``)."""
    g = df.assign(_chance=collapsed(df) if value == "test_acc" else False).groupby(list(group), sort=False)
    out = g[value].agg(mean="mean", std="std", n="count").reset_index()
    out["at_chance"] = g["_chance"].sum().values
    if "seed" in df:   # per-seed values, for charts that draw one line per seed
        out["seed_ids"] = g["seed"].agg(list).values
        out["seed_values"] = g[value].agg(list).values
    out["std"] = out["std"].fillna(0.0)
    out["sparsity"] = g["sparsity"].mean().values
    out["lo"] = out["mean"] - out["std"]
    out["hi"] = out["mean"] + out["std"]
    out["x"] = nines(out["sparsity"])
    return out


def full_model_rows(df: pd.DataFrame, at: pd.DataFrame, on: Sequence[str] = ()) -> pd.DataFrame:
    """FULL-MODEL (key ``full``) as rows shaped like ``at``'s: the unpruned network,
    round 0 of TICKET-RESET in ``df`` (every ticket strategy's round 0 is that one
    network), placed at each row of ``at`` — the rounds and sparsities where it is drawn
    or compared — matched on the columns ``on`` (none: at every row of ``at``).

    Columns of ``at`` (round, sparsity, ...) come from ``at``; the others (accuracies,
    or their summaries over seeds) from round 0. The one builder of the full model's
    curve (:func:`ticket_curves`) and of its per-seed rows
    (:func:`lottery.stats.inference.with_full_model`)."""
    unpruned = df[(df["strategy"] == "reset") & (df["round"] == 0)]
    values = unpruned.drop(columns=[c for c in at.columns if c not in on])
    rows = at.merge(values, on=list(on)) if on else at.merge(values, how="cross")
    return rows.assign(strategy="full")


def ticket_curves(tickets_df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3 data: per domain, strategy and round; FULL-MODEL drawn as a flat line.

    FULL-MODEL is round 0 of TICKET-RESET (the unpruned model), repeated at every
    round's sparsity so it reads as the paper's reference line (:func:`full_model_rows`).
    """
    df = _tickets(tickets_df)
    by_round = _round_sparsity(df)
    curves = summarise(df, ["domain", "strategy", "round"])
    curves["sparsity"] = curves["round"].map(by_round)
    curves["x"] = nines(curves["sparsity"])
    at = pd.DataFrame({"round": by_round.index, "sparsity": by_round.to_numpy(),
                       "x": nines(by_round).to_numpy()})
    full = full_model_rows(curves, at)[list(curves.columns)]
    curves = pd.concat([full, curves], ignore_index=True)
    curves["name"] = curves["domain"].map(display_name)
    curves = curves.sort_values(["strategy", "round"], key=by_strategy_label, kind="stable")
    return in_domain_order(curves, "domain")


def target_frame(tickets_df: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """TICKET-TARGET, the baseline of every transfer pair: the target's own TICKET-RESET
    runs, labelled with the pair (``source``, ``target``, ``pair``)."""
    own = _tickets(tickets_df)
    own = own[own["strategy"] == "reset"]
    frames = [own[own["domain"] == target].assign(
        strategy="target", source=source, target=target, pair=pair_label(source, target))
        for source, target in pairs]
    return pd.concat(frames, ignore_index=True) if frames else own.iloc[:0].assign(pair="")


def transfer_curves(tickets_df: pd.DataFrame, transfer_df: pd.DataFrame,
                    pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Fig. 4 data: TICKET-TARGET (target's TICKET-RESET), MASKS-RESET, MASKS-RANDOM per pair."""
    frames = []
    sparsity_by_round = _round_sparsity(_tickets(tickets_df))
    targets = target_frame(tickets_df, pairs)
    for source, target in pairs:
        moved = _pair_rows(transfer_df, source, target)
        if moved.empty:
            continue
        both = pd.concat([_pair_rows(targets, source, target), moved], ignore_index=True)
        s = summarise(both, ["strategy", "round"])
        s["pair"] = pair_label(source, target)
        s["source"], s["target"] = source, target
        frames.append(s)
    if not frames:
        raise ValueError(f"no transfer results for pairs {list(pairs)}")
    out = pd.concat(frames, ignore_index=True)
    known = out["round"].map(sparsity_by_round)
    out["sparsity"] = known.fillna(out["sparsity"])
    out["x"] = nines(out["sparsity"])
    return out


def accuracy_table(curves: pd.DataFrame, facet: str, strategies: Sequence[str],
                   digits: int = 1, facet_title: str | None = None) -> pd.DataFrame:
    """Wide table ``mean ± std`` in % (the std in points) per (facet, round) and
    strategy (keys; the columns are titled with their labels), as the book prints it —
    the unit of the charts; networks that collapsed to chance are counted in the cell
    ("2 at chance")."""
    c = curves[curves["strategy"].isin(strategies)].copy()
    chance = c["at_chance"] if "at_chance" in c else [0] * len(c)
    c["cell"] = [f"{100 * m:.{digits}f} ± {100 * s:.{digits}f}" + (f" ({int(k)} at chance)" if k else "")
                 for m, s, k in zip(c["mean"], c["std"], chance)]
    c["sparsity"] = c["sparsity"].map(sparsity_label)
    table = c.pivot_table(index=[facet, "round", "sparsity"], columns="strategy",
                          values="cell", aggfunc="first", sort=False)
    table = table[[s for s in strategies if s in table.columns]]
    table.columns = [strategy_label(s) for s in table.columns]
    if facet_title:
        table.index = table.index.set_names(facet_title, level=0)
    return table.fillna("—")  # e.g. transferred masks start at round 1


# ---------------------------------------------------------------------------- overviews
def ticket_overview(curves: pd.DataFrame) -> pd.DataFrame:
    """Per domain: FULL-MODEL, the best ticket, and each strategy at the last round.

    ``matches FULL-MODEL up to``: the highest sparsity up to which every TICKET-RESET
    round is within :data:`WITHIN_PTS` of FULL-MODEL (mean over seeds).
    """
    full_label, reset_label = strategy_label("full"), strategy_label("reset")
    rows = []
    for name, c in curves.groupby("name", sort=False):
        full = float(c[(c["strategy"] == "full")]["mean"].iloc[0])
        reset = c[c["strategy"] == "reset"].sort_values("round")
        pruned = reset[reset["round"] > 0]
        row: dict[str, Any] = {"domain": name, full_label: pct(full)}
        if len(pruned):
            best = pruned.loc[pruned["mean"].idxmax()]
            row[f"best {reset_label}"] = f"{pct(best['mean'])} at {sparsity_label(best['sparsity'])}"
            ok = (reset["mean"] >= full - WITHIN_PTS).to_numpy()
            upto = reset["sparsity"].to_numpy()[ok.argmin() - 1] if not ok.all() else reset["sparsity"].max()
            row[f"matches {full_label} up to"] = sparsity_label(upto) if upto > 0 else "never"
        last = int(c["round"].max())
        row["last round sparsity"] = sparsity_label(float(c[c["round"] == last]["sparsity"].mean()))
        for strat in ("reset", "random", "random_pruning"):
            v = c[(c["strategy"] == strat) & (c["round"] == last)]["mean"]
            if len(v):
                row[f"{strategy_label(strat)} (last)"] = pct(float(v.iloc[0]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("domain").fillna("—")  # e.g. no control in this domain


def strategy_gaps(curves: pd.DataFrame, a: str, b: str,
                  facet: str = "name") -> dict[SparsityRange, float]:
    """Mean (over facets and pruned rounds) of ``a − b`` in each of :data:`SPARSITY_RANGES`.

    NaN for a range no round reaches; empty when ``curves`` lacks ``a`` or ``b``.
    """
    wide = curves.pivot_table(index=[facet, "round"], columns="strategy", values="mean")
    spars = curves.groupby([facet, "round"])["sparsity"].mean()
    if a not in wide or b not in wide:
        return {}
    d = (wide[a] - wide[b]).rename("d").to_frame().join(spars)
    d = d[d.index.get_level_values("round") > 0]
    return {r: float(d[r.contains(d["sparsity"])]["d"].mean())
            if r.contains(d["sparsity"]).any() else float("nan")
            for r in SPARSITY_RANGES}


def transfer_overview(curves: pd.DataFrame, jsd: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per pair: transferred masks vs the target's own ticket, by sparsity range."""
    rows = []
    for pair, c in curves.groupby("pair", sort=False):
        row: dict[str, Any] = {"pair": pair}
        if jsd is not None:
            s, t = c["source"].iloc[0], c["target"].iloc[0]
            v = jsd[(jsd["domain_a"] == s) & (jsd["domain_b"] == t)]["jsd_x1e5"]
            row["JSD ×1e5"] = round(float(v.iloc[0]), 1) if len(v) else float("nan")
        for strat in ("masks_reset", "masks_random"):
            g = strategy_gaps(c, strat, "target", facet="pair")
            for r in (MODERATE, EXTREME):
                row[f"{strategy_label(strat)} − TARGET ({r.bound})"] = pts(g.get(r, float("nan")))
        rows.append(row)
    return pd.DataFrame(rows).set_index("pair")


# ---------------------------------------------------------------------------- paired tests
def paired_differences(df: pd.DataFrame, a: str, b: str, group: str = "domain",
                       confidence: float = 0.95, corrected: bool = False) -> pd.DataFrame:
    """Per ``group`` and round: test accuracy of strategy ``a`` minus ``b`` (keys), paired
    by seed; ``comparison`` names them with their labels.

    Mean difference, std of the differences, and a two-sided t-interval
    (``mean ± t_{n-1} · sd / √n``, scipy) — NaN where fewer than two seeds pair up.
    ``corrected``: Bonferroni over every (group, pruned round) in the table, so that all
    intervals hold together with probability ``confidence`` (column ``level``).
    """
    columns = [group, "round", "sparsity", "n", "mean_diff", "sd_diff", "ci_low", "ci_high",
               "level", "comparison"]
    if df.empty:
        return pd.DataFrame(columns=columns + ["x"])
    keys = [group, "seed", "round"]
    left = df[df["strategy"] == a][keys + ["test_acc", "sparsity"]]
    right = df[df["strategy"] == b][keys + ["test_acc", "sparsity"]]
    merged = left.merge(right, on=keys, suffixes=("_a", "_b"))
    merged["diff"] = merged["test_acc_a"] - merged["test_acc_b"]
    merged["sparsity"] = (merged["sparsity_a"] + merged["sparsity_b"]) / 2
    if corrected:
        family = max(int(merged[merged["round"] > 0].groupby([group, "round"]).ngroups), 1)
        confidence = 1 - (1 - confidence) / family
    rows = []
    merged = merged.sort_values("round", kind="stable")
    for (g, rnd), grp in merged.groupby([group, "round"], sort=False):
        n = len(grp)
        mean = float(grp["diff"].mean())
        sd = float(grp["diff"].std(ddof=1)) if n > 1 else float("nan")
        if n > 1:
            half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        else:
            half = float("nan")
        rows.append({group: g, "round": int(rnd), "sparsity": float(grp["sparsity"].mean()),
                     "n": n, "mean_diff": mean, "sd_diff": sd,
                     "ci_low": mean - half, "ci_high": mean + half, "level": confidence,
                     "comparison": f"{strategy_label(a)} − {strategy_label(b)}"})
    out = pd.DataFrame(rows, columns=columns)
    first = {g: i for i, g in enumerate(dict.fromkeys(df[group]))}
    out = out.sort_values(by=[group, "round"], key=lambda c: c.map(first) if c.name == group else c,
                          kind="stable").reset_index(drop=True)
    out["x"] = nines(out["sparsity"])
    return out


def spread(df: pd.DataFrame, group: str, strategies: Sequence[str]) -> pd.DataFrame:
    """Std of test accuracy over seeds per (group, strategy, round)."""
    return summarise(df[df["strategy"].isin(strategies)], [group, "strategy", "round"])


def spread_by_range(df: pd.DataFrame, strategies: Sequence[str],
                    group: str = "domain") -> pd.DataFrame:
    """Mean seed-to-seed std of test accuracy (points) per strategy (rows titled with
    their labels) and sparsity range."""
    s = spread(df, group, strategies)
    s = s[s["round"] > 0]
    out = {}
    for r in SPARSITY_RANGES:
        sel = s[r.contains(s["sparsity"])]
        out[r.name] = {st: (f"{100 * sel[sel['strategy'] == st]['std'].mean():.2f}"
                            if (sel["strategy"] == st).any() else "n/a") for st in strategies}
    table = pd.DataFrame(out, index=list(strategies))
    table.index = [strategy_label(st) for st in table.index]
    table.index.name = "std (pts) at sparsity"
    return table


def transition_points(diffs: pd.DataFrame, group: str) -> pd.DataFrame:
    """Where the two initialisations part ways, per ``group``.

    ``first_significant``: the lowest sparsity whose 95% interval lies entirely above
    zero (``a`` better); ``held_from``: the lowest sparsity from which every higher
    sparsity is significant too. Empty strings where there is none.
    """
    rows = []
    for g, grp in diffs.groupby(group, sort=False):
        grp = grp.sort_values("round")
        sig = (grp["ci_low"] > 0).to_numpy()
        first = grp["sparsity"].to_numpy()[sig.argmax()] if sig.any() else None
        held = None
        for i in range(len(sig)):
            if sig[i:].all():
                held = grp["sparsity"].to_numpy()[i]
                break
        rows.append({group: g,
                     "max |difference|": f"{100 * float(grp['mean_diff'].abs().max()):.1f} pts",
                     "first sparsity with CI > 0": sparsity_label(first) if first is not None else "none",
                     "CI > 0 from there on": sparsity_label(held) if held is not None else "none"})
    return pd.DataFrame(rows, columns=[group, "max |difference|", "first sparsity with CI > 0",
                                       "CI > 0 from there on"]).set_index(group)


def diff_table(diffs: pd.DataFrame, group: str, digits: int = 1) -> pd.DataFrame:
    """Printable paired-difference table in points (NaN intervals shown as n/a)."""
    t = diffs[[group, "round", "sparsity", "n", "mean_diff", "ci_low", "ci_high"]].copy()
    t["sparsity"] = t["sparsity"].map(sparsity_label)
    for c in ("mean_diff", "ci_low", "ci_high"):
        t[c] = [("n/a" if (isinstance(v, float) and math.isnan(v)) else f"{100 * v:+.{digits}f}")
                for v in t[c]]
    level = float(diffs["level"].iloc[0]) if "level" in diffs and len(diffs) else 0.95
    ci = f"{100 * level:.4g}% CI"
    t = t.rename(columns={"n": "seeds", "mean_diff": "mean difference (pts)",
                          "ci_low": f"{ci} low", "ci_high": f"{ci} high"})
    return t.set_index([group, "round"])
