"""The chapters: which there are, what parameters they take, and what a chapter runs.

Each chapter is a jupytext MyST notebook in the project's ``notebooks/`` folder with
one cell tagged ``parameters`` (papermill's convention): its names are the chapter's
parameters, its values the defaults. :func:`read_chapter` reads a chapter and executes
that cell once; the build, the CLI and the checks all work from the result, so a
command reads each chapter's declaration once.

Inside a chapter, :func:`chapter_settings` turns the parameters into the experiment
settings plus the selection the chapter shows (:class:`ChapterSettings`); its errors
name the offending parameter, so a bad ``-p`` value fails in one line before any
notebook runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


from lottery.book import stability
from lottery.experiment.selection import chapter_settings
from lottery.stats import ablation


@dataclass(frozen=True)
class Chapter:
    """One row of the chapter table: everything the build, the CLI and the cost plans
    need to know about a chapter."""

    name: str  # what `lottery chapter NAME` accepts; also the executed notebook's stem
    source: str  # file in notebooks/
    title: str
    #: Execution wave: a chapter runs after every chapter of an earlier wave (whose
    #: results it reads) and beside the chapters of its own wave, which it must not
    #: depend on (the shared vocabulary is written atomically by whichever needs it first).
    wave: int
    #: The procedures it trains (:func:`lottery.book.plan.chains`); () reads only the
    #: data and vocabulary. Its exercises' costs count these.
    work: tuple[str, ...] = ()
    #: It summarises the other pages (their compute, this build's timings, their
    #: settings): it runs in the last wave, the build hands it the timings of the
    #: chapters before it, and re-executing another chapter re-executes it.
    summary: bool = False


#: The chapters, in the book's order (``lottery chapter --list`` lists them so).
CHAPTERS: tuple[Chapter, ...] = (
    # name, source in notebooks/, title; wave; work; summary
    Chapter("intro", "00_intro.md", "Introduction", 4, ("tickets", "transfer"), summary=True),
    Chapter("data", "01_data.md", "The data", 0),
    Chapter("divergence", "02_divergence.md", "How different are the domains?", 0),
    Chapter("tickets", "03_tickets.md", "Finding tickets", 0, ("tickets",)),
    Chapter("transfer", "04_transfer.md", "Transferring tickets", 1, ("transfer",)),
    Chapter("phase", "05_phase_transition.md", "The phase transition", 2, ("tickets", "transfer", "instability")),
    Chapter("ablation", "07_ablation.md", "Why this book differs from the paper", 2, ("ablation",)),
    # It reads only ticket runs: beside the transfer chapter, so that neither leaves a core idle.
    Chapter("federated", "08_federated.md", "Sparsify and transfer, federated", 1, ("federated",)),
    Chapter("verdict", "06_paper_vs_book.md", "Paper vs this book", 2, ("tickets", "transfer")),
)

#: Execution order, in waves (from the table): results before the pages that read or
#: summarise them. Inside a wave, chapters that train start first (the longest), then
#: in the book's order; the build runs a wave's chapters side by side.
EXECUTION_WAVES: tuple[tuple[str, ...], ...] = tuple(
    tuple(c.name for c in sorted((c for c in CHAPTERS if c.wave == w), key=lambda c: not c.work))
    for w in sorted({c.wave for c in CHAPTERS}))
EXECUTION_ORDER: tuple[str, ...] = tuple(n for wave in EXECUTION_WAVES for n in wave)

#: The chapters that summarise the others (see :attr:`Chapter.summary`).
SUMMARIES: tuple[str, ...] = tuple(c.name for c in CHAPTERS if c.summary)

#: Which procedures each chapter trains (:attr:`Chapter.work`).
CHAPTER_WORK: dict[str, tuple[str, ...]] = {c.name: c.work for c in CHAPTERS}

#: Parameters that only one chapter takes (checked by that chapter's library code).
CHAPTER_PARAMETERS: tuple[str, ...] = ("variants", "rewind_sweep") + stability.PARAMETERS

#: Parameters every chapter takes that are not settings: what the set-up cell installs
#: outside the project (the build passes it from ``_config.yml``'s ``repository.url``),
#: and the Dask cluster to train on (``--dask``).
SETUP_PARAMETERS: tuple[str, ...] = ("package_source", "dask")

#: Parameters that :func:`chapter_settings` takes (besides ``profile``).
SETTINGS_PARAMETERS: tuple[str, ...] = (
    "domains", "seeds", "pairs", "rounds", "p", "max_epochs", "n_train", "dataset", "overrides",
)


def source_stem(ch: Chapter) -> str:
    """The stem of the chapter's file in ``notebooks/`` (``06_paper_vs_book`` for ``verdict``)."""
    return Path(ch.source).stem


def chapter(name: str) -> Chapter:
    """The chapter called ``name``, given by its name (``verdict``), its file's stem
    (``06_paper_vs_book``) or its file name (``06_paper_vs_book.md``); unknown names
    raise ``ValueError`` listing the valid ones."""
    for ch in CHAPTERS:
        if name in (ch.name, ch.source, source_stem(ch)):
            return ch
    raise ValueError(
        f"unknown chapter {name!r}; choose one of {[c.name for c in CHAPTERS]} "
        f"(or a file stem: {[source_stem(c) for c in CHAPTERS]})"
    )


# ---------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class ChapterSource:
    """A chapter read once: the (unexecuted) notebook and its declared parameters."""

    chapter: Chapter
    notebook: Any  # nbformat.NotebookNode, python3 kernelspec
    parameters: dict[str, Any]  # names and defaults of the ``parameters`` cell

    @property
    def name(self) -> str:
        return self.chapter.name


def read_chapter(name: str, notebooks_dir: Path) -> ChapterSource:
    """Read chapter ``name`` from ``notebooks_dir`` and execute its ``parameters`` cell.

    The folder is an argument (not derived from this file's location) so the library
    works wherever the project is checked out; see :func:`lottery.book.build.find_project`.
    """
    import jupytext  # optional (the `book` extra), only needed to read chapter sources

    ch = chapter(name)
    nb = jupytext.read(Path(notebooks_dir) / ch.source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)
    return ChapterSource(ch, nb, _declared_parameters(nb, name))


def _declared_parameters(nb: Any, name: str) -> dict[str, Any]:
    """Execute the one ``parameters`` cell of ``nb``; its names are the parameters."""
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise RuntimeError(f"chapter {name!r} must have exactly one 'parameters' cell, "
                           f"found {len(cells)}")
    namespace: dict[str, Any] = {}
    exec(compile(cells[0].source, f"<{name} parameters>", "exec"), {}, namespace)
    return namespace


def check_parameters(source: ChapterSource, parameters: Mapping[str, Any]) -> None:
    """Reject parameters the chapter does not declare, and invalid setting values."""
    declared = source.parameters
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for chapter {source.name!r}; "
                         f"it takes {sorted(declared)}")
    merged = {**declared, **parameters}
    run = chapter_settings(merged.get("profile", "course"),
                           **{k: merged[k] for k in SETTINGS_PARAMETERS if k in merged})
    if any(merged.get(k) is not None for k in stability.PARAMETERS):   # the phase chapter's
        stability.for_chapter(run, {k: merged.get(k) for k in stability.PARAMETERS})
    if merged.get("variants") is not None:

        try:
            ablation.select(merged["variants"])
        except ValueError as exc:
            raise ValueError(f"parameter 'variants': {exc}") from None


