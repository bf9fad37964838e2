"""Balanced, seeded train/val/test splits per domain (paper §3: 20K/10K/10K).

How a review is chosen. Each review's whitespace-normalised text gets a 64-bit key,
``blake2b(text, key=split_seed)``; per class we keep the reviews with the smallest
keys, as many as the three splits need, in one streaming pass with a bounded heap.
The smallest keys go to train, the next to val, the next to test. This is a uniform
random sample without replacement (the key is a seeded hash), and it has the
properties the book relies on:

- *balanced*: each split takes exactly n/2 reviews of each class;
- *deduplicated*: identical texts (after normalising whitespace) have identical keys,
  so each text is kept once; a text seen with both labels is dropped, as ambiguous;
- *disjoint*: a text is assigned to one split only;
- *reproducible*: it depends only on the texts and ``split_seed`` (not on file order
  or the number of worker processes), and memory is bounded by the split sizes, so
  a multi-GB source file streams through.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import pandas as pd

from lottery import config
from lottery.data.download import ensure_files, MIRROR_ENV
from lottery.data.errors import NotEnoughReviewsError
from lottery.data.fingerprint import data_fingerprint
from lottery.data.readers import DataWarning, OnError, ReadReport, Review, read_reviews
from lottery.data.registry import get_dataset, resolve_domain

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Fewer reviews than this per class and split make accuracies meaningless (a warning).
TINY_PER_CLASS = 50
LABEL_NAMES: dict[int, str] = {0: "negative", 1: "positive"}


@dataclass(frozen=True)
class DomainSplits:
    """A domain's three splits: DataFrames with columns ``text`` (str), ``label`` (0/1)."""

    domain: str
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def split(self, name: str) -> pd.DataFrame:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {SPLITS}")
        return getattr(self, name)

    def copy(self) -> "DomainSplits":
        return DomainSplits(self.domain, self.train.copy(), self.val.copy(), self.test.copy())


def normalise(text: str) -> str:
    """Collapse all whitespace (incl. newlines) to single spaces; the dedup key."""
    return " ".join(text.split())


def _key(text: str, seed: int) -> int:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8,
                             key=str(seed).encode("ascii")).digest()
    return int.from_bytes(digest, "big")


def _per_class(data: config.DataSettings) -> tuple[int, int, int]:
    """Reviews per class of each split. The sizes are even (checked once, with the
    settings: :func:`lottery.experiment.validate.resolve`); whether the dataset has that
    many reviews is decided here, by the data (:class:`NotEnoughReviewsError`)."""
    return data.n_train // 2, data.n_val // 2, data.n_test // 2


