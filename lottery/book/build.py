"""The build pipeline: from the chapter sources to the offline HTML book.

1. jupytext: read each chapter source (``notebooks/*.md``) into a notebook;
2. papermill: execute it with the chosen profile (and per-chapter parameters) into
   ``book/chapters/<name>.ipynb`` (git-ignored);
3. ``jupyter-book build --all -W -n --keep-going book --path-output book --config
   _config.yml --toc _toc.yml`` turns those into HTML.

The project (the folder holding ``_config.yml``, ``_toc.yml``, ``notebooks/`` and
``book/``) is found from the working directory or given explicitly
(:func:`find_project`), never from where this module is installed, so one installed
``lottery`` builds whichever checkout it is run in. Chapters share results through
the engine's run store, so a rebuild after a finished build only loads results.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from lottery import config
from lottery.book import pages, plan as cost_plan, plots, progress
from lottery.book.layout import (BOOK_DIR, EXECUTED_SUBDIR, NOTEBOOKS_DIR, TIMINGS_FILE, TOC_FILE,
                                 find_project, notebooks_dir)
from lottery.book.chapters import (CHAPTERS, EXECUTION_ORDER, EXECUTION_WAVES, SUMMARIES, ChapterSource,
                                   chapter, check_parameters, read_chapter)
from lottery.book.launch import book_config, package_source


#: npm package that provides MathJax 3 for the offline book; only this file is needed.
MATHJAX_PACKAGE = "mathjax@3.2.2"
MATHJAX_FILE = "tex-svg-full.js"

Log = Callable[[str], None]


# ---------------------------------------------------------------------------- assets
def ensure_assets(book_dir: Path, log: Log = print) -> None:
    """Put the Vega bundle and MathJax into the book (no CDN at view time).

    Vega comes from vl-convert-python (installed) and goes to ``_static/``, whose
    ``.js`` files jupyter-book adds to every page. MathJax comes from the npm package
    ``mathjax@3``, fetched once with ``npm pack`` into the cache, and goes to
    ``_extra/mathjax/`` (copied as is to the HTML root): Sphinx loads it, deferred,
    only on pages with maths (``mathjax_path`` in ``_config.yml``).
    """

    plots.write_vega_bundle(book_dir / "_static")
    target = book_dir / "_extra" / "mathjax" / MATHJAX_FILE
    if target.exists():
        return
    tgz = mathjax_tarball(log)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz) as tar:
        for member, dest in ((f"package/es5/{MATHJAX_FILE}", target),
                             ("package/LICENSE", target.parent / "LICENSE")):
            src = tar.extractfile(member)
            if src is None:
                raise RuntimeError(f"{tgz} has no {member}")
            dest.write_bytes(src.read())
    log(f"MathJax: {target.relative_to(book_dir)} from {tgz.name}")


def mathjax_tarball(log: Log = print) -> Path:
    """The cached ``npm pack`` tarball of MathJax, fetched from the npm registry once."""
    cache = config.cache_dir() / "npm"
    name = MATHJAX_PACKAGE.replace("@", "-") + ".tgz"
    path = cache / name
    if path.exists():
        return path
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"MathJax is not in {path} and `npm` is not installed; install Node.js/npm "
            f"(apt-get install npm) or put the tarball of `npm pack {MATHJAX_PACKAGE}` there"
        )
    cache.mkdir(parents=True, exist_ok=True)
    log(f"fetching {MATHJAX_PACKAGE} with npm pack (one-off)")
    proc = subprocess.run([npm, "pack", MATHJAX_PACKAGE, "--pack-destination", str(cache)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not path.exists():
        raise RuntimeError(f"`npm pack {MATHJAX_PACKAGE}` failed:\n{proc.stderr[-2000:]}")
    return path


# ---------------------------------------------------------------------------- execution
def kernel_name() -> str:
    """A kernel that runs *this* Python (the venv with ``lottery`` installed).

    ``python3`` is used when its kernelspec launches ``python`` (jupyter_client maps
    that to ``sys.executable``) or this interpreter; otherwise (e.g. a user-level
    ``python3`` spec pointing elsewhere) a ``lottery-book`` spec is installed into
    ``sys.prefix`` and used.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # book extra

    ksm = KernelSpecManager()
    try:
        exe = ksm.get_kernel_spec("python3").argv[0]
        if exe in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}") \
                or Path(exe).resolve() == Path(sys.executable).resolve():
            return "python3"
    except NoSuchKernel:
        pass
    name = "lottery-book"
    try:
        spec = ksm.get_kernel_spec(name)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return name
    except NoSuchKernel:
        pass
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix",
                    "--name", name, "--display-name", "Python (lottery-book)"],
                   check=True, capture_output=True)
    return name


