"""The book: chapter settings, the analyses the chapters show, and the build pipeline.

Chapters live in ``notebooks/`` as jupytext MyST notebooks. Building the book is

1. jupytext: read each chapter source into a notebook;
2. papermill: execute it with the chosen profile (and per-chapter parameters) into
   ``book/chapters/<name>.ipynb`` (git-ignored);
3. ``jupyter-book build --all -W -n --keep-going book --path-output book --config _config.yml
   --toc _toc.yml``
   turns those into HTML (config and table of contents live at the top of the repo).

Chapters share results through the engine's run store (``lottery.tickets``), so the
transfer chapter reuses the ticket chapter's masks, and a rebuild after a finished
build only loads results.

The analyses (summaries over seeds, paired differences with t-intervals, the claim
verdicts) are here rather than in the notebooks so that cells stay short and the
same code is tested.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from lottery import config

# ---------------------------------------------------------------------------- layout
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
BOOK_DIR = ROOT / "book"
GOLDEN_DIR = ROOT / "tests" / "golden"
SANITIZE_FILE = GOLDEN_DIR / "sanitize.cfg"
EXECUTED_SUBDIR = "chapters"
TIMINGS_FILE = "_timings.json"

#: npm package that provides MathJax 3 for the offline book; only this file is needed.
MATHJAX_PACKAGE = "mathjax@3.2.2"
MATHJAX_FILE = "tex-svg-full.js"

#: Tolerances that turn measurements into statements and verdicts (printed in the book).
SIMILAR_PTS = 0.01  # |difference| below 1 point counts as "similar"
WITHIN_PTS = 0.01  # "matches FULL-MODEL": mean test accuracy at most 1 point below it
MODERATE_SPARSITY = 0.90  # the paper's "0-90%" range
HIGH_SPARSITY = 0.96  # the paper's phase-transition point


@dataclass(frozen=True)
class Chapter:
    name: str  # what `lottery chapter NAME` accepts; also the executed notebook's stem
    source: str  # file in notebooks/
    title: str


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("intro", "00_intro.md", "Introduction"),
    Chapter("data", "01_data.md", "The data"),
    Chapter("divergence", "02_divergence.md", "How different are the domains?"),
    Chapter("tickets", "03_tickets.md", "Finding tickets"),
    Chapter("transfer", "04_transfer.md", "Transferring tickets"),
    Chapter("phase", "05_phase_transition.md", "The phase transition"),
    Chapter("verdict", "06_paper_vs_book.md", "Paper vs this book"),
)
#: Execution order: results before the pages that summarise them (the intro reports
#: the compute that the other chapters used, so it runs last).
EXECUTION_ORDER: tuple[str, ...] = (
    "data", "divergence", "tickets", "transfer", "phase", "verdict", "intro",
)


def chapter(name: str) -> Chapter:
    for ch in CHAPTERS:
        if ch.name == name:
            return ch
    raise ValueError(
        f"unknown chapter {name!r}; choose one of {[c.name for c in CHAPTERS]}"
    )


# ---------------------------------------------------------------------------- domains
_PAPER_LETTER = {"B": "books", "E": "electronics", "M": "dvd", "C": "music",
                 "H": "kitchen_housewares"}


def display_name(domain: str) -> str:
    """The paper's name for a domain (``music`` -> ``CDs``), else the domain itself."""
    try:
        from lottery import data as _data

        return str(_data.paper_name(domain))
    except Exception:  # helper module absent or domain outside the paper's five
        for paper, fdu in config.PAPER_DOMAINS.items():
            if fdu == domain:
                return paper
        return domain


