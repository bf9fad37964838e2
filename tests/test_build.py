"""The build pipeline and the `lottery chapter` / `lottery book` commands, without
executing a notebook (papermill and the assets are replaced by fakes)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from lottery.book import build, chapters, layout
from lottery.cli import app as cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def executed(monkeypatch):
    """Record what would be executed (chapter, parameters, output) instead of running it."""
    ran: list[tuple[str, dict, Path]] = []

    def fake_papermill(source, output, parameters):
        ran.append((source.name, dict(parameters), output))
        output.write_text("{}")

    monkeypatch.setattr(build, "_papermill", fake_papermill)
    monkeypatch.setattr(build, "ensure_assets", lambda *args, **kwargs: None)
    return ran


@pytest.fixture
def declarations(monkeypatch):
    """Count how often each chapter's parameters cell is executed."""
    calls: Counter[str] = Counter()
    real = chapters._declared_parameters

    def counting(nb, name):
        calls[name] += 1
        return real(nb, name)

    monkeypatch.setattr(chapters, "_declared_parameters", counting)
    return calls


# ------------------------------------------------------------------ the project
def test_find_project_from_the_project_and_below(monkeypatch):
    assert layout.find_project(REPO) == REPO
    assert layout.find_project(REPO / "lottery") == REPO
    assert layout.find_project(REPO / "notebooks" / "03_tickets.md") == REPO
    monkeypatch.chdir(REPO / "tests" / "golden")
    assert layout.find_project() == REPO
    assert layout.notebooks_dir() == REPO / "notebooks"