class ChapterError(RuntimeError):
    """A chapter raised while executing; the message names the chapter and the cell."""


def _papermill(source: ChapterSource, output: Path, parameters: Mapping[str, Any]) -> None:
    """Execute ``source``'s notebook into ``output`` (the kernel runs in its folder and
    stamps the page into ``<folder>/_stamps``)."""
    import papermill as pm  # book extra, slow to import; only a build executes

    try:
        pm.execute_notebook(
            source.notebook, str(output), parameters=dict(parameters),
            kernel_name=kernel_name(), cwd=str(output.parent), progress_bar=False,
            log_output=False, request_save_on_cell_execute=False,
            # the kernel's transport and shutdown log lines ("running over TCP without
            # encryption", "KeyboardInterrupt caught in kernel") are dropped from its
            # stderr, every other line is passed on (lottery.book.progress)
            kernel_manager_class=progress.kernel_manager(
                {pages.STAMPS_ENV: str(pages.stamps_dir(output.parent))}),
        )
    except pm.PapermillExecutionError as exc:
        raise ChapterError(
            f"chapter {source.name!r} failed in cell {exc.cell_index}: {exc.ename}: "
            f"{exc.evalue} (the executed notebook with the traceback is {output})") from None


def execute_chapter(
    name: str | ChapterSource,
    profile: str = "course",
    parameters: Mapping[str, Any] | None = None,
    output: Path | None = None,
    book_dir: Path | None = None,
    project: Path | None = None,
    log: Log = print,
    show_progress: bool = True,
) -> Path:
    """Execute one chapter with papermill; returns the executed notebook's path.

    While it runs, a line on stderr every 30 s says how many of the networks it trains
    are done and how long the rest should take (``show_progress``).

    ``name`` is a chapter's name (read from the project's ``notebooks/``) or a chapter
    the caller has read already (:func:`lottery.book.chapters.read_chapter`). Invalid parameters raise ``ValueError`` before anything
    runs; a failing cell raises :class:`ChapterError`. The default output is
    ``<book_dir>/chapters/<name>.ipynb``, ``book_dir`` defaulting to the project's book.
    """
    source = name if isinstance(name, ChapterSource) else read_chapter(
        name, notebooks_dir(project))
    params = {"profile": profile, **(parameters or {})}
    check_parameters(source, params)
    if output is None:
        root = Path(book_dir) if book_dir else find_project(project) / BOOK_DIR
        output = root / EXECUTED_SUBDIR / f"{source.name}.ipynb"
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    pages.write_parameters(output.parent, source.name, profile, parameters or {})
    source_url = (package_source(project, chapter_name=source.name)
                  if "package_source" in source.parameters else "")
    if source_url and "package_source" not in params:
        params["package_source"] = source_url
    start = time.perf_counter()
    with _progress(source.name, profile, params, show_progress):
        _papermill(source, output, params)
    progress.end_line()
    log(f"  {source.name:<11} {time.perf_counter() - start:6.1f} s  -> {output}")
    return output


def _progress(chapter: str, profile: str, params: Mapping[str, Any], show: bool) -> Any:
    """A progress reporter for the chapter's networks (:mod:`lottery.book.progress`), or
    nothing when ``show`` is false."""
    if not show:
        return contextlib.nullcontext()
    return progress.ChapterProgress(chapter, lambda: cost_plan.chapter_trainings(profile, chapter, params))


def refresh_summaries(chapters_dir: Path, project: Path | None = None, log: Log = print,
                      executed: str | None = None) -> list[str]:
    """After chapter ``executed`` was re-executed inside a built book, re-execute the
    chapters that summarise the others (the table's ``summary`` column; they only load
    results), each with its own parameters, so that their lists of pages and settings
    are current. Summaries not executed yet, and ``executed`` itself, are left alone.
    Returns the chapters re-executed."""
    done = []
    for name in SUMMARIES:
        output = Path(chapters_dir) / f"{name}.ipynb"
        if name == executed or not output.exists():
            continue
        given = pages.parameters_of(name, chapters_dir) or {"profile": "course", "parameters": {}}
        log(f"re-executing {name}, which summarises every page:")
        execute_chapter(name, given["profile"], given["parameters"], output=output,
                        project=project, log=log)
        done.append(name)
    return done


def refresh_intro(chapters_dir: Path, project: Path | None = None, log: Log = print) -> bool:
    """:func:`refresh_summaries` (the intro is the book's one summary); whether it ran."""
    return bool(refresh_summaries(chapters_dir, project, log))