def resolve_domain(name: str, dataset: str = "fdu-mtl") -> str:
    """Accept a dataset name (``music``), paper name (``CDs``) or letter (``C``).

    Unknown names raise ``ValueError`` listing the valid ones.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"domain names must be non-empty strings, got {name!r}")
    if len(name) == 1 and name.upper() in _PAPER_LETTER:
        name = _PAPER_LETTER[name.upper()]
    from lottery import data as _data

    return str(_data.resolve_domain(name, dataset))


def pair_label(source: str, target: str) -> str:
    return f"{display_name(source)} → {display_name(target)}"


# ---------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ChapterSettings:
    """What one chapter runs: the experiment settings plus the selection shown.

    ``settings`` is the profile with setting-level overrides (rounds, epochs, ...);
    ``domains``, ``seeds`` and ``pairs`` select which runs the chapter trains/loads,
    without changing the settings (so the run store is shared between chapters).
    """

    profile: str
    settings: config.ExperimentSettings
    domains: tuple[str, ...]
    seeds: tuple[int, ...]
    pairs: tuple[tuple[str, str], ...]

    @property
    def sparsities(self) -> list[float]:
        p = self.settings.prune.prune_fraction_per_round
        return [config.sparsity_after(p, r) for r in range(self.settings.prune.rounds + 1)]

    @property
    def control_label(self) -> str:
        """Domains where the RANDOM-PRUNING control runs (all, unless the profile limits it)."""
        control = getattr(self.settings, "control_domains", None)
        if not control:
            return "all domains"
        shown = [display_name(d) for d in self.domains if d in control]
        return ", ".join(shown) if shown else "none of the selected domains"

    def describe(self) -> pd.DataFrame:
        """The settings a reader needs to interpret the chapter, as a two-column table."""
        s = self.settings
        rows = [
            ("profile", self.profile),
            ("dataset", s.data.dataset),
            ("domains", ", ".join(display_name(d) for d in self.domains)),
            ("reviews per domain (train / val / test)",
             f"{s.data.n_train} / {s.data.n_val} / {s.data.n_test}"),
            ("vocabulary", f"{s.vocab.vocab_size} BPE pieces, max length {s.vocab.max_len}"),
            ("CNN", f"embed {s.model.embed_dim}, filters {list(s.model.kernel_heights)} × "
                    f"{s.model.channels} channels, hidden {s.model.hidden}"),
            ("training", f"Adam lr {s.train.lr:g}, batch {s.train.batch_size}, "
                         f"≤ {s.train.max_epochs} epochs"
                         + (f", patience {s.train.patience}" if s.train.patience else "")),
            ("pruning", f"p = {s.prune.prune_fraction_per_round:.0%} per round, "
                        f"{s.prune.rounds} rounds → {self.sparsities[-1]:.2%} sparsity"),
            ("seeds", ", ".join(str(x) for x in self.seeds)),
            ("RANDOM-PRUNING control", self.control_label),
            ("transfer pairs", ", ".join(pair_label(a, b) for a, b in self.pairs) or "none"),
        ]
        return pd.DataFrame(rows, columns=["setting", "value"]).set_index("setting")


def _int_list(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"parameter {name!r} must be a non-empty list of integers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"parameter {name!r}: {v!r} is not a non-negative integer")
        out.append(v)
    if len(set(out)) != len(out):
        raise ValueError(f"parameter {name!r} has duplicates: {value!r}")
    return tuple(out)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"parameter {name!r} must be an integer >= {minimum}, got {value!r}")
    return value


def chapter_settings(
    profile: str = "course",
    *,
    domains: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    pairs: Sequence[Sequence[str]] | None = None,
    rounds: int | None = None,
    max_epochs: int | None = None,
    n_train: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ChapterSettings:
    """The profile with a chapter's parameters applied (``None`` = the profile's value).

    ``overrides`` takes any dotted setting (``{"train.lr": 3e-4}``). Domains outside
    the profile's list are added to it (they need the shared vocabulary to cover them,
    so this changes the vocabulary and everything trained on it). Errors name the
    offending parameter.
    """
    if not isinstance(profile, str):
        raise ValueError(f"parameter 'profile' must be a string, got {profile!r}")
    try:
        settings = config.get_profile(profile)
    except ValueError as exc:
        raise ValueError(f"parameter 'profile': {exc}") from None

    changes: dict[str, Any] = {}
    if rounds is not None:
        changes["prune.rounds"] = _positive_int("rounds", rounds, minimum=0)
    if max_epochs is not None:
        changes["train.max_epochs"] = _positive_int("max_epochs", max_epochs)
    if n_train is not None:
        changes["data.n_train"] = _positive_int("n_train", n_train)
    if overrides:
        if not isinstance(overrides, Mapping):
            raise ValueError(f"parameter 'overrides' must be a dict of dotted settings, "
                             f"got {overrides!r}")
        changes.update(overrides)

    selected: tuple[str, ...]
    if domains is None:
        selected = tuple(settings.data.domains)
    else:
        if isinstance(domains, str):
            domains = [domains]
        if not isinstance(domains, (list, tuple)) or not domains:
            raise ValueError(f"parameter 'domains' must be a non-empty list of domain "
                             f"names, got {domains!r}")
        try:
            selected = tuple(dict.fromkeys(resolve_domain(d, settings.data.dataset)
                                           for d in domains))
        except ValueError as exc:
            raise ValueError(f"parameter 'domains': {exc}") from None
        extra = [d for d in selected if d not in settings.data.domains]
        if extra:
            changes.setdefault("data.domains", tuple(settings.data.domains) + tuple(extra))
    try:
        settings = config.override(settings, **changes)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"parameter 'overrides': {exc}") from None
    if "data.domains" in changes:
        missing = [d for d in selected if d not in settings.data.domains]
        if missing:
            raise ValueError(f"parameter 'domains': {missing} are not in data.domains "
                             f"{list(settings.data.domains)} set by 'overrides'")
        if domains is None:
            selected = tuple(settings.data.domains)

    chosen_seeds = tuple(settings.seeds) if seeds is None else _int_list("seeds", seeds)

    if pairs is None:
        chosen_pairs = tuple(
            (a, b) for a, b in settings.transfer_pairs if a in selected and b in selected
        )
    else:
        if not isinstance(pairs, (list, tuple)):
            raise ValueError(f"parameter 'pairs' must be a list of [source, target] pairs, "
                             f"got {pairs!r}")
        out = []
        for pair in pairs:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"parameter 'pairs': {pair!r} is not a [source, target] pair")
            try:
                a, b = (resolve_domain(d, settings.data.dataset) for d in pair)
            except ValueError as exc:
                raise ValueError(f"parameter 'pairs': {exc}") from None
            if a == b:
                raise ValueError(f"parameter 'pairs': source and target are both {a!r}")
            for d in (a, b):
                if d not in settings.data.domains:
                    raise ValueError(
                        f"parameter 'pairs': domain {d!r} is not in the profile's domains "
                        f"{list(settings.data.domains)}; add it with the 'domains' parameter"
                    )
            out.append((a, b))
        chosen_pairs = tuple(dict.fromkeys(out))
    return ChapterSettings(profile, settings, selected, chosen_seeds, chosen_pairs)


# ---------------------------------------------------------------------------- notebook set-up
def setup_notebook() -> None:
    """What every chapter does first: offline charts, full-width table cells, and no
    progress-bar warnings (the chapters train with ``progress=False``)."""
    import warnings

    from lottery import plots

    plots.use_offline_renderer()
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.width", 200)
    warnings.filterwarnings("ignore", message="IProgress not found")


def stored_results(run: ChapterSettings, transfer: bool = True
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ticket and transfer results for ``run``, for chapters that summarise them.

    In a book build the ticket and transfer chapters have trained everything already, so
    this reads the run store in this process (``workers=1``: no worker start-up). Run on
    its own it trains what is missing, one network at a time. Without transfer pairs
    the second frame is empty.
    """
    from lottery import tickets

    found = tickets.run_tickets(run.settings, domains=run.domains, seeds=run.seeds,
                                progress=False, workers=1)
    moved = (tickets.run_transfer(run.settings, pairs=run.pairs, seeds=run.seeds,
                                  progress=False, workers=1)
             if transfer and run.pairs else tickets.results_frame([]))
    return found, moved


# ---------------------------------------------------------------------------- glue
def glue_values(values: Mapping[str, Any]) -> None:
    """``myst_nb.glue`` each value without displaying it (for ``{glue:text}`` roles)."""
    from myst_nb import glue

    for key, value in values.items():
        if isinstance(value, (np.floating, np.integer)):
            value = value.item()
        glue(key, value, display=False)


def pct(x: float, digits: int = 1) -> str:
    """``0.8123 -> '81.2%'``; NaN -> 'n/a'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.{digits}f}%"


def pts(x: float, digits: int = 1) -> str:
    """Accuracy difference in percentage points with sign: ``0.031 -> '+3.1 pts'``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:+.{digits}f} pts"


