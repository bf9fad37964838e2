"""Registry, balanced splits, and the verified download/mirror path (never the network)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path
from urllib.error import URLError

import pandas as pd
import pytest

from lottery import config, data
from lottery.experiment import validate as experiment
from lottery.data import download

COURSE = config.get_profile("course").data
SMALL = config.DataSettings(domains=("books", "dvd"), n_train=200, n_val=100, n_test=100)


# ------------------------------------------------------------------ registry

def test_all_sixteen_fdu_domains_resolve():
    assert len(data.FDU_MTL_DOMAINS) == 16
    for domain in data.FDU_MTL_DOMAINS:
        assert data.resolve_domain(domain) == domain
        assert data.resolve_domain(domain.upper()) == domain


@pytest.mark.parametrize("paper, canonical", [("Books", "books"), ("movies", "dvd"),
                                              ("CDS", "music"), ("home", "kitchen_housewares"),
                                              ("Electronics", "electronics"), ("mr", "MR")])
def test_paper_names_resolve_case_insensitively(paper, canonical):
    assert data.resolve_domain(paper) == canonical


def test_unknown_domain_lists_valid_names():
    with pytest.raises(ValueError) as info:
        data.resolve_domain("garden")
    message = str(info.value)
    assert "'garden'" in message and "kitchen_housewares" in message and "Movies" in message


def test_paper_name_and_registry():
    assert data.paper_name("dvd") == "Movies" and data.paper_name("music") == "CDs"
    assert data.paper_name("imdb") == "imdb"
    assert {"fdu-mtl", "blitzer"} <= set(data.DATASETS)
    assert data.resolve_domain("kitchen_&_housewares", "blitzer") == "kitchen_housewares"
    assert data.resolve_domain("Home", "blitzer") == "kitchen_housewares"
    with pytest.raises(ValueError, match="unknown dataset"):
        data.resolve_domain("books", "yelp")


# ------------------------------------------------------------------ splits

def _texts(df: pd.DataFrame) -> set[str]:
    return set(df["text"])


def test_course_splits_sizes_balance_disjoint(mirror):
    for domain in COURSE.domains:
        splits = data.load_splits(COURSE, domain)
        assert splits.domain == domain
        for name, n in (("train", 1200), ("val", 300), ("test", 400)):
            df = splits.split(name)
            assert list(df.columns) == ["text", "label"] and len(df) == n
            assert df["label"].dtype.kind == "i" and set(df["label"]) == {0, 1}
            assert (df["label"] == 1).sum() == n // 2
            assert df["text"].map(type).eq(str).all() and df["text"].str.len().gt(0).all()
        train, val, test = _texts(splits.train), _texts(splits.val), _texts(splits.test)
        assert len(train) == 1200 and len(val) == 300 and len(test) == 400  # no dups within
        assert not (train & val) and not (train & test) and not (val & test)


def test_paper_name_gives_the_same_splits_and_copies_are_independent(mirror):
    a = data.load_splits(COURSE, "Movies")
    b = data.load_splits(COURSE, "dvd")
    assert a.domain == "dvd"
    pd.testing.assert_frame_equal(a.train, b.train)
    a.train.loc[0, "text"] = "mutated"
    assert data.load_splits(COURSE, "dvd").train.loc[0, "text"] != "mutated"


def test_split_seed_reproducible_and_different(mirror):
    a = data.load_splits(SMALL, "books")
    data.splits._load_splits_cached.cache_clear()
    b = data.load_splits(SMALL, "books")
    pd.testing.assert_frame_equal(a.train, b.train)
    pd.testing.assert_frame_equal(a.test, b.test)
    c = data.load_splits(config.override(SMALL, split_seed=1), "books")
    assert _texts(a.train) != _texts(c.train)


def test_split_summary_and_lengths(mirror):
    summary = data.split_summary(SMALL)
    assert list(summary.columns[:4]) == ["domain", "split", "label", "n_reviews"]
    assert len(summary) == 2 * 3 * 2
    assert summary["domain"].iloc[0] == "books" and summary["split"].iloc[0] == "train"
    counts = summary.set_index(["domain", "split", "label"])["n_reviews"]
    assert counts[("dvd", "val", 1)] == 50 and counts[("books", "train", 0)] == 100
    lengths = data.review_lengths(SMALL)
    assert len(lengths) == 2 * 400 and (lengths["n_words"] > 0).all()


def _register(tmp_path: Path, lines: list[str], name: str = "tiny") -> str:
    path = tmp_path / "tiny.task.train"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data.register_dataset(name, "fdu-mtl", {"things": [path]})
    return name


def test_duplicates_removed_after_whitespace_normalisation(tmp_path):
    lines = [f"{i % 2}\treview number {i}" for i in range(40)]
    lines += ["1\treview   number\t 1", "1\treview number 1 ", "0\treview number 0"]  # dups
    lines += ["0\tsame text both labels", "1\tsame text both labels"]  # ambiguous: dropped
    name = _register(tmp_path, lines)
    settings = config.DataSettings(dataset=name, domains=("things",), n_train=20, n_val=10,
                                   n_test=10)
    splits = data.load_splits(settings, "things")
    every = pd.concat([splits.train, splits.val, splits.test])
    assert len(every) == 40 and every["text"].is_unique
    assert "same text both labels" not in set(every["text"])
    with pytest.raises(data.NotEnoughReviewsError):  # only 20 distinct per class remain
        data.load_splits(config.override(settings, n_train=22), "things")


def test_too_few_reviews_names_domain_class_needed_available(mirror):
    settings = config.DataSettings(domains=("baby",), n_train=1200, n_val=300, n_test=400)
    with pytest.raises(data.NotEnoughReviewsError) as info:
        data.load_splits(settings, "baby")
    message = str(info.value)
    assert "'baby'" in message and "negative" in message
    assert "877" in message and "950" in message  # available, needed


def test_odd_split_size_is_rejected_by_the_validator():
    with pytest.raises(ValueError, match="data.n_val must be an even integer"):
        experiment.from_profile("smoke", {"data.n_val": 101})


def test_blitzer_dataset_uses_star_labels(mirror):
    settings = config.DataSettings(dataset="blitzer", domains=("Home",), n_train=400,
                                   n_val=100, n_test=100)
    splits = data.load_splits(settings, "Home")
    assert splits.domain == "kitchen_housewares"
    assert len(splits.train) == 400 and splits.train["label"].sum() == 200
    assert "\n" not in splits.train["text"].iloc[0]  # whitespace normalised


def test_json_dataset_spec_for_user_files(mirror, tmp_path):
    spec = tmp_path / "mine.json"
    shutil.copy(mirror / "format-samples/mcauley2014/Electronics_small.json", tmp_path / "e.json")
    spec.write_text(json.dumps({"format": "mcauley2014", "domains": {"gadgets": ["e.json"]}}))
    settings = config.DataSettings(dataset=str(spec), domains=("gadgets",), n_train=40,
                                   n_val=10, n_test=10)
    splits = data.load_splits(settings, "GADGETS")
    assert splits.domain == "gadgets" and (splits.test["label"] == 0).sum() == 5


def test_registered_missing_file_is_unavailable(tmp_path):
    data.register_dataset("ghost", "mcauley2014", {"books": [tmp_path / "nope.json"]})
    with pytest.raises(data.DataUnavailableError, match="nope.json"):
        data.load_splits(config.DataSettings(dataset="ghost", domains=("books",)), "books")


# ------------------------------------------------------------------ download and mirror

def _tmp_mirror(mirror: Path, tmp_path: Path, domains=("books",)) -> Path:
    root = tmp_path / "mirror"
    (root / "fdu-mtl").mkdir(parents=True)
    for d in domains:
        for part in ("train", "test"):
            shutil.copy(mirror / f"fdu-mtl/{d}.task.{part}", root / f"fdu-mtl/{d}.task.{part}")
    return root


def test_shipped_checksums_cover_every_file_used():
    sums = download.load_checksums("fdu-mtl.sha256")
    used = [rel for rels in data.DATASETS["fdu-mtl"].files.values() for rel in rels]
    assert len(used) == 32 and all(len(sums[rel]) == 64 for rel in used)
    blitzer = download.load_checksums("blitzer.sha256")
    assert all(rel in blitzer for rels in data.DATASETS["blitzer"].files.values() for rel in rels)


def test_mirror_checksum_mismatch(mirror, tmp_path, monkeypatch):
    root = _tmp_mirror(mirror, tmp_path)
    with open(root / "fdu-mtl/books.task.test", "a", encoding="utf-8") as fh:
        fh.write("1\tan extra line that was never there\n")
    monkeypatch.setenv("LOTTERY_DATA_MIRROR", str(root))
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_splits(SMALL, "books")
    assert "checksum mismatch" in str(info.value) and "books.task.test" in str(info.value)


def test_mirror_missing_file(mirror, tmp_path, monkeypatch):
    root = _tmp_mirror(mirror, tmp_path)
    monkeypatch.setenv("LOTTERY_DATA_MIRROR", str(root))
    assert len(data.load_splits(SMALL, "books").train) == 200  # complete domain works
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_splits(SMALL, "dvd")
    assert "dvd.task.train" in str(info.value) and "LOTTERY_DATA_MIRROR" in str(info.value)


def test_no_network_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("LOTTERY_DATA_MIRROR", raising=False)
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise URLError("no route to host")

    monkeypatch.setattr(download, "urlopen", offline)
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_splits(SMALL, "books")
    assert calls == [data.DATASETS["fdu-mtl"].url]
    message = str(info.value)
    assert "internet connection" in message and "LOTTERY_DATA_MIRROR" in message
    assert not list((tmp_path / "cache").rglob("*.part"))


class _FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def _fake_archive(mirror: Path, domains=("books", "dvd")) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for d in domains:
            for part in ("train", "test", "unlabel"):
                tar.add(mirror / f"fdu-mtl/{d}.task.{part}", arcname=f"mtl-dataset/{d}.task.{part}")
    return buffer.getvalue()


def test_download_extracts_and_verifies(mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LOTTERY_DATA_MIRROR", raising=False)
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path / "cache"))
    payload = _fake_archive(mirror)
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return _FakeResponse(payload)

    monkeypatch.setattr(download, "urlopen", fake_urlopen)
    books = data.load_splits(SMALL, "books")
    dvd = data.load_splits(SMALL, "dvd")
    assert len(calls) == 1  # one archive for all domains
    cached = tmp_path / "cache/data/fdu-mtl"
    assert (cached / "books.task.train").is_file() and (cached / "dvd.task.test").is_file()
    assert not (cached / "books.task.unlabel").exists()  # only files we use
    monkeypatch.setenv("LOTTERY_DATA_MIRROR", str(mirror))
    pd.testing.assert_frame_equal(books.train, data.load_splits(SMALL, "books").train)
    pd.testing.assert_frame_equal(dvd.val, data.load_splits(SMALL, "dvd").val)
    # a domain the archive lacks: one clear error, no traceback chain
    monkeypatch.delenv("LOTTERY_DATA_MIRROR")
    with pytest.raises(data.DataUnavailableError, match="has no file for fdu-mtl/music"):
        data.load_splits(config.override(SMALL, domains=("music",)), "music")


def test_corrupted_cached_file_says_which_to_delete(mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LOTTERY_DATA_MIRROR", raising=False)
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path / "cache"))
    cached = tmp_path / "cache/data/fdu-mtl"
    cached.mkdir(parents=True)
    shutil.copy(mirror / "fdu-mtl/books.task.train", cached / "books.task.train")
    (cached / "books.task.test").write_text("1\ttruncated\n", encoding="utf-8")
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_splits(SMALL, "books")
    assert f"delete {cached / 'books.task.test'}" in str(info.value)


def test_user_data_runs_are_keyed_by_file_content(mirror, tmp_path, monkeypatch):
    """A changed file is a new run; the same bytes again are the old run; a missing file
    is an error even though its runs exist; digests are cached by size, mtime, inode and
    ctime."""
    from lottery.data import fingerprint
    from lottery.engine.jobs import ticket_key
    from lottery.engine.store import RunStore

    monkeypatch.setattr(fingerprint, "RACY_NS", 0)   # cache the digests of fresh files too

    spec, target = tmp_path / "mine.json", tmp_path / "e.json"
    electronics = mirror / "format-samples/mcauley2014/Electronics_small.json"
    shutil.copy(electronics, target)
    spec.write_text(json.dumps({"format": "mcauley2014", "domains": {"gadgets": ["e.json"]}}))
    s = config.override(config.get_profile("smoke"), **{
        "data.dataset": str(spec), "data.domains": ("gadgets",), "transfer_pairs": (),
        "control_domains": None})
    store = RunStore(tmp_path / "runs")

    def run_name() -> str:
        return store.run("tickets", ticket_key(s, "gadgets", 0)).path.name

    first = run_name()
    assert fingerprint.data_fingerprint(config.get_profile("smoke").data) is None  # pinned FDU-MTL
    shutil.copy(mirror / "format-samples/mcauley2014/Books_small.json", target)
    assert run_name() != first                         # other reviews: another run
    shutil.copy(electronics, target)
    assert run_name() == first                         # the same bytes: the same run
    cache = json.loads((config.cache_dir() / fingerprint.CACHE_FILE).read_text())
    entry = cache[str(target.resolve())]
    entry["digest"] = "0" * 32                         # an unchanged stat reuses the digest
    (config.cache_dir() / fingerprint.CACHE_FILE).write_text(json.dumps(cache))
    assert run_name() != first
    target.unlink()
    with pytest.raises(data.DataUnavailableError, match="e.json: data file not found"):
        run_name()
