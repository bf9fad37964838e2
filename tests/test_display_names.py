"""The one process-wide display choice (lottery.data.registry._ACTIVE_NAMES): text only,
and scoped by ``display_names`` so that no test depends on which ran before it."""

from __future__ import annotations

import json
import shutil

import pytest

from lottery import data
from lottery.data import registry


def _spec(mirror, tmp_path):
    shutil.copy(mirror / "format-samples/mcauley2014/Books_small.json", tmp_path / "b.json")
    spec = tmp_path / "mine.json"
    spec.write_text(json.dumps({"format": "mcauley2014", "licence": "research",
                                "domains": {"dvd": ["b.json"],
                                            "gadgets": {"files": ["b.json"], "name": "Gadgets"}}}))
    return str(spec)


def test_display_names_puts_the_previous_choice_back(mirror, tmp_path):
    spec = _spec(mirror, tmp_path)
    before = registry._ACTIVE_NAMES
    with registry.display_names(spec):
        assert data.paper_name("gadgets") == "Gadgets" and data.paper_name("dvd") == "dvd"
        with registry.display_names("blitzer"):
            assert data.paper_name("dvd") == "Movies"
        assert data.paper_name("dvd") == "dvd"
    assert registry._ACTIVE_NAMES == before
    with pytest.raises(ValueError), registry.display_names(spec):
        raise ValueError("a failing block")
    assert registry._ACTIVE_NAMES == before


def test_the_downloadable_datasets_show_the_papers_names():
    with registry.display_names("fdu-mtl"):
        assert registry._ACTIVE_NAMES is None
        assert data.paper_name("dvd") == "Movies" and data.paper_name("music") == "CDs"
