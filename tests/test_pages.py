"""Page furniture and launch set-up: stamps and the agreement check, compute records,
source display, the default cache inside the project, the repository-driven config."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from lottery import config
from lottery.book import build, chapters, layout, pages
from lottery.experiment import selection

REPO = Path(__file__).resolve().parents[1]


def _html(obj) -> str:
    return obj.data if hasattr(obj, "data") else str(obj)


# ------------------------------------------------------------------ stamps
def test_a_page_stamp_names_its_profile_and_parameters(tmp_path):
    run = selection.chapter_settings("smoke")
    pages.write_parameters(tmp_path, "tickets", "smoke", {"rounds": None, "seeds": [0, 1]})
    box = _html(pages.stamp("tickets", run, tmp_path))
    assert "profile <strong>smoke</strong>" in box and "seeds=[0, 1]" in box
    assert "How this page was made" in box and "differ" not in box
    assert pages.read_stamps(tmp_path)["tickets"]["signature"]["profile"] == "smoke"


def test_pages_executed_with_other_settings_are_named(tmp_path):
    book = selection.chapter_settings("smoke")
    other = selection.chapter_settings("smoke", rounds=1)
    pages.stamp("intro", book, tmp_path)
    pages.stamp("phase", book, tmp_path)
    box = _html(pages.stamp("tickets", other, tmp_path))
    assert "differ" in box and "intro (" in box and "rounds" in box and "phase (" in box
    table = pages.consistency_table(tmp_path)
    assert table.loc["tickets", "agrees with the book"] == "NO"
    assert (table.drop("tickets")["agrees with the book"] == "yes").all()
    # a page re-executed with the book's settings agrees again
    pages.stamp("tickets", book, tmp_path)
    assert (pages.consistency_table(tmp_path)["agrees with the book"] == "yes").all()


def test_a_full_build_clears_the_stamps_it_replaces(tmp_path):
    pages.stamp("tickets", selection.chapter_settings("smoke", rounds=1), tmp_path)
    pages.write_parameters(tmp_path, "tickets", "smoke", {"rounds": 1})
    pages.clear(tmp_path, ["tickets"])
    assert pages.read_stamps(tmp_path) == {} and pages.parameters_of("tickets", tmp_path) is None


def test_compute_is_recorded_per_chapter_in_the_run_store(tmp_path):
    run = selection.chapter_settings("smoke")
    rows = pd.DataFrame({"procedure": "tickets", "strategy": ["TICKET-RESET"] * 3 + ["TICKET-RANDOM"] * 3,
                         "domain": "books", "seed": 0, "round": [0, 1, 2] * 2,
                         "seconds": [10.0, 5.0, 5.0] * 2})
    rec = pages.record_compute("tickets", run, rows)
    assert rec["networks"] == 5 and rec["training_seconds"] == 30.0   # round 0 once
    table = pages.compute_table(run, {"tickets": 2.5})
    assert table.loc["tickets", "networks"] == 5
    assert table.loc["tickets", "training compute (min, from the run store)"] == 0.5
    assert table.loc["tickets", "executed in this build (s)"] == 2.5
    assert pages.compute_table(selection.chapter_settings("smoke", rounds=1)).empty


def test_the_method_is_shown_from_the_library_source():
    from lottery.engine import masks, train

    text = pages.show_source(masks.magnitude_prune, train.masked_step).data
    assert "def magnitude_prune(" in text and "keep_count(" in text
    assert "p.mul_(m)" in text and "lottery.engine.train.masked_step" in text


# ------------------------------------------------------------------ cache and config
def test_the_cache_is_the_projects_inside_it(monkeypatch, tmp_path):
    monkeypatch.delenv("LOTTERY_CACHE_DIR")
    monkeypatch.chdir(REPO / "notebooks")
    assert config.cache_dir() == REPO / ".cache"
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path))
    assert config.cache_dir() == tmp_path.resolve()


def _project_copy(tmp_path: Path, url: str) -> Path:
    for name in (layout.CONFIG_FILE, layout.TOC_FILE):
        (tmp_path / name).write_text((REPO / name).read_text())
    (tmp_path / "notebooks").mkdir()
    cfg = yaml.safe_load((tmp_path / layout.CONFIG_FILE).read_text())
    cfg["repository"]["url"] = url
    (tmp_path / layout.CONFIG_FILE).write_text(yaml.safe_dump(cfg))
    return tmp_path


def test_without_a_repository_url_the_config_is_used_as_is(tmp_path):
    project = _project_copy(tmp_path, "")
    assert build.book_config(project, tmp_path) == project / layout.CONFIG_FILE
    assert build.package_source(project) == ""
    shipped = yaml.safe_load((REPO / layout.CONFIG_FILE).read_text())
    assert "url" in shipped["repository"]


def test_every_chapter_has_the_set_up_cell_and_one_visible_parameters_cell():
    import jupytext

    for ch in chapters.CHAPTERS:
        nb = jupytext.read(REPO / "notebooks" / ch.source)
        code = [c for c in nb.cells if c.cell_type == "code"]
        params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and "remove-cell" in params[0].metadata["tags"], ch.name
        assert "package_source" in params[0].source
        setup = code[code.index(params[0]) + 1]
        assert 'find_spec("lottery") is None' in setup.source, ch.name
        assert any(f'pages.stamp("{ch.name}", run)' in c.source for c in code), ch.name
