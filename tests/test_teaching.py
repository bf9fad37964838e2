"""Teaching with the book: `lottery store export/import` (lottery/engine/archive.py,
lottery/cli/store.py), one CLI vocabulary (--profile everywhere, chapter names and
file stems, accuracy in %), stamps that record papermill's parameters, and the
instructor page."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from lottery.book import build, chapters, pages
from lottery.cli import app, args as cli_args, store as store_cli
from lottery.engine import archive, jobs, runner
from lottery.engine.store import RunStore
from lottery.experiment import selection

REPO = Path(__file__).resolve().parents[1]


def _cli(argv: list[str]) -> int:
    """The `lottery` command, with `store` added if app.py does not list it yet."""
    parser = app.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "store" not in sub.choices:
        store_cli.add_store(sub)
    parsed = parser.parse_args(argv)
    return int(parsed.run(parsed) or 0)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    return err


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ store export / import
@pytest.fixture(scope="module")
def teacher(tmp_path_factory, mirror):
    """A cache with a small smoke store: Books, seed 0, TICKET-RESET (3 rounds)."""
    cache = tmp_path_factory.mktemp("teacher")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOTTERY_CACHE_DIR", str(cache))
        run = selection.chapter_settings("smoke")
        runner.run_tickets(run.settings, domains=["books"], seeds=[0], strategies=["reset"],
                           progress=False, workers=1, store=RunStore(cache / "runs"))
    chain = jobs.TicketChain(run.settings, "books", 0, ("reset",))
    return {"cache": cache, "chain": chain, "rows": chain.stored_rows(RunStore(cache / "runs"))}


@pytest.fixture
def exported(teacher, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(teacher["cache"]))
    path = tmp_path / "class.tar.gz"
    assert _cli(["store", "export", str(path)]) == 0
    teacher["export_output"] = capsys.readouterr().out
    return path


def _rewrite(src: Path, dst: Path, change) -> None:
    """Copy a tar.gz member by member; ``change(name, data)`` returns new bytes or None."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w:gz") as tout:
        for m in tin:
            data = tin.extractfile(m).read()
            new = change(m.name, data)
            data = data if new is None else new
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))


def test_export_then_import_into_an_empty_cache_gives_the_same_rows(teacher, exported, tmp_path,
                                                                    monkeypatch, capsys):
    out = teacher["export_output"]
    assert "1 run, 4 finished networks" in out and "no weights" in out
    with tarfile.open(exported) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(archive.MANIFEST).read())
    assert not any(n.endswith("weights.pt") for n in names)
    assert any(n.endswith("mask.pt") for n in names) and any(n.endswith("theta0.pt") for n in names)
    assert any(n.startswith("vocab/") and n.endswith(".model") for n in names)
    assert set(manifest["files"]) == set(names) - {archive.MANIFEST}
    assert manifest["lottery"] and manifest["with_weights"] is False

    student = tmp_path / "student"
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(student))
    assert _cli(["store", "import", str(exported)]) == 0
    out = capsys.readouterr().out
    assert "1 run: 4 networks added, 0 already stored" in out and "without weights" in out
    assert teacher["chain"].stored_rows(RunStore(student / "runs")) == teacher["rows"]
    assert _files(student / "vocab") == _files(teacher["cache"] / "vocab")
    assert not list((student / "runs").rglob("weights.pt"))
    assert not [p for p in (student / "runs").iterdir() if p.name.startswith(".import")]

    assert _cli(["store", "import", str(exported)]) == 0           # again: everything kept
    assert "0 networks added, 4 already stored (kept)" in capsys.readouterr().out