def plan(sources: Sequence[ChapterSource], profile: str,
         parameters: Mapping[str, Any]) -> list[tuple[ChapterSource, dict[str, Any]]]:
    """Each chapter with the parameters it declares, all checked before any runs.

    A parameter goes to every chapter that declares it; one that no chapter declares,
    or a value a chapter rejects, raises ``ValueError`` naming it.
    """
    declared = set().union(*(s.parameters for s in sources))
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; the chapters take "
                         f"{sorted(declared)}")
    out = []
    for source in sources:
        own = {k: v for k, v in parameters.items() if k in source.parameters}
        check_parameters(source, {"profile": profile, **own})
        out.append((source, own))
    return out


# ---------------------------------------------------------------------------- the book
def _copy_book_sources(src: Path, dst: Path) -> None:
    """Copy the static book files (config, toc, pages, assets) into a build root."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name in ("_build", EXECUTED_SUBDIR):
            continue
        target = dst / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)


def _jupyter_book(project: Path, root: Path) -> None:
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", "--all", "-W", "-n", "--keep-going", str(root),
           "--path-output", str(root),  # else _build lands next to _config.yml
           "--config", str(book_config(project, root)), "--toc", str(project / TOC_FILE)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("jupyter-book build failed:\n" + proc.stdout[-6000:]
                           + proc.stderr[-6000:])


def _run_wave(jobs: Sequence[tuple[ChapterSource, dict[str, Any]]], profile: str, root: Path,
              log: Log) -> dict[str, float]:
    """Execute one wave's chapters, in parallel kernels when there are cores for them;
    the first failure is raised after the others finished. Returns seconds per chapter."""
    def one(source: ChapterSource, params: dict[str, Any]) -> float:
        start = time.perf_counter()
        execute_chapter(source, profile, params, book_dir=root, log=log)
        return round(time.perf_counter() - start, 1)

    workers = max(1, min(len(jobs), config.usable_cores()))
    if workers == 1:
        return {s.name: one(s, p) for s, p in jobs}
    with ThreadPoolExecutor(workers) as pool:   # each chapter runs in its own kernel process
        futures = {s.name: pool.submit(one, s, p) for s, p in jobs}
    return {name: f.result() for name, f in futures.items()}


def build_book(
    profile: str = "course",
    parameters: Mapping[str, Any] | None = None,
    chapters: Sequence[str] | None = None,
    book_dir: Path | None = None,
    execute: bool = True,
    html: bool = True,
    project: Path | None = None,
    log: Log = print,
) -> Path:
    """Execute the chapters (papermill) and build the HTML (jupyter-book).

    ``project`` is the project folder (default: found from the working directory).
    ``parameters`` go to every chapter that declares them (error if none does); all are
    checked before the first chapter runs. ``book_dir`` other than the project's
    ``book/`` gets a copy of the book sources first (tests build into a temporary
    folder). Returns the HTML index.
    """
    project = find_project(project)
    src = project / BOOK_DIR
    root = Path(book_dir) if book_dir else src
    if root.resolve() != src.resolve():
        _copy_book_sources(src, root)
    names = list(EXECUTION_ORDER) if chapters is None else [chapter(c).name for c in chapters]
    parameters = dict(parameters or {})
    todo = (plan([read_chapter(n, project / NOTEBOOKS_DIR) for n in names], profile, parameters)
            if execute or parameters else [])
    total = time.perf_counter()
    log(f"lottery book: profile {profile!r}, book at {root}")
    ensure_assets(root, log=log)
    timings_path = root / EXECUTED_SUBDIR / TIMINGS_FILE
    timings: dict[str, float] = {}
    if execute:
        pages.clear(root / EXECUTED_SUBDIR, [s.name for s, _ in todo])
        log("executing chapters (papermill; chapters of one wave side by side):")
        for wave in EXECUTION_WAVES:
            jobs = [(s, p) for s, p in todo if s.name in wave]
            if any(s.chapter.summary for s, _ in jobs):  # a summary reports the others' timings
                timings_path.parent.mkdir(parents=True, exist_ok=True)
                timings_path.write_text(json.dumps(timings, indent=1))
            timings.update(_run_wave(jobs, profile, root, log))
        timings_path.write_text(json.dumps(timings, indent=1))
    missing = [c.name for c in CHAPTERS
               if not (root / EXECUTED_SUBDIR / f"{c.name}.ipynb").exists()]
    if missing:
        raise RuntimeError(f"not executed yet: {missing}; run without --no-execute")
    index = root / "_build" / "html" / "index.html"
    if html:
        start = time.perf_counter()
        log("building HTML (jupyter-book build --all -W -n --keep-going):")
        _jupyter_book(project, root)
        log(f"  html        {time.perf_counter() - start:6.1f} s  -> {index}")
    log(f"done in {time.perf_counter() - total:.1f} s")
    return index
