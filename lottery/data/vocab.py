"""The shared subword vocabulary (paper §4.1).

One SentencePiece BPE model is trained on the concatenated *training* texts of all
domains in ``data.domains`` (the paper: five domains, 100K reviews, 8K pieces,
character coverage 0.9995). Sharing it gives every domain the same input support,
which both the divergence scores (§3) and ticket transfer (§4.3.3) need.

Choices the paper leaves open, fixed here:

- ids: ``pad_id=0`` (so the embedding's row 0 is padding), ``unk_id=1``, no BOS/EOS
  (a CNN classifier has no use for them);
- each review is one training "sentence", in domain order then split order, without
  shuffling or input sampling, on one thread: two trainings give identical models;
- ``max_sentence_length`` is raised to 64 KiB so long reviews are not silently dropped;
- ``hard_vocab_limit=False``: on small data (the smoke profile) where ``vocab_size``
  pieces cannot be formed, SentencePiece makes as many as it can instead of failing,
  so ``vocab_size`` is an upper bound. :attr:`Vocab.size` is the real number of pieces,
  and the size of the embedding table.

Models are cached on disk as ``cache_dir()/vocab/<sha256>.model``, keyed by the
training texts and the settings that shape the model, and in-process.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch

from lottery import config, data as lottery_data

_MAX_SENTENCE_BYTES = 1 << 16

# (DataSettings, VocabSettings, cache folder) -> Vocab, for this process.
_memory: dict[tuple[config.DataSettings, config.VocabSettings, str], "Vocab"] = {}


class Vocab:
    """A trained SentencePiece model with the few operations the project needs."""

    def __init__(self, model_proto: bytes, path: Path | None = None):
        self._proto = model_proto
        self.path = path
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        if self._sp.pad_id() != 0:
            raise ValueError(f"expected a model with pad_id 0, got {self._sp.pad_id()}")

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        path = Path(path)
        return cls(path.read_bytes(), path)

    @property
    def size(self) -> int:
        """Number of pieces (= rows of the embedding table)."""
        return self._sp.get_piece_size()

    @property
    def pad_id(self) -> int:
        return self._sp.pad_id()

    @property
    def unk_id(self) -> int:
        return self._sp.unk_id()

    def encode(self, texts: str | Sequence[str], max_len: int) -> list[list[int]]:
        """Piece ids per text, truncated to ``max_len`` (no padding)."""
        if isinstance(texts, str):
            texts = [texts]
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        return [ids[:max_len] for ids in self._sp.encode(list(texts), out_type=int)]

    def encode_tensor(self, texts: str | Sequence[str], max_len: int) -> torch.LongTensor:
        """``(len(texts), L)`` ids padded with ``pad_id`` to the longest text, ``L <= max_len``.

        ``L`` is at least 1, so an all-empty batch still has a (padding) column.
        """
        encoded = self.encode(texts, max_len)
        width = max([len(ids) for ids in encoded] + [1])
        out = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        for row, ids in enumerate(encoded):
            if ids:
                out[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out  # type: ignore[return-value]

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """The pieces of ``ids``, for display."""
        return [self._sp.id_to_piece(int(i)) for i in ids]

    def __getstate__(self) -> dict:  # picklable, e.g. for DataLoader workers
        return {"model_proto": self._proto, "path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["model_proto"], state["path"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Vocab(size={self.size}, path={self.path})"


def _trainer_options(vocab: config.VocabSettings) -> dict:
    """Everything that shapes the model (``max_len`` does not: it is used at encoding)."""
    return dict(vocab_size=vocab.vocab_size, character_coverage=vocab.character_coverage,
                model_type=vocab.model_type, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
                hard_vocab_limit=False, input_sentence_size=0, shuffle_input_sentence=False,
                max_sentence_length=_MAX_SENTENCE_BYTES, num_threads=1, minloglevel=2)


def train_vocab(texts: Sequence[str], vocab: config.VocabSettings) -> bytes:
    """Train a SentencePiece model in memory on ``texts``; returns the model bytes."""
    if not texts:
        raise ValueError("cannot train a vocabulary on no texts")
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=buffer,
                                   **_trainer_options(vocab))
    return buffer.getvalue()


def training_texts(data: config.DataSettings) -> list[str]:
    """The concatenated training texts of ``data.domains`` (in that order)."""
    return [text for domain in data.domains
            for text in lottery_data.load_splits(data, domain).train["text"]]


def vocab_key(texts: Sequence[str], vocab: config.VocabSettings) -> str:
    """sha256 of the training texts, the trainer options and the SentencePiece version."""
    digest = hashlib.sha256()
    options = dict(_trainer_options(vocab), sentencepiece=spm.__version__)
    digest.update(json.dumps(options, sort_keys=True).encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\n\x00")
    return digest.hexdigest()


def shared_vocab(data: config.DataSettings, vocab: config.VocabSettings) -> Vocab:
    """The shared vocabulary for ``data.domains``, trained once and cached (disk + memory)."""
    cache = config.cache_dir()
    memo_key = (data, vocab, str(cache))
    if memo_key in _memory:
        return _memory[memo_key]
    texts = training_texts(data)
    path = cache / "vocab" / f"{vocab_key(texts, vocab)}.model"
    if path.is_file():
        result = Vocab.load(path)
    else:
        proto = train_vocab(texts, vocab)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: a concurrent reader never sees half a model.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(proto)
        os.replace(tmp, path)
        result = Vocab(proto, path)
    _memory[memo_key] = result
    return result
