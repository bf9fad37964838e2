"""The shared SentencePiece vocabulary: ids, encoding, determinism and caching."""

from __future__ import annotations

import pickle

import pytest
import torch

from lottery import config
from lottery.data import vocab as vocab_mod
from lottery.data.vocab import Vocab, shared_vocab, train_vocab

DATA = config.DataSettings(domains=("books", "electronics"), n_train=200, n_val=100, n_test=100)
SMALL = config.VocabSettings(vocab_size=600, max_len=50)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache folder and an empty in-process cache."""
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(vocab_mod, "_memory", {})
    return tmp_path


@pytest.fixture
def count_trainings(monkeypatch):
    calls = []
    real = vocab_mod.spm.SentencePieceTrainer.train

    def counting(*args, **kwargs):
        calls.append(kwargs.get("vocab_size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(vocab_mod.spm.SentencePieceTrainer, "train", counting)
    return calls


def test_ids_and_encoding(mirror, fresh_cache):
    v = shared_vocab(DATA, SMALL)
    assert v.pad_id == 0 and v.pieces([0]) == ["<pad>"] and v.unk_id == 1
    assert v.size == 600
    ids = v.encode(["this book is great", "a" * 0, "word " * 200], max_len=SMALL.max_len)
    assert len(ids) == 3 and ids[1] == [] and len(ids[2]) == SMALL.max_len
    assert all(0 < i < v.size for seq in ids for i in seq)
    assert "".join(v.pieces(ids[0])).replace("\u2581", " ").strip() == "this book is great"
    tensor = v.encode_tensor(["great", "this book is great and long"], max_len=4)
    assert tensor.dtype == torch.long and tensor.shape == (2, 4)
    short = len(v.encode("great", 4)[0])
    assert (tensor[0, short:] == 0).all() and (tensor[1] != 0).all()
    assert v.encode_tensor([""], max_len=10).shape == (1, 1)


def test_training_is_deterministic(mirror, fresh_cache):
    texts = vocab_mod.training_texts(DATA)
    assert len(texts) == 400
    assert train_vocab(texts, SMALL) == train_vocab(texts, SMALL)


def test_cached_on_disk_and_in_memory(mirror, fresh_cache, count_trainings):
    first = shared_vocab(DATA, SMALL)
    assert count_trainings == [600]
    assert first.path is not None and first.path.parent == fresh_cache / "vocab"
    assert first.path.suffix == ".model" and len(first.path.stem) == 64
    assert shared_vocab(DATA, SMALL) is first  # in-process
    vocab_mod._memory.clear()
    mtime = first.path.stat().st_mtime_ns
    second = shared_vocab(DATA, SMALL)  # from disk
    assert count_trainings == [600] and second is not first
    assert first.path.stat().st_mtime_ns == mtime
    assert second.pieces(range(second.size)) == first.pieces(range(first.size))
    # max_len does not shape the model: same file; vocab_size does: a new one
    assert shared_vocab(DATA, config.VocabSettings(vocab_size=600, max_len=7)).path == first.path
    other = shared_vocab(DATA, config.VocabSettings(vocab_size=500))
    assert count_trainings == [600, 500] and other.path != first.path and other.size == 500


def test_small_data_gives_a_smaller_vocab_not_an_error(fresh_cache):
    proto = train_vocab(["the cat sat on the mat", "a dog barked at night"] * 3,
                        config.VocabSettings(vocab_size=8000))
    v = Vocab(proto)
    assert 2 < v.size < 8000 and v.pad_id == 0


def test_pickle_round_trip(mirror, fresh_cache):
    v = shared_vocab(DATA, SMALL)
    clone = pickle.loads(pickle.dumps(v))
    assert clone.size == v.size and clone.encode(["nice"], 10) == v.encode(["nice"], 10)


def test_course_vocab_has_8000_pieces(mirror, fresh_cache):
    course = config.get_profile("course")
    v = shared_vocab(course.data, course.vocab)
    assert v.size == 8000 and v.pad_id == 0