def sparsity_label(s: float) -> str:
    """Sparsity with as many decimals as it takes to tell it from 100%:
    35%, 58%, 90%, 96.5%, 99.1%, 99.98% (the same rule as the charts' axis labels)."""
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "n/a"
    if s <= 0:
        return "0%"
    digits = max(0, int(math.ceil(-math.log10(max(1 - s, 1e-9)) - 1e-9)) - 1)
    text = f"{100 * s:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "%"


# ---------------------------------------------------------------------------- data chapter
def domain_table(domains: Sequence[str]) -> pd.DataFrame:
    """The paper's category names next to the dataset's domain names."""
    return pd.DataFrame({"paper (Amazon category)": [display_name(d) for d in domains],
                         "dataset domain": list(domains)}).set_index("paper (Amazon category)")


def split_counts_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Reviews per domain, split and class from ``lottery.data.split_summary``."""
    t = summary.copy()
    t["domain"] = t["domain"].map(display_name)
    t["class"] = t["label"].map({0: "neg", 1: "pos"})
    wide = t.pivot_table(index="domain", columns=["split", "class"], values="n_reviews",
                         aggfunc="sum", sort=False)
    splits = [s for s in ("train", "val", "test") if s in wide.columns.get_level_values(0)]
    wide = wide[[(s, c) for s in splits for c in ("neg", "pos")]]
    wide[("all", "total")] = wide.sum(axis=1)
    wide.columns.names = [None, None]
    return wide.astype(int)


def length_distribution(
    lengths_by_domain: Mapping[str, Iterable[int]], bin_width: int = 25, cap: int = 1000
) -> pd.DataFrame:
    """Histogram (share of reviews per length bin) of review lengths per domain.

    Lengths at or above ``cap`` fall in the last bin.
    """
    rows = []
    bins = np.arange(0, cap + bin_width, bin_width)
    for domain, lengths in lengths_by_domain.items():
        lengths = np.asarray(list(lengths))
        counts, edges = np.histogram(np.minimum(lengths, cap), bins=bins)
        total = max(len(lengths), 1)
        for c, lo, hi in zip(counts, edges[:-1], edges[1:]):
            rows.append({"domain": domain, "name": display_name(domain), "bin_start": int(lo),
                         "bin_end": int(hi), "count": int(c), "share": c / total})
    return pd.DataFrame(rows)


def length_table(
    texts_by_domain: Mapping[str, Iterable[str]],
    subword_lengths: Mapping[str, Sequence[int]] | None = None,
    max_len: int | None = None,
) -> pd.DataFrame:
    """Median / 90th percentile / max review length per domain (tokens and subwords)."""
    rows = []
    for domain, texts in texts_by_domain.items():
        tok = np.array([len(str(t).split()) for t in texts])
        row = {"domain": display_name(domain), "reviews": len(tok),
               "median tokens": int(np.median(tok)), "p90 tokens": int(np.percentile(tok, 90)),
               "max tokens": int(tok.max())}
        if subword_lengths is not None:
            sw = np.asarray(subword_lengths[domain])
            row["median subwords"] = int(np.median(sw))
            row["p90 subwords"] = int(np.percentile(sw, 90))
            if max_len:
                row[f"share > {max_len} subwords"] = pct(float((sw > max_len).mean()))
        rows.append(row)
    return pd.DataFrame(rows).set_index("domain")


def subword_lengths(vocab: Any, texts: Sequence[str], limit: int = 1_000_000) -> np.ndarray:
    """Number of subword pieces of each text under ``vocab`` (untruncated)."""
    return np.array([len(ids) for ids in vocab.encode(list(texts), limit)])


def example_reviews(frame: pd.DataFrame, domain: str, per_label: int = 1, seed: int = 0,
                    chars: int = 240) -> pd.DataFrame:
    """``per_label`` random reviews of each label (fixed seed), shortened to ``chars``."""
    rows = []
    for label, group in frame.groupby("label", sort=True):
        picked = group.sample(n=min(per_label, len(group)), random_state=seed)
        for text in picked["text"]:
            text = str(text)
            short = text if len(text) <= chars else text[: chars].rsplit(" ", 1)[0] + " …"
            rows.append({"domain": display_name(domain),
                         "label": "positive" if int(label) == 1 else "negative",
                         "review (start)": short})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- divergence
def jsd_named(jsd: pd.DataFrame) -> pd.DataFrame:
    """Add the paper's names (``name_a``, ``name_b``) to the tidy JSD frame."""
    out = jsd.copy()
    out["name_a"] = out["domain_a"].map(display_name)
    out["name_b"] = out["domain_b"].map(display_name)
    return out


