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
training texts and the settings that shape the model, and in-process. A small index
(``vocab/index/``) notes which model belongs to which data settings and content, so a
process finds it without reading every domain's reviews again.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch

from lottery import config, data as lottery_data
from lottery.data.errors import DataUnavailableError
from lottery.data.fingerprint import data_fingerprint

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

    @property
    def digest(self) -> str:
        """SHA-256 of the model bytes (what encoded data is keyed by)."""
        return hashlib.sha256(self._proto).hexdigest()

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
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=buffer,
                                       **_trainer_options(vocab))
    except RuntimeError as exc:        # e.g. fewer pieces than the texts' characters need
        need = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", str(exc))
        if need:
            raise ValueError(f"setting vocab.vocab_size = {need.group(1)} is too small: the training "
                             f"texts need at least {need.group(2)} pieces for their characters "
                             f"(at character_coverage {vocab.character_coverage})") from None
        raise ValueError(f"SentencePiece cannot train the vocabulary with vocab.vocab_size = "
                         f"{vocab.vocab_size}: {str(exc).splitlines()[0]}") from None
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


def _index_path(data: config.DataSettings, vocab: config.VocabSettings, cache: Path) -> Path:
    """Where the model key of (data settings, data content, vocab settings) is noted, so
    that a process that needs the vocabulary does not read every domain's reviews to
    find it (each cluster worker would otherwise do so). The data's content enters
    through :func:`data_fingerprint` (user files) or the dataset's pinned checksums."""
    ident = {"data": dataclasses.asdict(data), "content": data_fingerprint(data),
             "vocab": _trainer_options(vocab), "sentencepiece": spm.__version__}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()
    return cache / "vocab" / "index" / f"{digest[:32]}.json"


def _write_model(path: Path, proto: bytes) -> None:
    """Write-then-rename: a concurrent reader never sees half a model; a full disk
    leaves no ``.part`` file behind and says which file it could not write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(proto)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if exc.errno in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", 122)):
            raise DataUnavailableError(f"{path}: cannot write the vocabulary (no space left: disk full, "
                                       f"quota or file-size limit); free some space or set "
                                       f"LOTTERY_CACHE_DIR to a larger disk") from None
        raise


def shared_vocab(data: config.DataSettings, vocab: config.VocabSettings) -> Vocab:
    """The shared vocabulary for ``data.domains``, trained once and cached (disk + memory)."""
    cache = config.cache_dir()
    memo_key = (data, vocab, str(cache))
    if memo_key in _memory:
        return _memory[memo_key]
    index = _index_path(data, vocab, cache)
    known = cache / "vocab" / f"{index.read_text().strip()}.model" if index.is_file() else None
    if known is not None and known.is_file():
        result = Vocab.load(known)
    else:
        texts = training_texts(data)
        path = cache / "vocab" / f"{vocab_key(texts, vocab)}.model"
        if path.is_file():
            result = Vocab.load(path)
        else:
            proto = train_vocab(texts, vocab)
            _write_model(path, proto)
            result = Vocab(proto, path)
        try:
            index.parent.mkdir(parents=True, exist_ok=True)
            index.write_text(path.stem)
        except OSError:           # a read-only cache only costs the speed-up
            pass
    _memory[memo_key] = result
    return result
