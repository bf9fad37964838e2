"""The project's layout: which files mark a lottery-book project, where the chapter
sources, the book and the executed notebooks live."""

from __future__ import annotations

from pathlib import Path

from lottery import config

# ---------------------------------------------------------------------------- layout
CONFIG_FILE = "_config.yml"


TOC_FILE = "_toc.yml"


NOTEBOOKS_DIR = "notebooks"  # chapter sources (jupytext MyST)


BOOK_DIR = "book"  # jupyter-book sources and output


EXECUTED_SUBDIR = "chapters"  # executed notebooks, inside the book folder


TIMINGS_FILE = "_timings.json"  # per-chapter seconds, next to the executed notebooks


class ProjectNotFoundError(FileNotFoundError):
    """No folder with the project's layout at or above the given one."""


def find_project(start: Path | str | None = None) -> Path:
    """The project folder: ``start`` (default: the working directory) or its nearest
    parent that holds ``_config.yml``, ``_toc.yml`` and ``notebooks/``.

    Raises :class:`ProjectNotFoundError` naming what it looked for and where.
    """
    here = Path(Path.cwd() if start is None else start).expanduser().resolve()
    found = config.project_root(here)
    if found is not None:
        return found
    raise ProjectNotFoundError(
        f"no lottery-book project at or above {here}: looked for a folder holding "
        f"{CONFIG_FILE}, {TOC_FILE} and {NOTEBOOKS_DIR}/; run inside the project or "
        f"pass its folder (--project DIR)")


def notebooks_dir(project: Path | str | None = None) -> Path:
    """The chapter sources of the project found from ``project`` (see :func:`find_project`)."""
    return find_project(project) / NOTEBOOKS_DIR
