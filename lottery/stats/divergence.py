"""Jensen-Shannon divergence between domains' subword unigram distributions (§3, Fig. 1).

Each domain's distribution is the relative frequency of every piece of the shared
vocabulary in that domain's *training* texts. There is no smoothing: JSD compares
each distribution with the mixture ``m = (p + q) / 2``, which is positive wherever
``p`` or ``q`` is, so zero counts keep it finite (unlike KL(p||q) itself).

Log base: 2, so that JSD lies in [0, 1] (1 = disjoint supports). The paper does not
state its base; with natural logs every value would be ``ln 2 ~ 0.693`` times ours, so
only the scale of Fig. 1, not its ordering, depends on this choice. Like Fig. 1 we
also report ``jsd_x1e5 = JSD * 1e5`` for display.
"""

from __future__ import annotations

import itertools

from typing import Any

import numpy as np
import pandas as pd

from lottery import config, data as lottery_data
from lottery.data.vocab import Vocab, shared_vocab

DISPLAY_SCALE = 1e5


def unigram_distributions(vocab: Vocab, texts_by_domain: dict[str, list[str]]) -> pd.DataFrame:
    """Rows: domains; columns: piece ids ``0..vocab.size-1``; values: probabilities.

    Pieces are counted over all of a domain's texts without truncation. The padding id
    never occurs in encoded text, so its column is 0; ``<unk>`` is counted like any
    piece (it is part of the shared support). No smoothing (see module docstring).
    """
    rows = {}
    for domain, texts in texts_by_domain.items():
        ids = [i for seq in vocab.encode(list(texts), max_len=np.iinfo(np.int32).max)
               for i in seq]
        counts = np.bincount(np.asarray(ids, dtype=np.int64), minlength=vocab.size).astype(float)
        counts[vocab.pad_id] = 0.0
        total = counts.sum()
        if total == 0:
            raise ValueError(f"domain {domain!r} has no text to count pieces in")
        rows[domain] = counts / total
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.columns.name = "piece_id"
    frame.index.name = "domain"
    return frame


def _as_distribution(x: np.ndarray | pd.Series, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if np.any(arr < 0) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite and non-negative")
    total = arr.sum()
    if total <= 0:
        raise ValueError(f"{name} must have positive mass")
    return arr / total


def kl(p: np.ndarray, q: np.ndarray, base: float = 2) -> float:
    """Eq. 2 for discrete distributions: sum_x p(x) log(p(x)/q(x)), terms with p(x)=0 are 0.

    Infinite if q(x)=0 where p(x)>0 (never the case for q = m in :func:`jsd`).
    """
    mask = p > 0
    with np.errstate(divide="ignore"):
        terms = p[mask] * (np.log(p[mask]) - np.log(q[mask]))
    return float(terms.sum() / np.log(base))


def jsd(p: np.ndarray | pd.Series, q: np.ndarray | pd.Series, base: float = 2) -> float:
    """Eq. 1: JSD(p||q) = KL(p||m)/2 + KL(q||m)/2 with m = (p+q)/2.

    Inputs are normalised to sum 1. In base 2 the result is in [0, 1]. Equals
    ``scipy.spatial.distance.jensenshannon(p, q, base) ** 2`` (scipy returns the root).
    """
    p = _as_distribution(p, "p")
    q = _as_distribution(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q need the same support, got sizes {p.size} and {q.size}")
    m = 0.5 * (p + q)
    value = 0.5 * kl(p, m, base) + 0.5 * kl(q, m, base)
    return max(value, 0.0)  # clip -1e-17 rounding noise for identical inputs


def jsd_table(distributions: pd.DataFrame, base: float = 2) -> pd.DataFrame:
    """Tidy JSD for every ordered pair of rows (diagonal included)."""
    records = []
    for a, b in itertools.product(distributions.index, repeat=2):
        value = 0.0 if a == b else jsd(distributions.loc[a].to_numpy(),
                                       distributions.loc[b].to_numpy(), base)
        records.append({"domain_a": a, "domain_b": b, "jsd": value,
                        "jsd_x1e5": value * DISPLAY_SCALE})
    return pd.DataFrame.from_records(records)


def jsd_matrix(data: config.DataSettings, vocab: config.VocabSettings) -> pd.DataFrame:
    """Fig. 1 in tidy form: columns ``domain_a``, ``domain_b``, ``jsd``, ``jsd_x1e5``.

    Trains (or loads) the shared vocabulary on ``data.domains`` and compares the
    domains' training-text unigram distributions. Domain names are canonical.
    """
    model = shared_vocab(data, vocab)
    domains = [lottery_data.resolve_domain(d, data.dataset) for d in data.domains]
    texts = {d: list(lottery_data.load_splits(data, d).train["text"]) for d in domains}
    return jsd_table(unigram_distributions(model, texts))


def to_square(table: pd.DataFrame, value: str = "jsd") -> pd.DataFrame:
    """Pivot the tidy table to a square domain x domain matrix, keeping domain order."""
    order = list(dict.fromkeys(table["domain_a"]))
    square = table.pivot(index="domain_a", columns="domain_b", values=value)
    return square.loc[order, order]


def extreme_pairs(table: pd.DataFrame) -> tuple[tuple[str, str, float], tuple[str, str, float]]:
    """(most similar, least similar) unordered pair as ``(a, b, jsd)``, diagonal excluded."""
    order = {d: i for i, d in enumerate(dict.fromkeys(table["domain_a"]))}
    off = table[table["domain_a"].map(order) < table["domain_b"].map(order)]
    if off.empty:
        raise ValueError("need at least two domains to compare")
    lo = off.loc[off["jsd"].idxmin()]
    hi = off.loc[off["jsd"].idxmax()]
    return ((lo["domain_a"], lo["domain_b"], float(lo["jsd"])),
            (hi["domain_a"], hi["domain_b"], float(hi["jsd"])))


def jsd_extremes(jsd: pd.DataFrame) -> dict[str, Any]:
    """Most and least similar pair of distinct domains (each unordered pair once)."""

    (la, lb, lo), (ha, hb, hi) = extreme_pairs(jsd)
    off = jsd[jsd["domain_a"] != jsd["domain_b"]]
    return {
        "most_similar": (la, lb), "most_similar_jsd_x1e5": lo * 1e5,
        "least_similar": (ha, hb), "least_similar_jsd_x1e5": hi * 1e5,
        "mean_jsd_x1e5": float(off["jsd_x1e5"].mean()),
    }