def jsd_table(jsd: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """The JSD matrix ×1e5 as the paper prints it (square, rounded)."""
    named = jsd_named(jsd)
    order = list(dict.fromkeys(named["name_a"]))
    table = named.pivot(index="name_a", columns="name_b", values="jsd_x1e5")
    table = table.loc[order, order].round(digits)
    table.index.name = "JSD ×1e5"
    table.columns.name = None
    return table


def jsd_extremes(jsd: pd.DataFrame) -> dict[str, Any]:
    """Most and least similar pair of distinct domains (each unordered pair once)."""
    from lottery.divergence import extreme_pairs

    (la, lb, lo), (ha, hb, hi) = extreme_pairs(jsd)
    off = jsd[jsd["domain_a"] != jsd["domain_b"]]
    return {
        "most_similar": (la, lb), "most_similar_jsd_x1e5": lo * 1e5,
        "least_similar": (ha, hb), "least_similar_jsd_x1e5": hi * 1e5,
        "mean_jsd_x1e5": float(off["jsd_x1e5"].mean()),
    }


def pair_name(pair: tuple[str, str], sep: str = "–") -> str:
    return f"{display_name(pair[0])}{sep}{display_name(pair[1])}"


# ---------------------------------------------------------------------------- accuracy summaries
def _round_sparsity(df: pd.DataFrame) -> pd.Series:
    """Mean achieved sparsity per round (over everything in ``df``), for the x axis."""
    return df.groupby("round")["sparsity"].mean()


def summarise(df: pd.DataFrame, group: Sequence[str], value: str = "test_acc") -> pd.DataFrame:
    """Mean, std (ddof=1; 0 for one seed), band (mean ± std) and count over seeds."""
    g = df.groupby(list(group), sort=False)
    out = g[value].agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    out["sparsity"] = g["sparsity"].mean().values
    out["lo"] = out["mean"] - out["std"]
    out["hi"] = out["mean"] + out["std"]
    out["x"] = [(-math.log10(max(1 - s, 1e-9))) for s in out["sparsity"]]
    return out


def ticket_curves(tickets_df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3 data: per domain, strategy and round; FULL-MODEL drawn as a flat line.

    FULL-MODEL is round 0 of TICKET-RESET (the unpruned model), repeated at every
    round's sparsity so it reads as the paper's reference line.
    """
    df = tickets_df[tickets_df["procedure"] == "tickets"]
    curves = summarise(df, ["domain", "strategy", "round"])
    curves["sparsity"] = curves["round"].map(_round_sparsity(df))
    curves["x"] = [(-math.log10(max(1 - s, 1e-9))) for s in curves["sparsity"]]
    full = curves[(curves["strategy"] == "TICKET-RESET") & (curves["round"] == 0)]
    rows = []
    for _, f in full.iterrows():
        for rnd, s in _round_sparsity(df).items():
            r = f.to_dict()
            r.update(strategy="FULL-MODEL", round=rnd, sparsity=s,
                     x=-math.log10(max(1 - s, 1e-9)))
            rows.append(r)
    curves = pd.concat([pd.DataFrame(rows), curves], ignore_index=True)
    curves["name"] = curves["domain"].map(display_name)
    return curves.sort_values(["domain", "strategy", "round"], kind="stable").reset_index(drop=True)


def transfer_curves(tickets_df: pd.DataFrame, transfer_df: pd.DataFrame,
                    pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Fig. 4 data: TICKET-TARGET (target's TICKET-RESET), MASKS-RESET, MASKS-RANDOM per pair."""
    frames = []
    sparsity_by_round = _round_sparsity(tickets_df[tickets_df["procedure"] == "tickets"])
    for source, target in pairs:
        label = pair_label(source, target)
        tgt = tickets_df[(tickets_df["procedure"] == "tickets")
                         & (tickets_df["strategy"] == "TICKET-RESET")
                         & (tickets_df["domain"] == target)].copy()
        tgt["strategy"] = "TICKET-TARGET"
        tr = transfer_df[(transfer_df["source"] == source) & (transfer_df["target"] == target)]
        if tr.empty:
            continue
        both = pd.concat([tgt, tr], ignore_index=True)
        s = summarise(both, ["strategy", "round"])
        s["pair"] = label
        s["source"], s["target"] = source, target
        frames.append(s)
    if not frames:
        raise ValueError(f"no transfer results for pairs {list(pairs)}")
    out = pd.concat(frames, ignore_index=True)
    known = out["round"].map(sparsity_by_round)
    out["sparsity"] = known.fillna(out["sparsity"])
    out["x"] = [(-math.log10(max(1 - s, 1e-9))) for s in out["sparsity"]]
    return out


def accuracy_table(curves: pd.DataFrame, facet: str, strategies: Sequence[str],
                   digits: int = 3, facet_title: str | None = None) -> pd.DataFrame:
    """Wide table ``mean ± std`` per (facet, round) and strategy, as the book prints it."""
    c = curves[curves["strategy"].isin(strategies)].copy()
    c["cell"] = [f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(c["mean"], c["std"])]
    c["sparsity"] = c["sparsity"].map(sparsity_label)
    table = c.pivot_table(index=[facet, "round", "sparsity"], columns="strategy",
                          values="cell", aggfunc="first", sort=False)
    table = table[[s for s in strategies if s in table.columns]]
    table.columns.name = None
    if facet_title:
        table.index = table.index.set_names(facet_title, level=0)
    return table.fillna("—")  # e.g. transferred masks start at round 1




def ticket_overview(curves: pd.DataFrame) -> pd.DataFrame:
    """Per domain: FULL-MODEL, the best ticket, and each strategy at the last round.

    ``matches FULL-MODEL up to``: the highest sparsity up to which every TICKET-RESET
    round is within :data:`WITHIN_PTS` of FULL-MODEL (mean over seeds).
    """
    rows = []
    for name, c in curves.groupby("name", sort=False):
        full = float(c[(c["strategy"] == "FULL-MODEL")]["mean"].iloc[0])
        reset = c[c["strategy"] == "TICKET-RESET"].sort_values("round")
        pruned = reset[reset["round"] > 0]
        row: dict[str, Any] = {"domain": name, "FULL-MODEL": pct(full)}
        if len(pruned):
            best = pruned.loc[pruned["mean"].idxmax()]
            row["best TICKET-RESET"] = f"{pct(best['mean'])} at {sparsity_label(best['sparsity'])}"
            ok = (reset["mean"] >= full - WITHIN_PTS).to_numpy()
            upto = reset["sparsity"].to_numpy()[ok.argmin() - 1] if not ok.all() else reset["sparsity"].max()
            row["matches FULL-MODEL up to"] = sparsity_label(upto)
        last = int(c["round"].max())
        row["last round sparsity"] = sparsity_label(float(c[c["round"] == last]["sparsity"].mean()))
        for strat in ("TICKET-RESET", "TICKET-RANDOM", "RANDOM-PRUNING"):
            v = c[(c["strategy"] == strat) & (c["round"] == last)]["mean"]
            if len(v):
                row[f"{strat} (last)"] = pct(float(v.iloc[0]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("domain")


def strategy_gaps(curves: pd.DataFrame, a: str, b: str, facet: str = "name") -> dict[str, float]:
    """Mean (over facets and rounds) of ``a − b`` in three sparsity ranges."""
    wide = curves.pivot_table(index=[facet, "round"], columns="strategy", values="mean")
    spars = curves.groupby([facet, "round"])["sparsity"].mean()
    if a not in wide or b not in wide:
        return {}
    d = (wide[a] - wide[b]).rename("d").to_frame().join(spars)
    d = d[d.index.get_level_values("round") > 0]
    ranges = {"<=90": (0, MODERATE_SPARSITY), "90-96": (MODERATE_SPARSITY, HIGH_SPARSITY),
              ">96": (HIGH_SPARSITY, 1.0)}
    return {k: float(d[(d["sparsity"] > lo) & (d["sparsity"] <= hi)]["d"].mean())
            if ((d["sparsity"] > lo) & (d["sparsity"] <= hi)).any() else float("nan")
            for k, (lo, hi) in ranges.items()}


def transfer_overview(curves: pd.DataFrame, jsd: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per pair: transferred masks vs the target's own ticket, by sparsity range."""
    rows = []
    for pair, c in curves.groupby("pair", sort=False):
        row: dict[str, Any] = {"pair": pair}
        if jsd is not None:
            s, t = c["source"].iloc[0], c["target"].iloc[0]
            v = jsd[(jsd["domain_a"] == s) & (jsd["domain_b"] == t)]["jsd_x1e5"]
            row["JSD ×1e5"] = round(float(v.iloc[0]), 1) if len(v) else float("nan")
        for strat in ("MASKS-RESET", "MASKS-RANDOM"):
            g = strategy_gaps(c, strat, "TICKET-TARGET", facet="pair")
            row[f"{strat} − TARGET (≤ 90%)"] = pts(g.get("<=90", float("nan")))
            row[f"{strat} − TARGET (> 96%)"] = pts(g.get(">96", float("nan")))
        rows.append(row)
    return pd.DataFrame(rows).set_index("pair")


# ---------------------------------------------------------------------------- phase transition
def paired_differences(df: pd.DataFrame, a: str, b: str, group: str = "domain",
                       confidence: float = 0.95) -> pd.DataFrame:
    """Per ``group`` and round: test accuracy of strategy ``a`` minus ``b``, paired by seed.

    Mean difference, std of the differences, and a two-sided t-interval
    (``mean ± t_{n-1} · sd / √n``, scipy) — NaN where fewer than two seeds pair up.
    """
    from scipy import stats

    columns = [group, "round", "sparsity", "n", "mean_diff", "sd_diff", "ci_low", "ci_high",
               "comparison", "x"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    keys = [group, "seed", "round"]
    left = df[df["strategy"] == a][keys + ["test_acc", "sparsity"]]
    right = df[df["strategy"] == b][keys + ["test_acc", "sparsity"]]
    merged = left.merge(right, on=keys, suffixes=("_a", "_b"))
    merged["diff"] = merged["test_acc_a"] - merged["test_acc_b"]
    merged["sparsity"] = (merged["sparsity_a"] + merged["sparsity_b"]) / 2
    rows = []
    for (g, rnd), grp in merged.groupby([group, "round"], sort=True):
        n = len(grp)
        mean = float(grp["diff"].mean())
        sd = float(grp["diff"].std(ddof=1)) if n > 1 else float("nan")
        if n > 1:
            half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        else:
            half = float("nan")
        rows.append({group: g, "round": int(rnd), "sparsity": float(grp["sparsity"].mean()),
                     "n": n, "mean_diff": mean, "sd_diff": sd,
                     "ci_low": mean - half, "ci_high": mean + half,
                     "comparison": f"{a} − {b}"})
    out = pd.DataFrame(rows, columns=[group, "round", "sparsity", "n", "mean_diff", "sd_diff",
                                      "ci_low", "ci_high", "comparison"])
    out["x"] = [(-math.log10(max(1 - s, 1e-9))) for s in out["sparsity"]]
    return out


def spread(df: pd.DataFrame, group: str, strategies: Sequence[str]) -> pd.DataFrame:
    """Std of test accuracy over seeds per (group, strategy, round)."""
    s = summarise(df[df["strategy"].isin(strategies)], [group, "strategy", "round"])
    return s


SPARSITY_RANGES: dict[str, tuple[float, float]] = {
    "0–90%": (0.0, MODERATE_SPARSITY),
    "90–96%": (MODERATE_SPARSITY, HIGH_SPARSITY),
    "> 96%": (HIGH_SPARSITY, 1.0),
}


def spread_by_range(df: pd.DataFrame, strategies: Sequence[str],
                    group: str = "domain") -> pd.DataFrame:
    """Mean seed-to-seed std of test accuracy (points) per strategy and sparsity range."""
    s = spread(df, group, strategies)
    s = s[s["round"] > 0]
    out = {}
    for label, (lo, hi) in SPARSITY_RANGES.items():
        sel = s[(s["sparsity"] > lo) & (s["sparsity"] <= hi)]
        out[label] = {st: (f"{100 * sel[sel['strategy'] == st]['std'].mean():.2f}"
                           if (sel["strategy"] == st).any() else "n/a") for st in strategies}
    table = pd.DataFrame(out)
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


def diff_table(diffs: pd.DataFrame, group: str, digits: int = 3) -> pd.DataFrame:
    """Printable paired-difference table (rounded; NaN intervals shown as n/a)."""
    t = diffs[[group, "round", "sparsity", "n", "mean_diff", "ci_low", "ci_high"]].copy()
    t["sparsity"] = t["sparsity"].map(sparsity_label)
    for c in ("mean_diff", "ci_low", "ci_high"):
        t[c] = [("n/a" if (isinstance(v, float) and math.isnan(v)) else f"{v:+.{digits}f}")
                for v in t[c]]
    t = t.rename(columns={"n": "seeds", "mean_diff": "mean difference",
                          "ci_low": "95% CI low", "ci_high": "95% CI high"})
    return t.set_index([group, "round"])


# ---------------------------------------------------------------------------- paper vs book


def _mean_in(df: pd.DataFrame, lo: float, hi: float) -> float:
    sel = df[(df["sparsity"] > lo) & (df["sparsity"] <= hi)]
    return float(sel["mean_diff"].mean()) if len(sel) else float("nan")


def claims(tickets_df: pd.DataFrame, transfer_df: pd.DataFrame | None,
           jsd: pd.DataFrame | None, settings: ChapterSettings) -> pd.DataFrame:
    """Each claim of the paper, what we measured, and a verdict computed from it."""
    max_s = float(tickets_df["sparsity"].max())
    rows: list[dict[str, str]] = []

    def add(claim: str, paper: str, measured: str, verdict: str) -> None:
        rows.append({"claim": claim, "paper": paper, "this book": measured, "verdict": verdict})

    untested = f"not tested (profile reaches {sparsity_label(max_s)})"

    # 1. JSD extremes (Fig. 1)
    if jsd is not None and jsd["domain_a"].nunique() > 1:
        ex = jsd_extremes(jsd)
        paper_lo = {"electronics", "kitchen_housewares"}
        paper_hi = {"music", "kitchen_housewares"}
        have = set(jsd["domain_a"])
        got_lo, got_hi = set(ex["most_similar"]), set(ex["least_similar"])
        measured = (f"most similar {pair_name(ex['most_similar'])} "
                    f"({ex['most_similar_jsd_x1e5']:.1f}), least similar "
                    f"{pair_name(ex['least_similar'])} ({ex['least_similar_jsd_x1e5']:.1f})")
        if not (paper_lo <= have and paper_hi <= have):
            verdict = "not tested (needs Electronics, CDs and Home)"
        elif got_lo == paper_lo and got_hi == paper_hi:
            verdict = "reproduced"
        elif got_lo == paper_lo or got_hi == paper_hi:
            verdict = "partly reproduced"
        else:
            verdict = "not reproduced"
        add("Domain similarity (Fig. 1)", "Electronics–Home most similar, CDs–Home least",
            measured, verdict)

    df = tickets_df[tickets_df["procedure"] == "tickets"]
    # 2. tickets beat the full model at moderate sparsity
    full = df[(df["strategy"] == "TICKET-RESET") & (df["round"] == 0)][["domain", "seed", "test_acc"]]
    reset = df[(df["strategy"] == "TICKET-RESET") & (df["round"] > 0)
               & (df["sparsity"] <= MODERATE_SPARSITY)]
    if len(reset):
        m = reset.merge(full, on=["domain", "seed"], suffixes=("", "_full"))
        gain = (m["test_acc"] - m["test_acc_full"]).groupby(m["domain"]).mean()
        better = [display_name(d) for d, v in gain.items() if v > 0]
        measured = ", ".join(f"{display_name(d)} {pts(v)}" for d, v in gain.items())
        share = len(better) / len(gain)
        verdict = ("reproduced" if share >= 0.5 else "partly reproduced" if share > 0
                   else "not reproduced")
        add("TICKET-RESET beats FULL-MODEL at 0–90% sparsity (Fig. 3)",
            "better in Books, Electronics, Home",
            f"mean gain over FULL-MODEL at ≤ 90%: {measured}", verdict)
    else:
        add("TICKET-RESET beats FULL-MODEL at 0–90% sparsity (Fig. 3)",
            "better in Books, Electronics, Home", "no pruned rounds", untested)

    # 3. RESET ≈ RANDOM until ~96% ; 4. RESET > RANDOM beyond, with less variance
    diffs = paired_differences(df, "TICKET-RESET", "TICKET-RANDOM")
    low = diffs[(diffs["round"] > 0) & (diffs["sparsity"] <= HIGH_SPARSITY)]
    if len(low):
        gap = float(low["mean_diff"].abs().mean())
        add("TICKET-RESET ≈ TICKET-RANDOM below 96% (Fig. 3)", "similar test accuracy",
            f"mean |RESET − RANDOM| = {100 * gap:.1f} pts",
            "reproduced" if gap < SIMILAR_PTS else "not reproduced")
    high = diffs[diffs["sparsity"] > HIGH_SPARSITY]
    if len(high):
        d = float(high["mean_diff"].mean())
        sp = spread(df, "domain", ["TICKET-RESET", "TICKET-RANDOM"])
        sp = sp[sp["sparsity"] > HIGH_SPARSITY].groupby("strategy")["std"].mean()
        measured = (f"RESET − RANDOM = {pts(d)}; std RESET {100 * sp.get('TICKET-RESET', np.nan):.1f}"
                    f" vs RANDOM {100 * sp.get('TICKET-RANDOM', np.nan):.1f} pts")
        ok_mean, ok_std = d > 0, sp.get("TICKET-RESET", 0) < sp.get("TICKET-RANDOM", 0)
        verdict = ("reproduced" if ok_mean and ok_std else "partly reproduced"
                   if ok_mean or ok_std else "not reproduced")
    else:
        measured, verdict = "no rounds above 96%", untested
    add("Phase transition above 96%: RESET better and steadier than RANDOM (Fig. 3)",
        "RANDOM unstable, drops faster", measured, verdict)

    # 5./6. transfer
    if transfer_df is not None and len(transfer_df):
        tr_frames = []
        for source, target in settings.pairs:
            tgt = df[(df["strategy"] == "TICKET-RESET") & (df["domain"] == target)].copy()
            tgt["strategy"] = "TICKET-TARGET"
            tgt["pair"] = pair_label(source, target)
            t = transfer_df[(transfer_df["source"] == source) & (transfer_df["target"] == target)].copy()
            t["pair"] = pair_label(source, target)
            tr_frames.append(pd.concat([tgt, t], ignore_index=True))
        both = pd.concat(tr_frames, ignore_index=True) if tr_frames else pd.DataFrame()
        if len(both):
            d = paired_differences(both, "MASKS-RESET", "TICKET-TARGET", group="pair")
            moderate = d[(d["round"] > 0) & (d["sparsity"] <= MODERATE_SPARSITY)]
            if len(moderate):
                drop = moderate.groupby("pair")["mean_diff"].mean()
                worst = float(drop.min())
                add("Transferred masks lose little up to 90% (Fig. 4)",
                    "3–5 pts drop (Books, Electronics sources)",
                    "MASKS-RESET − TICKET-TARGET at ≤ 90%: "
                    + ", ".join(f"{p} {pts(v)}" for p, v in drop.items()),
                    "reproduced" if worst > -0.05 else "not reproduced")
            r = paired_differences(both, "MASKS-RESET", "MASKS-RANDOM", group="pair")
            high = r[r["sparsity"] > HIGH_SPARSITY]
            if len(high):
                v = float(high["mean_diff"].mean())
                add("MASKS-RESET beats MASKS-RANDOM at extreme sparsity (Fig. 4)",
                    "initial values matter deep in sparsification",
                    f"MASKS-RESET − MASKS-RANDOM above 96%: {pts(v)}",
                    "reproduced" if v > 0 else "not reproduced")
            else:
                add("MASKS-RESET beats MASKS-RANDOM at extreme sparsity (Fig. 4)",
                    "initial values matter deep in sparsification",
                    "no rounds above 96%", untested)
    return pd.DataFrame(rows).set_index("claim")


def verdict_counts(verdicts: pd.DataFrame) -> dict[str, int]:
    """How many claims got each kind of verdict (for the prose)."""
    v = verdicts["verdict"]
    return {"n_claims": len(v),
            "n_reproduced": int((v == "reproduced").sum()),
            "n_partly": int((v == "partly reproduced").sum()),
            "n_not_reproduced": int((v == "not reproduced").sum()),
            "n_untested": int(v.str.startswith("not tested").sum())}


# ---------------------------------------------------------------------------- run info
def environment_table() -> pd.DataFrame:
    """Hardware and software that executed this notebook (computed, not typed)."""
    import torch

    rows = [
        ("machine", f"{platform.machine()}, {os.cpu_count()} CPU cores"),
        ("system", f"{platform.system()} {platform.release()}"),
        ("python", platform.python_version()),
        ("torch", f"{torch.__version__} (threads: {torch.get_num_threads()}, "
                  f"CUDA: {'yes' if torch.cuda.is_available() else 'no'})"),
    ]
    if torch.cuda.is_available():
        rows.append(("GPU", torch.cuda.get_device_name(0)))
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")


def data_source() -> str:
    """Where the reviews were read from: the local mirror or the canonical download."""
    return ("local mirror (LOTTERY_DATA_MIRROR)" if os.environ.get("LOTTERY_DATA_MIRROR")
            else "downloaded from the canonical source")


def unique_networks(df: pd.DataFrame) -> pd.DataFrame:
    """One row per trained network: the full model (round 0) appears in the results
    under every TICKET-* strategy but was trained once per domain and seed."""
    full = (df["procedure"] == "tickets") & (df["round"] == 0)
    return pd.concat([df[~full], df[full].drop_duplicates(["domain", "seed"])],
                     ignore_index=True)


def compute_summary(*frames: pd.DataFrame) -> pd.DataFrame:
    """Trained networks and total training time (minutes) per procedure."""
    df = unique_networks(pd.concat([f for f in frames if f is not None and len(f)],
                                   ignore_index=True))
    g = df.groupby("procedure")
    out = pd.DataFrame({"trained subnetworks": g.size(),
                        "training time (min)": (g["seconds"].sum() / 60).round(1)})
    out.loc["total"] = [int(out["trained subnetworks"].sum()),
                        round(float(out["training time (min)"].sum()), 1)]
    return out


def build_timings(chapters_dir: Path | None = None) -> pd.DataFrame | None:
    """Per-chapter execution time of this build so far, if the pipeline recorded one.

    The pipeline writes it next to the executed notebooks (the kernel's working
    directory), before it executes the intro.
    """
    path = Path(chapters_dir or Path.cwd()) / TIMINGS_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return pd.DataFrame({"seconds": data}).rename_axis("chapter").round(1)


# ---------------------------------------------------------------------------- assets
def ensure_assets(book_dir: Path = BOOK_DIR, log: Callable[[str], None] = print) -> None:
    """Put the Vega bundle and MathJax into the book (no CDN at view time).

    Vega comes from vl-convert-python (installed) and goes to ``_static/``, whose
    ``.js`` files jupyter-book adds to every page. MathJax comes from the npm package
    ``mathjax@3``, fetched once with ``npm pack`` into the cache, and goes to
    ``_extra/mathjax/`` (copied as is to the HTML root): Sphinx loads it, deferred,
    only on pages with maths (``mathjax_path`` in ``_config.yml``).
    """
    from lottery import plots

    plots.write_vega_bundle(book_dir / "_static")
    target = book_dir / "_extra" / "mathjax" / MATHJAX_FILE
    if target.exists():
        return
    tgz = mathjax_tarball(log)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz) as tar:
        for member, dest in ((f"package/es5/{MATHJAX_FILE}", target),
                             ("package/LICENSE", target.parent / "LICENSE")):
            src = tar.extractfile(member)
            if src is None:
                raise RuntimeError(f"{tgz} has no {member}")
            dest.write_bytes(src.read())
    log(f"MathJax: {target.relative_to(book_dir)} from {tgz.name}")


def mathjax_tarball(log: Callable[[str], None] = print) -> Path:
    """The cached ``npm pack`` tarball of MathJax, fetched from the npm registry once."""
    cache = config.cache_dir() / "npm"
    name = MATHJAX_PACKAGE.replace("@", "-") + ".tgz"
    path = cache / name
    if path.exists():
        return path
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"MathJax is not in {path} and `npm` is not installed; install Node.js/npm "
            f"(apt-get install npm) or put the tarball of `npm pack {MATHJAX_PACKAGE}` there"
        )
    cache.mkdir(parents=True, exist_ok=True)
    log(f"fetching {MATHJAX_PACKAGE} with npm pack (one-off)")
    proc = subprocess.run([npm, "pack", MATHJAX_PACKAGE, "--pack-destination", str(cache)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not path.exists():
        raise RuntimeError(f"`npm pack {MATHJAX_PACKAGE}` failed:\n{proc.stderr[-2000:]}")
    return path


# ---------------------------------------------------------------------------- notebooks
def source_path(name: str) -> Path:
    return NOTEBOOKS_DIR / chapter(name).source


def read_chapter(name: str):
    """The chapter source as an (unexecuted) notebook with the python3 kernelspec."""
    import jupytext

    nb = jupytext.read(source_path(name))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)
    return nb


def chapter_parameters(name: str) -> dict[str, Any]:
    """Names and defaults of the chapter's ``parameters`` cell."""
    nb = read_chapter(name)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise RuntimeError(f"chapter {name!r} must have exactly one 'parameters' cell, "
                           f"found {len(cells)}")
    namespace: dict[str, Any] = {}
    exec(compile(cells[0].source, f"<{name} parameters>", "exec"), {}, namespace)
    return namespace


def check_parameters(name: str, parameters: Mapping[str, Any]) -> None:
    """Reject parameters the chapter does not declare, and invalid setting values."""
    declared = chapter_parameters(name)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for chapter {name!r}; "
                         f"it takes {sorted(declared)}")
    merged = {**declared, **parameters}
    settings_args = {k: merged[k] for k in
                     ("domains", "seeds", "pairs", "rounds", "max_epochs", "n_train", "overrides")
                     if k in merged}
    chapter_settings(merged.get("profile", "course"), **settings_args)


def kernel_name() -> str:
    """A kernel that runs *this* Python (the venv with ``lottery`` installed).

    ``python3`` is used when its kernelspec launches ``python`` (jupyter_client maps
    that to ``sys.executable``) or this interpreter; otherwise (e.g. a user-level
    ``python3`` spec pointing elsewhere) a ``lottery-book`` spec is installed into
    ``sys.prefix`` and used.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    try:
        exe = ksm.get_kernel_spec("python3").argv[0]
        if exe in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}") \
                or Path(exe).resolve() == Path(sys.executable).resolve():
            return "python3"
    except NoSuchKernel:
        pass
    name = "lottery-book"
    try:
        spec = ksm.get_kernel_spec(name)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return name
    except NoSuchKernel:
        pass
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix",
                    "--name", name, "--display-name", "Python (lottery-book)"],
                   check=True, capture_output=True)
    return name


class ChapterError(RuntimeError):
    """A chapter raised while executing; the message names the chapter and the cell."""


def execute_chapter(
    name: str,
    profile: str = "course",
    parameters: Mapping[str, Any] | None = None,
    output: Path | None = None,
    book_dir: Path = BOOK_DIR,
    log: Callable[[str], None] = print,
) -> Path:
    """Execute one chapter with papermill; returns the executed notebook's path."""
    import papermill as pm

    params = {"profile": profile, **(parameters or {})}
    check_parameters(name, params)
    output = Path(output) if output else book_dir / EXECUTED_SUBDIR / f"{name}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    nb = read_chapter(name)
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            nb, str(output), parameters=params, kernel_name=kernel_name(),
            cwd=str(output.parent), progress_bar=False, log_output=False,
            request_save_on_cell_execute=False,
        )
    except pm.PapermillExecutionError as exc:
        raise ChapterError(
            f"chapter {name!r} failed in cell {exc.cell_index}: {exc.ename}: {exc.evalue} "
            f"(the executed notebook with the traceback is {output})") from None
    log(f"  {name:<11} {time.perf_counter() - start:6.1f} s  -> {output}")
    return output


def _copy_book_sources(src: Path, dst: Path) -> None:
    """Copy the static book files (config, toc, pages, assets) into a build root."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name in ("_build", EXECUTED_SUBDIR):
            continue
        target = dst / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)


def build_book(
    profile: str = "course",
    parameters: Mapping[str, Any] | None = None,
    chapters: Sequence[str] | None = None,
    book_dir: Path | None = None,
    execute: bool = True,
    html: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Execute the chapters (papermill) and build the HTML (jupyter-book).

    ``parameters`` go to every chapter that declares them (error if none does).
    ``book_dir`` other than ``book/`` gets a copy of the book sources first (tests
    build into a temporary folder). Returns the HTML index.
    """
    root = Path(book_dir) if book_dir else BOOK_DIR
    if root.resolve() != BOOK_DIR.resolve():
        _copy_book_sources(BOOK_DIR, root)
    names = list(EXECUTION_ORDER) if chapters is None else [chapter(c).name for c in chapters]
    parameters = dict(parameters or {})
    if parameters:
        declared = set().union(*(chapter_parameters(n) for n in names))
        unknown = sorted(set(parameters) - declared)
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; the chapters take "
                             f"{sorted(declared)}")
    total = time.perf_counter()
    log(f"lottery book: profile {profile!r}, book at {root}")
    ensure_assets(root, log=log)
    timings_path = root / EXECUTED_SUBDIR / TIMINGS_FILE
    timings: dict[str, float] = {}
    if execute:
        log("executing chapters (papermill):")
        for name in names:
            own = chapter_parameters(name)
            params = {k: v for k, v in parameters.items() if k in own}
            start = time.perf_counter()
            if name == "intro":  # the intro reports the others' timings
                timings_path.parent.mkdir(parents=True, exist_ok=True)
                timings_path.write_text(json.dumps(timings, indent=1))
            execute_chapter(name, profile, params, book_dir=root, log=log)
            timings[name] = round(time.perf_counter() - start, 1)
        timings_path.write_text(json.dumps(timings, indent=1))
    missing = [c.name for c in CHAPTERS
               if not (root / EXECUTED_SUBDIR / f"{c.name}.ipynb").exists()]
    if missing:
        raise RuntimeError(f"not executed yet: {missing}; run without --no-execute")
    index = root / "_build" / "html" / "index.html"
    if html:
        start = time.perf_counter()
        log("building HTML (jupyter-book build --all -W -n --keep-going):")
        cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
               "build", "--all", "-W", "-n", "--keep-going", str(root),
               "--path-output", str(root),  # else _build lands next to _config.yml
               "--config", str(ROOT / "_config.yml"), "--toc", str(ROOT / "_toc.yml")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("jupyter-book build failed:\n" + proc.stdout[-6000:]
                               + proc.stderr[-6000:])
        log(f"  html        {time.perf_counter() - start:6.1f} s  -> {index}")
    log(f"done in {time.perf_counter() - total:.1f} s")
    return index


# ---------------------------------------------------------------------------- golden copies
#: Outputs of cells with these tags are dropped from golden copies and not compared.
IGNORE_TAG = "nbval-ignore-output"


def golden_copy(executed: Path | str):
    """A small golden copy of an executed notebook for nbval.

    Keeps text outputs (tables, glue values), drops the outputs of cells tagged
    ``nbval-ignore-output`` (charts, timings, hardware) and papermill's metadata.
    """
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if IGNORE_TAG in cell.metadata.get("tags", []):
            cell.outputs = []
        for out in cell.get("outputs", []):
            out.get("metadata", {}).pop("papermill", None)
    return nb


def update_golden(profile: str = "smoke", golden_dir: Path = GOLDEN_DIR,
                  log: Callable[[str], None] = print) -> list[Path]:
    """Re-execute every chapter with ``profile`` and rewrite ``tests/golden/*.ipynb``."""
    import nbformat

    golden_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in EXECUTION_ORDER:
            executed = execute_chapter(name, profile, output=Path(tmp) / f"{name}.ipynb",
                                       log=log)
            path = golden_dir / f"{name}.ipynb"
            nbformat.write(golden_copy(executed), str(path))
            written.append(path)
            log(f"  golden      {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return written
