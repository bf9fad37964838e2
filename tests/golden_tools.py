"""The golden notebooks of tests/golden/: what they keep, and how to regenerate them.

A golden copy is a chapter executed with the ``smoke`` profile, reduced to what nbval
compares (text outputs: tables and glued values). These tools are test fixtures, not
part of the library. Regenerate after an intended change to a chapter or the engine,
then review the diff:

    .venv/bin/python tests/golden_tools.py            # all chapters, smoke profile
    .venv/bin/python tests/golden_tools.py tickets    # one chapter

The chapters run on an empty run store in a temporary folder (``--cache DIR`` to reuse
one), as the tests' do: a store written by older code may lack a metric (e.g. the
predicted-class share behind "collapsed") and give other outputs than a fresh one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import nbformat

from lottery.book import build, chapters

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO / "tests" / "golden"
SANITIZE_FILE = GOLDEN_DIR / "sanitize.cfg"

#: Outputs of cells with these tags are dropped from golden copies and not compared.
IGNORE_TAG = "nbval-ignore-output"


def golden_copy(executed: Path | str) -> nbformat.NotebookNode:
    """A small golden copy of an executed notebook for nbval.

    Keeps text outputs (tables, glue values), drops the outputs of cells tagged
    ``nbval-ignore-output`` (charts, timings, hardware) and papermill's metadata.
    """
    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if IGNORE_TAG in cell.metadata.get("tags", []):
            cell.outputs = []
        for out in cell.get("outputs", []):
            out.get("metadata", {}).pop("papermill", None)
    return nb


def update_golden(names: Sequence[str] = chapters.EXECUTION_ORDER, profile: str = "smoke",
                  golden_dir: Path = GOLDEN_DIR, project: Path = REPO,
                  log: Callable[[str], None] = print) -> list[Path]:
    """Re-execute ``names`` (in execution order) with ``profile`` and rewrite their goldens."""
    golden_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in [n for n in chapters.EXECUTION_ORDER if n in names]:
            executed = build.execute_chapter(name, profile, output=Path(tmp) / f"{name}.ipynb",
                                             project=project, log=log)
            path = golden_dir / f"{name}.ipynb"
            nbformat.write(golden_copy(executed), str(path))
            written.append(path)
            log(f"  golden      {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="CHAPTER",
                        help=f"chapters to regenerate (default: all of "
                             f"{', '.join(chapters.EXECUTION_ORDER)})")
    parser.add_argument("--profile", default="smoke", help="profile (default: smoke)")
    parser.add_argument("--cache", help="run store and cache folder (default: a new empty one)")
    args = parser.parse_args(argv)
    os.environ["LOTTERY_CACHE_DIR"] = args.cache or tempfile.mkdtemp(prefix="lottery-golden-")
    for name in args.names:
        chapters.chapter(name)  # unknown names fail before anything runs
    update_golden(args.names or chapters.EXECUTION_ORDER, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
