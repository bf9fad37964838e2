"""A domain's splits as token ids, encoded once and shared through the cache.

Reading and encoding a domain (parse the review files, balance, split, SentencePiece)
costs seconds to minutes at paper scale, and every worker process of a cluster would
otherwise do it again for every domain. The encoded splits are therefore stored in
``<cache>/encoded/<domain>-<hash>.pt``, keyed by the data and vocabulary settings, the
data's content fingerprint and the vocabulary model's digest; the first process writes
the file (first writer wins), every later one loads it. Within a process the result is
also kept in memory. The ids are exactly those :func:`~lottery.engine.train.encode_split`
returns, so the numbers do not depend on whether the file existed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import torch

from lottery import config
from lottery.config import DataSettings, VocabSettings
from lottery.data import load_splits
from lottery.data.fingerprint import data_fingerprint
from lottery.data.vocab import shared_vocab
from lottery.engine.durable import CorruptFile, load_tensors, torch_writer, write_once
from lottery.engine.store import settings_hash
from lottery.engine.train import EncodedSplit, encode_split

SPLITS = ("train", "val", "test")


class DomainData(NamedTuple):
    vocab: Any
    train: EncodedSplit
    val: EncodedSplit
    test: EncodedSplit


def domain_data(data: DataSettings, vocab_settings: VocabSettings, domain: str) -> DomainData:
    """A domain's splits encoded with the shared vocabulary (cached on disk and per
    process, keyed by the data's content, so a changed file is read again)."""
    return _domain_data(data, vocab_settings, domain, data_fingerprint(data), str(config.cache_dir()))


@lru_cache(maxsize=32)
def _domain_data(data: DataSettings, vocab_settings: VocabSettings, domain: str,
                 content: str | None, cache: str) -> DomainData:
    vocab = shared_vocab(data, vocab_settings)
    key = settings_hash({"data": data, "vocab": vocab_settings, "domain": domain, "content": content,
                         "vocab_model": vocab.digest[:16], "format": 1})
    path = config.cache_dir() / "encoded" / f"{domain}-{key}.pt"
    try:
        return DomainData(vocab, *_unpack(load_tensors(path)))
    except (FileNotFoundError, CorruptFile, KeyError):
        pass
    splits = load_splits(data, domain)
    enc = [encode_split(vocab, df["text"].tolist(), df["label"].tolist(), vocab_settings.max_len)
           for df in (splits.train, splits.val, splits.test)]
    try:
        write_once(path, torch_writer(_pack(enc)))
    except OSError:            # a read-only cache only costs the speed-up
        pass
    return DomainData(vocab, *enc)


def _pack(splits: list[EncodedSplit]) -> dict[str, torch.Tensor]:
    out = {}
    for name, split in zip(SPLITS, splits):
        out[f"{name}.ids"] = torch.cat(split.ids) if split.ids else torch.zeros(0, dtype=torch.long)
        out[f"{name}.lengths"] = split.lengths
        out[f"{name}.labels"] = split.labels
    return out


def _unpack(state: dict[str, torch.Tensor]) -> list[EncodedSplit]:
    return [EncodedSplit(ids=list(state[f"{n}.ids"].split(state[f"{n}.lengths"].tolist())),
                         labels=state[f"{n}.labels"]) for n in SPLITS]
