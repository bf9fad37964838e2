"""What the chapters display besides the analyses: tables about the data and the
divergences, the run's provenance (machine, data source, compute, build timings), and
the glue that pastes computed values into the prose.

Each function returns a frame or dict that a notebook cell shows as is, so the cells
stay one line and the tables are tested here rather than eyeballed in the book.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from lottery.data import get_dataset
from lottery.experiment.labels import display_name, pct


# ---------------------------------------------------------------------------- data chapter
def domain_table(domains: Sequence[str], dataset: str = "fdu-mtl") -> pd.DataFrame:
    """Display names next to the dataset's domain names (the paper's for FDU-MTL)."""

    spec = get_dataset(dataset)
    title = "paper (Amazon category)" if spec.downloadable else "shown as"
    return pd.DataFrame({title: [display_name(d) for d in domains],
                         "dataset domain": list(domains),
                         "format": [spec.format_of(d) for d in domains]}).set_index(title)


def dataset_facts(data: Any) -> dict[str, Any]:
    """Name, provenance, licence and files of the dataset ``data`` reads."""

    spec = get_dataset(data.dataset)
    name = Path(spec.name).name if spec.name.endswith(".json") else spec.name
    return {"dataset": name, "provenance": spec.provenance, "licence": spec.licence,
            "source": spec.url or "your files (dataset spec)",
            "files": {d: [Path(f).name for f in spec.files[d]] for d in data.domains}}


def dataset_table(facts: Mapping[str, Any]) -> pd.DataFrame:
    rows = [("dataset", facts["dataset"]), ("provenance", facts["provenance"] or "not stated"),
            ("licence", facts["licence"] or "not stated"), ("source", facts["source"])]
    rows += [(f"files: {display_name(d)}", ", ".join(f)) for d, f in facts["files"].items()]
    return pd.DataFrame(rows, columns=["", "value"]).set_index("")


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


