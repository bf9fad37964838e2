"""Where the project and its cache are: the project folder (found from the working
directory or the installed package) and the cache root for downloads and runs; and how
many cores this process may use."""

from __future__ import annotations

import os
from pathlib import Path

#: What marks a lottery-book project folder (see :func:`project_root`).
PROJECT_MARKERS: tuple[str, ...] = ("_config.yml", "_toc.yml", "notebooks/")


def is_project(folder: Path) -> bool:
    """Whether ``folder`` holds the project's layout (``_config.yml``, ``_toc.yml``, ``notebooks/``)."""
    return all((folder / m.rstrip("/")).is_dir() if m.endswith("/") else (folder / m).is_file()
               for m in PROJECT_MARKERS)


def project_root(start: Path | str | None = None) -> Path | None:
    """The project at or above ``start`` (default: the working directory), else None."""
    here = Path(Path.cwd() if start is None else start).expanduser().resolve()
    return next((f for f in (here, *here.parents) if is_project(f)), None)


def cache_dir() -> Path:
    """Root folder for downloads, vocabularies and runs.

    ``LOTTERY_CACHE_DIR`` overrides it. Otherwise, inside a checkout of the project
    (found from the working directory, else from where this package is installed
    editable) it is the project's ``.cache/`` — the folder ``make`` uses, so the CLI,
    a chapter re-run and ``make book`` share one run store — and elsewhere (e.g. on
    Colab) ``$XDG_CACHE_HOME/lottery-book``.
    """
    env = os.environ.get("LOTTERY_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    project = project_root() or project_root(Path(__file__).parent)
    if project is not None:
        return project / ".cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lottery-book"


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (what ``taskset``, Slurm's
    ``--cpus-per-task`` or a container's cpuset leave it), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):      # macOS, Windows: no affinity call
        return max(1, os.cpu_count() or 1)