def test_find_project_elsewhere_says_what_it_looked_for(tmp_path, monkeypatch):
    (tmp_path / "_config.yml").write_text("")  # not enough: no _toc.yml, no notebooks/
    with pytest.raises(layout.ProjectNotFoundError) as err:
        layout.find_project(tmp_path / "sub")
    message = str(err.value)
    assert str(tmp_path / "sub") in message
    assert all(part in message for part in ("_config.yml", "_toc.yml", "notebooks/", "--project"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError):
        layout.find_project()


# ------------------------------------------------------------------ building
def test_build_reads_each_parameters_cell_once(tmp_path, executed, declarations):
    params = {"seeds": [0], "overrides": {"train.max_epochs": 1}}
    build.build_book("smoke", params, book_dir=tmp_path / "book", html=False, project=REPO,
                     log=lambda _: None)
    assert declarations == Counter({name: 1 for name in chapters.EXECUTION_ORDER})
    order = [name for name, _, _ in executed]      # wave by wave; any order inside a wave
    waves = [next(i for i, w in enumerate(chapters.EXECUTION_WAVES) if n in w) for n in order]
    assert sorted(order) == sorted(chapters.EXECUTION_ORDER) and waves == sorted(waves)
    by_name = {name: p for name, p, _ in executed}
    # a parameter goes to the chapters that declare it, with the profile
    assert by_name["tickets"] == {"profile": "smoke", **params}
    assert by_name["data"] == {"profile": "smoke", "overrides": {"train.max_epochs": 1}}
    assert all(out.parent == tmp_path / "book" / layout.EXECUTED_SUBDIR for _, _, out in executed)
    assert (tmp_path / "book" / layout.EXECUTED_SUBDIR / layout.TIMINGS_FILE).exists()


def test_build_checks_every_chapter_before_running_any(tmp_path, executed):
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['colour'\]"):
        build.build_book("smoke", {"colour": 1}, book_dir=tmp_path, project=REPO)
    with pytest.raises(ValueError, match="parameter 'p'"):
        build.build_book("smoke", {"p": 0}, book_dir=tmp_path, project=REPO)
    assert executed == []


def test_a_project_elsewhere_is_built_from_its_own_files(tmp_path, executed, declarations,
                                                         monkeypatch):
    """The library finds the project from the working directory, not from its own path."""
    project = tmp_path / "copy"
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    for name in (layout.CONFIG_FILE, layout.TOC_FILE):
        shutil.copy2(REPO / name, project / name)
    (project / "notebooks" / "sub").mkdir()
    monkeypatch.chdir(project / "notebooks" / "sub")
    build.execute_chapter("data", "smoke", log=lambda _: None)
    assert executed == [("data", {"profile": "smoke"},
                         project / layout.BOOK_DIR / layout.EXECUTED_SUBDIR / "data.ipynb")]
    assert declarations == Counter({"data": 1})


def test_kernel_runs_this_python():
    assert build.kernel_name() in ("python3", "lottery-book")


# ------------------------------------------------------------------ the CLI
def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    return err


@pytest.mark.parametrize("argv, needle", [
    (["chapter", "nope"], "unknown chapter 'nope'"),
    (["chapter"], "give a chapter name"),
    (["chapter", "tickets", "-p", "colour", "1"], r"unknown parameter(s) ['colour']"),
    (["chapter", "tickets", "-p", "seeds", "[]"], "parameter 'seeds'"),
    (["chapter", "tickets", "-p", "p", "0"], "parameter 'p'"),
    (["chapter", "tickets", "-p", "p", "1"], "parameter 'p'"),
    (["chapter", "tickets", "-p", "p", "abc"], "parameter 'p'"),
    (["chapter", "tickets", "--set", "train.nope=1"], "parameter 'overrides'"),
    (["chapter", "tickets", "--set", "nope"], "--set expects KEY=VALUE"),
    (["chapter", "tickets", "-p", "overrides", "3", "--set", "train.lr=1"], "parameter 'overrides'"),
    (["book", "--set", "train.nope=1"], "parameter 'overrides'"),
    (["book", "-p", "colour", "1"], r"unknown parameter(s) ['colour']"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, needle, capsys, executed, tmp_path):
    extra = ["--book-dir", str(tmp_path)] if argv[0] == "book" else []
    assert cli.main([*argv, "--project", str(REPO), *extra]) == 2
    assert needle in _one_line_error(capsys)
    assert executed == []


def test_cli_without_a_project_is_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["chapter", "tickets"]) == 2
    assert "_toc.yml" in _one_line_error(capsys)


def test_cli_chapter_set_reaches_overrides(tmp_path, executed, declarations):
    out = tmp_path / "t.ipynb"
    assert cli.main(["chapter", "tickets", "--profile", "smoke", "-p", "p", "0.35",
                     "-p", "overrides", '{"train.max_epochs": 1, "train.lr": 0.1}',
                     "--set", "train.lr=0.001", "--set", "vocab.max_len=64",
                     "-o", str(out), "--project", str(REPO)]) == 0
    assert executed == [("tickets", {"profile": "smoke", "p": 0.35, "overrides": {
        "train.max_epochs": 1, "train.lr": 0.001, "vocab.max_len": 64}}, out)]
    assert declarations == Counter({"tickets": 1})


def test_cli_book_set_reaches_every_chapter(tmp_path, executed, declarations):
    assert cli.main(["book", "--profile", "smoke", "--set", "train.lr=0.001", "--no-html",
                     "--book-dir", str(tmp_path), "--project", str(REPO)]) == 0
    assert {name for name, _, _ in executed} == set(chapters.EXECUTION_ORDER)
    assert all(p["overrides"] == {"train.lr": 0.001} for _, p, _ in executed)
    assert declarations == Counter({name: 1 for name in chapters.EXECUTION_ORDER})


def test_cli_chapter_list(capsys, monkeypatch):
    monkeypatch.chdir(REPO / "notebooks")
    assert cli.main(["chapter", "--list"]) == 0
    out = capsys.readouterr().out
    for ch in chapters.CHAPTERS:
        assert ch.name in out
    assert "rounds=None" in out and "p=None" in out


def test_a_rerun_chapter_refreshes_the_intro_with_its_own_parameters(tmp_path, executed):
    from lottery.book import pages

    assert build.refresh_intro(tmp_path, REPO, log=lambda _: None) is False   # no book yet
    (tmp_path / "intro.ipynb").write_text("{}")
    pages.write_parameters(tmp_path, "intro", "smoke", {"seeds": [0]})
    assert build.refresh_intro(tmp_path, REPO, log=lambda _: None) is True
    assert executed == [("intro", {"profile": "smoke", "seeds": [0]}, tmp_path / "intro.ipynb")]
    assert pages.parameters_of("intro", tmp_path)["parameters"] == {"seeds": [0]}


def test_summaries_come_from_the_chapter_table(tmp_path, executed, monkeypatch):
    """The chapters the table marks as summaries are re-executed after another chapter,
    each with its own parameters (never the one just executed), and get this build's
    timings of the chapters before them."""
    import json

    from lottery.book import pages

    assert build.refresh_summaries(tmp_path, REPO, log=lambda _: None) == []   # none executed yet
    for name in chapters.SUMMARIES:
        (tmp_path / f"{name}.ipynb").write_text("{}")
        pages.write_parameters(tmp_path, name, "smoke", {"seeds": [1]})
    assert build.refresh_summaries(tmp_path, REPO, log=lambda _: None, executed="tickets") \
        == list(chapters.SUMMARIES)
    assert [(n, p) for n, p, _ in executed] == [(n, {"profile": "smoke", "seeds": [1]})
                                                for n in chapters.SUMMARIES]
    assert build.refresh_summaries(tmp_path, REPO, log=lambda _: None,
                                   executed=chapters.SUMMARIES[0]) == list(chapters.SUMMARIES[1:])

    seen = {}

    def timings_then_run(jobs, profile, root, log):
        path = root / layout.EXECUTED_SUBDIR / layout.TIMINGS_FILE
        for s, _ in jobs:
            seen[s.name] = path.exists() and set(json.loads(path.read_text()))
        return {s.name: 1.0 for s, _ in jobs}

    monkeypatch.setattr(build, "_run_wave", timings_then_run)
    monkeypatch.setattr(build, "ensure_assets", lambda *a, **k: None)
    (tmp_path / "book" / layout.EXECUTED_SUBDIR).mkdir(parents=True)
    for c in chapters.CHAPTERS:
        (tmp_path / "book" / layout.EXECUTED_SUBDIR / f"{c.name}.ipynb").write_text("{}")
    build.build_book("smoke", book_dir=tmp_path / "book", html=False, project=REPO, log=lambda _: None)
    others = set(chapters.EXECUTION_ORDER) - set(chapters.SUMMARIES)
    assert all(seen[n] == others for n in chapters.SUMMARIES)