def test_weights_travel_only_when_asked_and_complete_an_earlier_import(teacher, exported, tmp_path,
                                                                       monkeypatch, capsys):
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(teacher["cache"]))
    heavy = tmp_path / "with-weights.tar.gz"
    assert _cli(["store", "export", str(heavy), "--with-weights"]) == 0
    with tarfile.open(heavy) as tar:
        weights = [n for n in tar.getnames() if n.endswith("weights.pt")]
    stored = [p.relative_to(teacher["cache"]).as_posix() for p in (teacher["cache"] / "runs").rglob("weights.pt")]
    assert weights and sorted(weights) == sorted(stored)
    student = tmp_path / "student"
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(student))
    assert _cli(["store", "import", str(exported)]) == 0
    assert _cli(["store", "import", str(heavy)]) == 0
    assert f"weights added to {len(weights)} of them" in capsys.readouterr().out
    assert sorted(p.relative_to(student).as_posix() for p in (student / "runs").rglob("weights.pt")) == sorted(stored)


def test_extending_an_imported_chain_without_weights_retrains_it(teacher, exported, tmp_path,
                                                                  monkeypatch, capsys):
    """More rounds of an imported chain need its last weights: without them the chain is
    named, set aside and trained again here (the instructor page says so), not a crash."""
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path / "student"))
    assert _cli(["store", "import", str(exported)]) == 0
    capsys.readouterr()
    code = _cli(["tickets", "--profile", "smoke", "--domains", "books", "--seeds", "0", "--strategies",
                 "reset", "--quiet", "--set", "prune.rounds=4"])
    err = capsys.readouterr().err
    assert code == 0 and "weights.pt" in err and "training them again" in err, err
    runs = list((tmp_path / "student" / "runs").glob("tickets-*"))
    assert any(len(list(r.glob("reset/round_*/metrics.json"))) == 4 for r in runs)


def test_a_tampered_archive_is_refused_in_one_line_and_nothing_is_written(exported, tmp_path,
                                                                          monkeypatch, capsys):
    bad = tmp_path / "tampered.tar.gz"
    _rewrite(exported, bad, lambda name, data: data[:-1] + bytes([data[-1] ^ 1])
             if name.endswith("round_02/mask.pt") else None)
    student = tmp_path / "student"
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(student))
    assert _cli(["store", "import", str(bad)]) == 2
    line = _one_line(capsys)
    assert "checksum mismatch for runs/" in line and "round_02/mask.pt" in line and "nothing was imported" in line
    assert not student.exists()


def _forged(tmp_path: Path, name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE) -> Path:
    """An archive whose one member ``name`` is listed in a matching manifest."""
    path = tmp_path / "forged.tar.gz"
    manifest = {"format": archive.FORMAT, "format_version": archive.FORMAT_VERSION, "lottery": "0",
                "with_weights": False,
                "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}}}
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
        else:
            info.size = len(data)
        tar.addfile(info, io.BytesIO(data) if kind != tarfile.SYMTYPE else None)
        blob = json.dumps(manifest).encode()
        info = tarfile.TarInfo(archive.MANIFEST)
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    return path


@pytest.mark.parametrize("name, kind, needle", [
    ("runs/../../evil.txt", tarfile.REGTYPE, "unsafe path"),
    ("runs/r/../../../evil.txt", tarfile.REGTYPE, "unsafe path"),
    ("/tmp/evil.txt", tarfile.REGTYPE, "unsafe path"),
    ("runs/r/.locks/x.lock", tarfile.REGTYPE, "unsafe path"),
    ("elsewhere/evil.txt", tarfile.REGTYPE, "unexpected member"),
    ("runs/r/theta0.pt", tarfile.SYMTYPE, "not a plain file"),
])
def test_paths_outside_the_store_and_links_are_refused(name, kind, needle, tmp_path, monkeypatch, capsys):
    student = tmp_path / "student"
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(student))
    assert _cli(["store", "import", str(_forged(tmp_path, name, kind=kind))]) == 2
    line = _one_line(capsys)
    assert needle in line and "nothing was imported" in line
    assert not student.exists() and not (tmp_path / "evil.txt").exists()


