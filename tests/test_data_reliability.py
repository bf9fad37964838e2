"""Reliability of the data stage: content digests that notice every edit, strict dataset
specs, run keys that do not depend on where a spec lives, and one-line messages that
name the file at fault. Small synthetic files only: these tests run offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from lottery import config, data
from lottery.cli import app as cli
from lottery.data import fingerprint, registry
from lottery.data.readers import DataWarning, ReadReport, read_reviews
from lottery.engine.store import settings_hash

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--set", "data.n_train=4", "--set", "data.n_val=2", "--set", "data.n_test=2"]
#: A tiny mcauley2014 file: two positive, two negative reviews.
REVIEWS = "".join(json.dumps({"overall": r, "reviewText": t}) + "\n" for r, t in
                  [(5, "great book"), (1, "awful book"), (4, "good read"), (2, "dull read")])


def _spec(folder: Path, name: str = "spec.json", fmt: str = "mcauley2014",
          domains: dict | None = None, files: dict[str, str] | None = None) -> Path:
    """``folder/name``, a spec over ``files`` (file name -> content), written there too."""
    folder.mkdir(parents=True, exist_ok=True)
    for file, content in (files or {"books.json": REVIEWS}).items():
        (folder / file).write_text(content, encoding="utf-8")
    path = folder / name
    path.write_text(json.dumps({"format": fmt, "domains": domains or {"books": ["books.json"]}}))
    return path


def _settings(spec: Path | str, domains=("books",)) -> config.DataSettings:
    return config.DataSettings(dataset=str(spec), domains=tuple(domains), n_train=4, n_val=2,
                               n_test=2)


def _cli(argv, capsys) -> tuple[int, str]:
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _one_line_error(argv, capsys) -> str:
    code, err = _cli(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


# ------------------------------------------------------------------ 1. same-size edits


def test_same_size_edit_with_restored_mtime_is_rehashed(tmp_path, monkeypatch):
    """``cp -p`` / ``rsync -a`` / ``touch -r``: same size, same mtime, other bytes."""
    monkeypatch.setattr(fingerprint, "RACY_NS", 0, raising=False)  # cache even a fresh file
    spec = _spec(tmp_path)
    target = tmp_path / "books.json"
    before = target.stat()
    first = fingerprint.data_fingerprint(_settings(spec))
    cached = json.loads((config.cache_dir() / fingerprint.CACHE_FILE).read_text())
    assert str(target.resolve()) in cached                        # the digest was cached
    time.sleep(0.05)                                              # a later clock tick
    target.write_text(REVIEWS.replace("great", "Great"), encoding="utf-8")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (before.st_size,
                                                                  before.st_mtime_ns)
    assert fingerprint.data_fingerprint(_settings(spec)) != first


def test_same_size_file_moved_over_it_is_rehashed(tmp_path, monkeypatch):
    """A same-size file renamed over the data file (another inode), mtime copied."""
    monkeypatch.setattr(fingerprint, "RACY_NS", 0, raising=False)
    target = tmp_path / "books.json"
    target.write_text(REVIEWS, encoding="utf-8")
    cache: dict = {}
    first = fingerprint.file_digest(target, cache)
    other = tmp_path / "other.json"
    other.write_text(REVIEWS.replace("great", "Great"), encoding="utf-8")
    old = target.stat()
    os.utime(other, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(other, target)
    assert fingerprint.file_digest(target, cache) != first


def test_a_file_changed_just_now_is_not_cached(tmp_path, monkeypatch):
    """A file hashed right after it was written is not cached: on a file system with
    coarse timestamps an edit in the same tick (same size, mtime put back) would leave
    its ctime unchanged too."""
    target = tmp_path / "books.json"
    target.write_text(REVIEWS, encoding="utf-8")
    before = target.stat()
    cache: dict = {}
    first = fingerprint.file_digest(target, cache)
    assert cache == {}                                            # too fresh to trust
    target.write_text(REVIEWS.replace("great", "Great"), encoding="utf-8")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert fingerprint.file_digest(target, cache) != first
    monkeypatch.setattr(fingerprint, "RACY_NS", 0, raising=False)  # as if hashed later
    fingerprint.file_digest(target, cache)
    assert set(cache) == {str(target.resolve())}


# ------------------------------------------------------------------ 2. duplicate keys

DUPLICATES = {
    "domain": ('{"format": "mcauley2014", "domains": {"books": ["books.json"], '
               '"books": ["books.json"]}}', "key 'books' appears twice in \"domains\""),
    "top level": ('{"format": "mcauley2014", "format": "mcauley2018", '
                  '"domains": {"books": ["books.json"]}}',
                  "key 'format' appears twice at the top level"),
    "in a domain": ('{"domains": {"books": {"files": ["books.json"], "format": "mcauley2014", '
                    '"format": "amazon2023"}}}',
                    "key 'format' appears twice in \"domains.books\""),
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_duplicate_key_in_a_spec_is_rejected(tmp_path, case):
    text, expected = DUPLICATES[case]
    (tmp_path / "books.json").write_text(REVIEWS, encoding="utf-8")
    spec = tmp_path / "spec.json"
    spec.write_text(text)
    with pytest.raises(data.DataSettingsError) as info:
        data.get_dataset(str(spec))
    message = str(info.value)
    assert message.startswith(f"{spec}: ") and expected in message, message
    assert "\n" not in message


# ------------------------------------------------------------------ 3. run keys


def _key_hash(spec: Path | str, domains=("books",)) -> str:
    return settings_hash(fingerprint.run_data_key(_settings(spec, domains)))


TWO_DOMAINS = {"books": ["b.json"], "dvd": ["d.json"]}
TWO_FILES = {"b.json": REVIEWS, "d.json": REVIEWS.replace("book", "film")}


def test_run_data_key_ignores_where_the_spec_and_data_live(tmp_path, monkeypatch):
    here = _spec(tmp_path / "one", "mine.json", domains=TWO_DOMAINS, files=TWO_FILES)
    there = _spec(tmp_path / "moved" / "two", "renamed.json", domains=TWO_DOMAINS,
                  files=TWO_FILES)
    monkeypatch.chdir(tmp_path / "one")
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))  # forget "mine.json"
    typed = ["mine.json", "./mine.json", str(here)]
    hashes = {_key_hash(s, ("books", "dvd")) for s in typed + [str(there)]}
    assert len(hashes) == 1
    key = fingerprint.run_data_key(_settings(there, ("books", "dvd")))
    assert key["data"].dataset == "user-spec" and set(key) == {"data", "data_spec", "data_files"}
    assert key["data_files"] == fingerprint.data_fingerprint(_settings(here, ("books", "dvd")))
    assert "one" not in json.dumps(key["data_spec"]) and "two" not in json.dumps(key["data_spec"])


def test_run_data_key_changes_with_content_format_and_assignment(tmp_path):
    base = _key_hash(_spec(tmp_path / "a", domains=TWO_DOMAINS, files=TWO_FILES),
                     ("books", "dvd"))
    edited = dict(TWO_FILES, **{"d.json": TWO_FILES["d.json"].replace("film", "show")})
    other_format = _spec(tmp_path / "c", fmt="mcauley2018", domains=TWO_DOMAINS, files=TWO_FILES)
    swapped = _spec(tmp_path / "d", domains={"books": ["d.json"], "dvd": ["b.json"]},
                    files=TWO_FILES)
    per_domain = _spec(tmp_path / "e", domains={"books": ["b.json"], "dvd": {
        "files": ["d.json"], "format": "amazon2023"}}, files=TWO_FILES)
    others = [_spec(tmp_path / "b", domains=TWO_DOMAINS, files=edited), other_format, swapped,
              per_domain]
    hashes = [_key_hash(s, ("books", "dvd")) for s in others]
    assert base not in hashes and len(set(hashes)) == len(hashes)


def test_run_data_key_of_a_pinned_dataset_is_the_settings_alone():
    settings = config.get_profile("smoke").data
    key = fingerprint.run_data_key(settings)
    assert key == {"data": settings} and key["data"] is settings


# ------------------------------------------------------------------ 4. messages


def test_empty_data_file_is_named(tmp_path, capsys):
    spec = _spec(tmp_path, domains={"books": ["books.json", "empty.json"]},
                 files={"books.json": REVIEWS, "empty.json": ""})
    empty = tmp_path / "empty.json"
    with pytest.raises(data.DataUnavailableError, match="is empty") as info:
        data.load_splits(_settings(spec), "books")
    assert str(empty) in str(info.value)
    err = _one_line_error(["data", "check", spec, *SMALL], capsys)
    assert err.startswith("lottery: ") and str(empty) in err and "is empty" in err


def test_directory_listed_as_a_data_file_says_so(tmp_path, capsys):
    spec = _spec(tmp_path, domains={"books": ["books.json", "folder"]})
    (tmp_path / "folder").mkdir()
    expected = f"{tmp_path / 'folder'}: is a directory, expected a review file"
    for step in (lambda: fingerprint.data_fingerprint(_settings(spec)),
                 lambda: data.load_splits(_settings(spec), "books")):
        with pytest.raises(data.DataUnavailableError) as info:
            step()
        assert expected in str(info.value) and "not found" not in str(info.value)
    err = _one_line_error(["data", "check", spec, *SMALL], capsys)
    assert expected in err and "not found" not in err


def test_missing_spec_file_is_named(tmp_path, capsys):
    missing = tmp_path / "some" / "missing" / "spec.json"
    with pytest.raises(data.DataSettingsError) as info:
        data.get_dataset(str(missing))
    assert f"{missing}: dataset spec file does not exist" in str(info.value)
    assert "unknown dataset" not in str(info.value)
    err = _one_line_error(["data", "check", missing], capsys)
    assert f"{missing}: dataset spec file does not exist" in err and "unknown dataset" not in err
    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(data.DataSettingsError, match="is a directory, expected a JSON dataset"):
        data.get_dataset(str(folder))


MALFORMED_TSV = "star_rating\treview_body\n5\tgood {n}\n4\n1\tbad {n}\n"


def test_data_warning_prints_as_one_clean_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text(MALFORMED_TSV.format(n=1), encoding="utf-8")
    code = ("import warnings; from lottery.data import read_reviews; "
            f"list(read_reviews({str(bad)!r}, 'amazon-tsv')); "
            "warnings.warn('other', UserWarning)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONWARNINGS": "",
                                                       "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2, lines                     # one line, then the other warning
    assert lines[0].startswith(f"lottery: warning: {bad}: skipped malformed records; "
                               f"read 3, kept 2"), lines
    assert "readers.py" not in done.stderr and "yield from" not in done.stderr
    assert "UserWarning: other" in lines[1]                     # other warnings: unchanged


def test_data_warning_is_still_a_warning_and_formats_alone():
    with pytest.warns(DataWarning, match="note"):
        warnings.warn("note", DataWarning)
    assert warnings.formatwarning("a note", DataWarning, "/x/readers.py", 9, "src") \
        == "lottery: warning: a note\n"
    other = warnings.formatwarning("msg", UserWarning, "/x/y.py", 9, "src")
    assert "/x/y.py:9: UserWarning: msg" in other


def test_per_file_warning_counts_do_not_add_up(tmp_path):
    paths = [tmp_path / "a.tsv", tmp_path / "b.tsv"]
    for n, path in enumerate(paths):
        path.write_text(MALFORMED_TSV.format(n=n), encoding="utf-8")
    report = ReadReport()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in paths:
            assert len(list(read_reviews(path, "amazon-tsv", report=report))) == 2
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 2
    for path, message in zip(paths, messages):
        assert "read 3, kept 2, neutral (3 stars) 0, missing text 0, malformed skipped 1" \
            in message, message
        assert message.count(".tsv:3:") == 1 and f"{path}:3:" in message
    assert (report.read, report.kept, report.skipped) == (6, 4, 2)  # the shared total
    assert len(report.examples) == 2


def test_an_edited_spec_is_read_again_and_specs_are_not_registered(tmp_path):
    """A notebook kernel that reads a spec, then the user edits it: the edit counts. A
    spec read once is not listed as a registered dataset ("unknown dataset 'x';
    registered: [...]" listed every spec read before)."""
    spec = tmp_path / "mine.json"
    spec.write_text('{"format": "mcauley2014", "domains": {"books": ["a.json"]}}')
    assert registry.get_dataset(str(spec)).domains == ("books",)
    spec.write_text('{"format": "mcauley2014", "domains": {"novels": ["a.json"]}}')
    assert registry.get_dataset(str(spec)).domains == ("novels",)
    assert str(spec) not in registry.DATASETS
