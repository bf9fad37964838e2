"""The golden notebooks (tests/golden/) are small, chart-free and up to date with the
chapter sources; the nbval comparison itself is in test_book_build.py."""

from __future__ import annotations

import json

import nbformat
import pytest

from golden_tools import GOLDEN_DIR, IGNORE_TAG, REPO, golden_copy
from lottery.book import chapters, layout

NOTEBOOKS = layout.notebooks_dir(REPO)
REGENERATE = "python tests/golden_tools.py"


def test_golden_copy_strips_ignored_outputs_and_metadata(tmp_path):
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_code_cell("1 + 1", outputs=[nbformat.v4.new_output(
        "execute_result", data={"text/plain": "2"}, execution_count=1)])
    drop = nbformat.v4.new_code_cell("chart", metadata={"tags": [IGNORE_TAG]}, outputs=[
        nbformat.v4.new_output("display_data", data={"text/html": "<div>" + "x" * 10_000})])
    keep.metadata["papermill"] = {"duration": 1.0}
    nb.cells = [keep, drop]
    nb.metadata["papermill"] = {"parameters": {}}
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, str(path))
    golden = golden_copy(path)
    assert golden.cells[0].outputs[0]["data"]["text/plain"] == "2"
    assert golden.cells[1].outputs == []
    assert "papermill" not in golden.metadata and "papermill" not in golden.cells[0].metadata


def _code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"
            and "injected-parameters" not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("name", [c.name for c in chapters.CHAPTERS])
def test_golden_copies_match_the_chapter_sources(name):
    """The committed goldens must be regenerated when a chapter's code changes."""
    path = GOLDEN_DIR / f"{name}.ipynb"
    assert path.exists(), f"missing {path}; run `{REGENERATE}`"
    golden = nbformat.read(str(path), as_version=4)
    source = chapters.read_chapter(name, NOTEBOOKS)
    assert _code_sources(golden) == _code_sources(source.notebook), (
        f"{path.name} is out of date with notebooks/{source.chapter.source}; run `{REGENERATE}`")
    injected = [c for c in golden.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
    assert path.stat().st_size < 200_000, "golden copies must stay small"
    for cell in golden.cells:
        for out in cell.get("outputs", []):
            assert "lottery-chart-" not in json.dumps(out.get("data", {})), \
                f"{name}: a chart output is in the golden copy (tag its cell {IGNORE_TAG})"