def test_steps_the_store_has_already_are_kept(teacher, exported, tmp_path):
    store = RunStore(tmp_path / "runs")
    ours = teacher["chain"].path(store)
    theirs = teacher["chain"].path(RunStore(teacher["cache"] / "runs"))
    (ours / "reset" / "round_01").mkdir(parents=True)
    mine = b'{"test_acc": 0.99, "mine": true}'
    (ours / "reset" / "round_01" / "metrics.json").write_bytes(mine)
    (ours / "reset" / "round_01" / "mask.pt").write_bytes((theirs / "reset" / "round_01" / "mask.pt").read_bytes())
    (ours / "reset" / "round_02").mkdir()            # unfinished leftover: replaced, set aside
    (ours / "reset" / "round_02" / "mask.pt").write_bytes(b"torn")
    counts = archive.import_store(exported, store, tmp_path / "cache")
    assert (counts.steps, counts.steps_kept, counts.completed) == (3, 1, 0)
    assert (ours / "reset" / "round_01" / "metrics.json").read_bytes() == mine
    assert (ours / "reset" / "round_02" / "metrics.json").exists()
    assert list((ours / ".corrupt").iterdir())        # the leftover, kept for inspection


# ------------------------------------------------------------------ one CLI vocabulary
def test_plan_and_profile_take_profile_like_every_other_command(capsys):
    assert _cli(["profile", "--profile", "smoke", "--json"]) == 0
    by_option = json.loads(capsys.readouterr().out)
    assert _cli(["profile", "smoke", "--json"]) == 0             # the older positional form
    assert json.loads(capsys.readouterr().out) == by_option
    assert _cli(["profile", "smoke", "--profile", "course"]) == 2
    assert "two profiles given" in _one_line(capsys)
    assert _cli(["plan", "--profile", "smoke", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == "smoke"


def test_chapters_are_found_by_name_or_by_file():
    assert chapters.chapter("06_paper_vs_book").name == "verdict"
    assert chapters.chapter("06_paper_vs_book.md").name == "verdict"
    for ch in chapters.CHAPTERS:
        assert chapters.chapter(chapters.source_stem(ch)) is ch is chapters.chapter(ch.name)
    with pytest.raises(ValueError, match="06_paper_vs_book"):
        chapters.chapter("06_verdict")


def test_chapter_help_lists_every_chapter_with_its_file(capsys):
    with pytest.raises(SystemExit) as done:
        _cli(["chapter", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for ch in chapters.CHAPTERS:
        assert re.search(rf"^\s+{ch.name}\s+{re.escape(ch.source)}\s+{re.escape(ch.title)}$", out, re.M), ch.name
    assert "federated" in out.split("positional arguments")[1].split("\n\n")[0]


def test_a_chapter_given_by_its_file_stem_runs(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(build, "_papermill", lambda s, out, p: (ran.append((s.name, out)), out.write_text("{}")))
    out = tmp_path / "v.ipynb"
    assert _cli(["chapter", "06_paper_vs_book", "--profile", "smoke", "-o", str(out),
                 "--project", str(REPO)]) == 0
    assert ran == [("verdict", out)]


def test_cli_tables_show_accuracy_in_percent_like_the_book(capsys):
    df = pd.DataFrame({"procedure": "tickets", "source": "books", "target": "books", "strategy": "reset",
                       "round": [7, 7], "sparsity": [0.9921875] * 2, "test_acc": [0.80, 0.82], "seed": [0, 1]})
    table = cli_args.accuracy_table(df)
    assert list(table["test acc (%)"]) == ["81.0 ± 1.4"] and list(table["sparsity"]) == ["99.22%"]   # the book's sparsity labels
    with pytest.raises(SystemExit):
        _cli(["tickets", "--help"])
    assert "fractions" in capsys.readouterr().out


# ------------------------------------------------------------------ stamps
def test_the_stamp_records_what_papermill_injected(tmp_path):
    history = ["profile = 'course'\ndomains = None",
               '# Parameters\nprofile = "smoke"\ndomains = ["books"]\nseeds = [0, 1]\npackage_source = "git+u"\n',
               "pages.stamp('tickets', run)"]
    assert pages.injected_parameters(history) == {"profile": "smoke", "domains": ["books"], "seeds": [0, 1],
                                                  "package_source": "git+u"}
    assert pages.given_parameters("tickets", tmp_path, history) == {
        "profile": "smoke", "parameters": {"domains": ["books"], "seeds": [0, 1]}}
    assert pages.injected_parameters(["x = 1"]) is None
    assert pages.given_parameters("tickets", tmp_path, ["x = 1"]) is None     # by hand: nothing recorded


def test_stamps_go_to_the_build_the_book_or_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(pages.STAMPS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert pages.stamps_dir() == Path(pages.config.cache_dir()) / "stamps"   # never a new ./_stamps
    (tmp_path / "_stamps").mkdir()                                           # a built book's chapters/
    assert pages.stamps_dir() == tmp_path / "_stamps"
    monkeypatch.setenv(pages.STAMPS_ENV, str(tmp_path / "book" / "_stamps"))  # the build names it
    assert pages.stamps_dir() == tmp_path / "book" / "_stamps"
    assert pages.stamps_dir(tmp_path / "x") == tmp_path / "x" / "_stamps"


@pytest.mark.slow
def test_plain_papermill_stamps_its_parameters_into_the_cache(tmp_path, monkeypatch):
    import papermill as pm

    monkeypatch.delenv(pages.STAMPS_ENV, raising=False)
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path / "cache"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "course"\ndomains = None', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("from lottery.book import pages\nfrom lottery.experiment import selection\n"
                                          "run = selection.chapter_settings(profile, domains=domains)\n"
                                          "print(pages.stamp('data', run).data)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    work = tmp_path / "work"
    work.mkdir()
    nbformat.write(nb, str(work / "in.ipynb"))
    pm.execute_notebook(str(work / "in.ipynb"), str(work / "out.ipynb"), kernel_name=build.kernel_name(),
                        parameters={"profile": "smoke", "domains": ["books"]}, cwd=str(work), progress_bar=False)
    assert not (work / "_stamps").exists()
    stamp = json.loads((tmp_path / "cache" / "stamps" / "data.json").read_text())
    assert stamp["given"] == {"profile": "smoke", "parameters": {"domains": ["books"]}}
    printed = nbformat.read(str(work / "out.ipynb"), as_version=4).cells[-1].outputs[0]["text"]
    assert "profile <strong>smoke</strong>" in printed and "domains=[&quot;books&quot;]" in printed


# ------------------------------------------------------------------ the instructor page
def test_the_instructor_page_is_in_the_book_and_covers_every_run_exercise():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [c["file"] for c in toc["chapters"]]
    assert files.index("instructor") == files.index("reproduce") + 1
    page = (REPO / "book" / "instructor.md").read_text()
    for needle in ("lottery store export", "lottery store import", "--with-weights", '-y "domains: [books]"',
                   "Colab", "Binder", "36.6 min", "774 s"):
        assert needle in page, needle
    for ch in chapters.CHAPTERS:
        assert f"`{ch.name}`" in page and f"`{ch.source}`" in page
    run_labels = set()
    for src in sorted((REPO / "notebooks").glob("*.md")):
        for block in src.read_text().split("::::{exercise}")[1:]:
            if "**Run:**" in block.split("::::")[0]:
                run_labels.add(re.search(r":label: (\S+)", block).group(1))
    covered = set(re.findall(r"`([a-z]+-ex\d)`", page))
    covered |= {f"divergence-ex{i}" for i in (3, 4, 5)} if "`divergence-ex3`…`ex5`" in page else set()
    assert len(run_labels) == 21 and run_labels <= covered, sorted(run_labels - covered)
