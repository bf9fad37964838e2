"""Chapter registry, parameters cells and chapter settings (no chapter is executed)."""

from __future__ import annotations

import pytest

from lottery import config
from lottery.book import chapters, layout
from lottery.experiment import selection

NOTEBOOKS = layout.notebooks_dir(layout.find_project(__file__))


# ------------------------------------------------------------------ chapter settings
def test_chapter_settings_defaults_follow_the_profile():
    run = selection.chapter_settings("smoke")
    smoke = config.get_profile("smoke")
    assert run.settings == smoke
    assert run.domains == smoke.data.domains
    assert run.seeds == smoke.seeds
    assert run.pairs == smoke.transfer_pairs
    assert run.sparsities[-1] == pytest.approx(
        config.sparsity_after(smoke.prune.prune_fraction_per_round, smoke.prune.rounds))


def test_chapter_settings_overrides_and_selection():
    run = selection.chapter_settings("course", domains=["Books", "C"], seeds=[1], rounds=4,
                                     max_epochs=2, overrides={"train.lr": 3e-4})
    assert run.domains == ("books", "music")  # paper names and Fig. 1 letters resolve
    assert run.seeds == (1,)
    assert run.settings.prune.rounds == 4
    assert run.settings.train.max_epochs == 2
    assert run.settings.train.lr == 3e-4
    # selecting domains does not change the settings (the shared vocabulary stays)
    assert run.settings.data == config.get_profile("course").data
    # the profile's pairs are kept only where both domains are selected
    assert all(a in run.domains and b in run.domains for a, b in run.pairs)


def test_chapter_settings_adds_domains_outside_the_profile():
    run = selection.chapter_settings("smoke", domains=["dvd"])
    assert run.domains == ("dvd",)
    assert run.settings.data.domains == ("books", "electronics", "dvd")


def test_p_sets_the_prune_fraction():
    run = selection.chapter_settings("smoke", p=0.35, rounds=2)
    assert run.settings.prune.prune_fraction_per_round == 0.35
    assert run.sparsities[-1] == pytest.approx(1 - 0.65 ** 2)
    assert "p = 35% per round" in run.describe().loc["pruning", "value"]
    assert selection.chapter_settings("smoke", p=None).settings == config.get_profile("smoke")


@pytest.mark.parametrize("kwargs, name", [
    ({"profile": "huge"}, "profile"),
    ({"rounds": -1}, "rounds"),
    ({"rounds": "8"}, "rounds"),
    ({"p": 0}, "p"),
    ({"p": 1}, "p"),
    ({"p": 1.5}, "p"),
    ({"p": "abc"}, "p"),
    ({"p": True}, "p"),
    ({"max_epochs": 0}, "max_epochs"),
    ({"seeds": []}, "seeds"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"seeds": [0.5]}, "seeds"),
    ({"domains": []}, "domains"),
    ({"domains": ["atlantis"]}, "domains"),
    ({"pairs": [["books"]]}, "pairs"),
    ({"pairs": [["books", "books"]]}, "pairs"),
    ({"pairs": [["books", "dvd"]]}, "pairs"),  # dvd is not a smoke domain
    ({"overrides": {"train.nope": 1}}, "overrides"),
])
def test_chapter_settings_errors_name_the_parameter(kwargs, name):
    kwargs = {"profile": "smoke", **kwargs}
    with pytest.raises(ValueError, match=f"^parameter '{name}'"):
        selection.chapter_settings(**kwargs)


@pytest.mark.parametrize("kwargs, setting", [
    ({"rounds": -1}, "prune.rounds"),
    ({"p": "abc"}, "prune.prune_fraction_per_round"),
    ({"max_epochs": 0}, "train.max_epochs"),
    ({"n_train": 201}, "data.n_train"),
    ({"overrides": {"train.lr": -1}}, "train.lr"),
])
def test_chapter_parameter_errors_end_with_the_settings_help(kwargs, setting):
    from lottery.config import hparams

    with pytest.raises(ValueError) as info:
        selection.chapter_settings("smoke", **kwargs)
    assert str(info.value).endswith(f"({setting}: {hparams.setting_help(setting)})")


def test_chapter_settings_resolve_once_and_are_marked(monkeypatch):
    from lottery.experiment import validate

    calls = []
    real = validate.resolve
    monkeypatch.setattr(validate, "resolve", lambda *a, **k: calls.append(1) or real(*a, **k))
    run = selection.chapter_settings("smoke", domains=["dvd", "B"], seeds=3, p=0.2,
                                     pairs=[["Books", "Movies"]])
    assert calls == [1] and run.settings.resolved
    assert run.domains == ("dvd", "books") and run.seeds == (3,) and run.pairs == (("books", "dvd"),)