def sample_balanced(reviews: Iterable[Review], domain: str, per_class: tuple[int, int, int],
                    seed: int) -> dict[str, pd.DataFrame]:
    """Stream ``reviews`` once and return ``{"train"|"val"|"test": DataFrame}``.

    ``per_class`` is the number of reviews of *each* class per split.
    Raises :class:`NotEnoughReviewsError` naming the domain, class, needed and
    available counts when a class has too few distinct texts.
    """
    need = sum(per_class)
    # A small margin, because texts later found with the other label are removed.
    cap = need + max(16, need // 100)
    heaps: dict[int, list[int]] = {0: [], 1: []}  # max-heaps of keys (stored negated)
    kept: dict[int, dict[int, str]] = {0: {}, 1: {}}
    conflicts: set[int] = set()
    for review in reviews:
        text = normalise(review.text)
        if not text:
            continue
        k = _key(text, seed)
        label = review.label
        if k in kept[1 - label]:
            conflicts.add(k)
            continue
        if k in kept[label] or k in conflicts:
            continue
        heap = heaps[label]
        if len(heap) < cap:
            heapq.heappush(heap, -k)
            kept[label][k] = text
        elif k < -heap[0]:
            evicted = -heapq.heappushpop(heap, -k)
            del kept[label][evicted]
            kept[label][k] = text

    rows: dict[str, list[tuple[int, str, int]]] = {s: [] for s in SPLITS}
    for label in (0, 1):
        keys = sorted(k for k in kept[label] if k not in conflicts)
        if len(keys) < need:
            raise NotEnoughReviewsError(
                f"domain {domain!r} has {len(keys)} distinct {LABEL_NAMES[label]} reviews "
                f"(label {label}, after dropping duplicates and 3-star ratings) but the splits "
                f"need {need} (n_train/2 + n_val/2 + n_test/2 = {' + '.join(map(str, per_class))})."
                f" Lower data.n_train/n_val/n_test, e.g. --set data.n_train=...")
        start = 0
        for split, n in zip(SPLITS, per_class):
            rows[split].extend((k, kept[label][k], label) for k in keys[start:start + n])
            start += n
    frames = {}
    for split in SPLITS:
        ordered = sorted(rows[split])  # by key: classes interleaved at random
        frames[split] = pd.DataFrame({"text": pd.Series([t for _, t, _ in ordered], dtype=object),
                                      "label": pd.Series([y for _, _, y in ordered],
                                                         dtype="int64")})
    return frames


def iter_domain_reviews(dataset: str, domain: str, on_error: OnError = "skip",
                        report: ReadReport | None = None) -> Iterator[Review]:
    """All labelled reviews of a domain, streamed from its verified files in order.

    For FDU-MTL these are ``<domain>.task.train`` then ``.task.test`` (the unlabelled
    ``.task.unlabel`` is not used): the pool is re-split to the requested sizes.
    """
    spec = get_dataset(dataset)
    canonical = resolve_domain(domain, dataset)
    paths = ensure_files(spec, spec.files[canonical])
    fmt = spec.format_of(canonical)
    return chain.from_iterable(read_reviews(p, fmt, on_error, report) for p in paths)


def load_splits(data: config.DataSettings, domain: str) -> DomainSplits:
    """Balanced train/val/test of ``domain`` under ``data`` (cached in-process).

    Accepts canonical, case-insensitive and paper names ('Movies' -> 'dvd'). Malformed
    records are skipped and reported as a ``DataWarning`` (use :func:`iter_domain_reviews`
    with ``on_error="raise"`` to be strict). The returned frames are copies: mutate freely.
    """
    canonical = resolve_domain(domain, data.dataset)
    spec = get_dataset(data.dataset)
    files = tuple(spec.files[canonical])
    return _load_splits_cached(data, canonical, spec.format_of(canonical), files,
                               os.environ.get(MIRROR_ENV, ""), str(config.cache_dir()),
                               data_fingerprint(data)).copy()


@lru_cache(maxsize=64)
def _load_splits_cached(data: config.DataSettings, domain: str, fmt: str,
                        files: tuple[str, ...], mirror: str, cache: str,
                        content: str | None) -> DomainSplits:
    # fmt, files, mirror, cache and content are part of the key only: a re-registered
    # dataset, another mirror / cache folder or a changed file must not be served from
    # a stale entry.
    per_class = _per_class(data)
    reviews = iter_domain_reviews(data.dataset, domain)
    frames = sample_balanced(reviews, domain, per_class, data.split_seed)
    if min(per_class) < TINY_PER_CLASS:
        warnings.warn(f"{domain}: a split has {min(per_class)} reviews per class (< "
                      f"{TINY_PER_CLASS}): its accuracies are dominated by noise", DataWarning,
                      stacklevel=3)
    replaced = sum(t.count("\ufffd") for f in frames.values() for t in f["text"])
    if replaced:
        warnings.warn(f"{domain}: {replaced} bytes that are not valid UTF-8 were replaced by "
                      f"U+FFFD in the sampled reviews", DataWarning, stacklevel=3)
    return DomainSplits(domain, frames["train"], frames["val"], frames["test"])


def _domains(data: config.DataSettings) -> list[str]:
    return [resolve_domain(d, data.dataset) for d in data.domains]


def review_lengths(data: config.DataSettings) -> pd.DataFrame:
    """One row per review: domain, split, label, n_words (whitespace tokens); for the
    book's length histogram."""
    parts = []
    for domain in _domains(data):
        splits = load_splits(data, domain)
        for split in SPLITS:
            df = splits.split(split)
            parts.append(pd.DataFrame({"domain": domain, "split": split, "label": df["label"],
                                       "n_words": df["text"].str.split().str.len()}))
    return pd.concat(parts, ignore_index=True)


def split_summary(data: config.DataSettings) -> pd.DataFrame:
    """Tidy counts: domain, split, label, n_reviews, mean_words, median_words."""
    lengths = review_lengths(data)
    out = (lengths.groupby(["domain", "split", "label"], sort=False)["n_words"]
           .agg(n_reviews="size", mean_words="mean", median_words="median").reset_index())
    order = {d: i for i, d in enumerate(_domains(data))}
    return (out.sort_values(["domain", "split", "label"],
                            key=lambda col: col.map(order) if col.name == "domain"
                            else col.map(SPLITS.index) if col.name == "split" else col)
            .reset_index(drop=True))