# ------------------------------------------------------------------ chapters and parameters
def test_every_chapter_has_one_parameters_cell_with_profile():
    for ch in chapters.CHAPTERS:
        params = chapters.read_chapter(ch.name, NOTEBOOKS).parameters
        assert params["profile"] == "course", ch.name
        assert all(v is None for k, v in params.items() if k != "profile"), ch.name
        assert set(params) - {"profile"} <= set(chapters.SETTINGS_PARAMETERS
                                                + chapters.CHAPTER_PARAMETERS
                                                + chapters.SETUP_PARAMETERS), ch.name
        assert ("p" in params) == ("rounds" in params), f"{ch.name}: p goes with rounds"
    assert set(chapters.EXECUTION_ORDER) == {c.name for c in chapters.CHAPTERS}


def test_check_parameters_rejects_unknown_names_and_bad_values():
    tickets = chapters.read_chapter("tickets", NOTEBOOKS)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['pairs'\] for chapter 'tickets'"):
        chapters.check_parameters(tickets, {"pairs": [["books", "electronics"]]})
    with pytest.raises(ValueError, match="parameter 'rounds'"):
        chapters.check_parameters(tickets, {"rounds": "eight"})
    with pytest.raises(ValueError, match="parameter 'p'"):
        chapters.check_parameters(tickets, {"p": 1})
    with pytest.raises(ValueError, match="unknown chapter 'ticket'"):
        chapters.read_chapter("ticket", NOTEBOOKS)
    chapters.check_parameters(tickets, {"profile": "smoke", "domains": ["books"], "rounds": 2,
                                        "p": 0.2})


def test_read_chapter_needs_its_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        chapters.read_chapter("tickets", tmp_path)


def test_chapters_take_any_dataset_and_show_its_own_names(mirror, tmp_path):
    """A user spec without data.domains: all its domains, its display names (a domain
    called dvd is not "Movies"), profile pairs/controls kept only where they fit."""
    import json
    import shutil

    from lottery import data
    from lottery.experiment import labels

    shutil.copy(mirror / "format-samples/mcauley2014/Books_small.json", tmp_path / "b.json")
    spec = tmp_path / "mine.json"
    spec.write_text(json.dumps({"format": "mcauley2014", "licence": "research",
                                "domains": {"dvd": ["b.json"],
                                            "gadgets": {"files": ["b.json"], "name": "Gadgets"}}}))
    try:
        run = selection.chapter_settings("course", dataset=str(spec))
        assert run.domains == ("dvd", "gadgets") and run.pairs == ()
        assert run.settings.control_domains == ()
        assert labels.display_name("dvd") == "dvd" and labels.display_name("gadgets") == "Gadgets"
        assert selection.chapter_settings("course", dataset=str(spec), domains=["Gadgets"]).domains \
            == ("gadgets",)
        with pytest.raises(ValueError, match="parameter 'dataset'"):
            selection.chapter_settings("course", dataset=str(tmp_path / "none.json"))
        with pytest.raises(ValueError, match="unknown domain 'books'"):
            selection.chapter_settings("course", dataset=str(spec), domains=["books"])
    finally:
        data.use_display_names("fdu-mtl")
    assert labels.display_name("dvd") == "Movies"


# ------------------------------------------------------------------ the chapter table

def test_the_chapter_table_is_the_books_order_and_names():
    """CHAPTERS is the book's order (the table of contents), names and sources unchanged."""
    import yaml

    toc = yaml.safe_load((NOTEBOOKS.parent / "_toc.yml").read_text())
    pages = [toc["root"]] + [c["file"] for c in toc["chapters"] if c["file"].startswith("chapters/")]
    assert [f"chapters/{c.name}" for c in chapters.CHAPTERS] == pages
    assert all((NOTEBOOKS / c.source).is_file() for c in chapters.CHAPTERS)
    assert len({c.source for c in chapters.CHAPTERS}) == len(chapters.CHAPTERS)


def test_waves_order_and_work_come_from_the_table():
    from lottery.book import plan

    by_name = {c.name: c for c in chapters.CHAPTERS}
    assert sorted(chapters.EXECUTION_ORDER) == sorted(by_name)
    for i, wave in enumerate(chapters.EXECUTION_WAVES):
        assert {by_name[n].wave for n in wave} == {sorted({c.wave for c in chapters.CHAPTERS})[i]}
        trains = [bool(by_name[n].work) for n in wave]
        assert trains == sorted(trains, reverse=True)     # chapters that train start first
    # results before the pages that read them; summaries after every other page
    assert by_name["tickets"].wave < by_name["transfer"].wave < by_name["phase"].wave
    last = max(c.wave for c in chapters.CHAPTERS)
    assert chapters.SUMMARIES == ("intro",) and chapters.EXECUTION_WAVES[-1] == chapters.SUMMARIES
    assert all(by_name[n].wave == last for n in chapters.SUMMARIES)
    assert all(c.wave < last for c in chapters.CHAPTERS if not c.summary)
    # the costs of a chapter's exercises count the work the table says it does
    assert plan.CHAPTER_WORK == {c.name: c.work for c in chapters.CHAPTERS}
    assert plan.CHAPTER_WORK["federated"] == ("federated",) and plan.CHAPTER_WORK["data"] == ()
    works = {"tickets", "transfer", "ablation", "federated", "instability"}
    assert set().union(*plan.CHAPTER_WORK.values()) == works
