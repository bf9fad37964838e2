"""Running a chapter outside the project (Colab, Binder): what its set-up cell installs,
the book's launch buttons, and the *launch tree* those buttons open.

- :func:`package_source`: the pip requirement a chapter's set-up cell installs when
  ``lottery`` is not importable, pinned to the commit that built the page:
  ``lottery-book[book] @ git+https://github.com/OWNER/REPO@SHA`` (the distribution name
  comes from pyproject.toml).
- :func:`book_config`: the ``_config.yml`` jupyter-book gets; with ``repository.url``
  set it adds the Binder and Colab buttons, pointing at the :data:`LAUNCH_BRANCH`.
- :func:`write_launch_tree`: the executed chapters (``book/chapters/<name>.ipynb``, what
  the build wrote) with their ``package_source`` set, plus Binder's environment files
  (``requirements.txt``: CPU torch, then the pinned package; ``runtime.txt``). The
  workflow pushes it, as it is, to the :data:`LAUNCH_BRANCH` after ``make book``:
  ``python -m lottery.book.launch OUT_DIR``.

Jupyter Book 1.x (sphinx-book-theme) builds a page's buttons from ``repository.url``,
``repository.branch``, ``repository.path_to_book`` and the page's name, so with the
branch :data:`LAUNCH_BRANCH` and an empty ``path_to_book`` the tickets page
(``chapters/tickets``) opens ``chapters/tickets.ipynb`` of that branch (:func:`launch_urls`):

- Binder: ``https://mybinder.org/v2/gh/OWNER/REPO/launch?urlpath=tree/chapters/tickets.ipynb``
- Colab: ``https://colab.research.google.com/github/OWNER/REPO/blob/launch/chapters/tickets.ipynb``
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Sequence

from lottery.book.chapters import CHAPTERS, chapter
from lottery.book.layout import BOOK_DIR, CONFIG_FILE, EXECUTED_SUBDIR, ProjectNotFoundError, find_project

#: The branch the launch buttons open: the launch tree of the last book published from main.
LAUNCH_BRANCH = "launch"
BINDERHUB_URL = "https://mybinder.org"
COLAB_URL = "https://colab.research.google.com"
#: Binder installs torch from here: PyPI's torch is the CUDA build (GBs of nvidia-* wheels).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_REQUIREMENT = "torch==2.13.0+cpu"  # constraints/pinned.txt's torch, CPU build
PYTHON_RUNTIME = "python-3.11"  # Binder's runtime.txt; the version CI tests
#: The extras a chapter's set-up cell installs: the ``book`` extra (myst-nb, papermill,
#: ...). A chapter that needs more names them here (none does: the federated chapter's
#: default backend, ``inline``, needs no Flower).
DEFAULT_EXTRAS: tuple[str, ...] = ("book",)
CHAPTER_EXTRAS: dict[str, tuple[str, ...]] = {}
#: Binder builds one environment for every chapter.
BINDER_EXTRAS: tuple[str, ...] = tuple(dict.fromkeys(
    DEFAULT_EXTRAS + tuple(e for extras in CHAPTER_EXTRAS.values() for e in extras)))
FALLBACK_DISTRIBUTION = "lottery-book"


# ---------------------------------------------------------------------------- the repository
def _config(project: Path | None) -> dict[str, Any]:
    import yaml  # the book extra

    try:
        path = find_project(project) / CONFIG_FILE
    except ProjectNotFoundError:
        return {}
    return yaml.safe_load(path.read_text()) or {}


def repository_url(project: Path | None = None) -> str:
    """``repository.url`` of the project's ``_config.yml`` ("" when unset)."""
    repo = _config(project).get("repository") or {}
    return str(repo.get("url") or "").strip().rstrip("/")


def source_revision(project: Path | None = None) -> str:
    """The commit the project's checkout is at (``git rev-parse HEAD``); outside a git
    checkout, ``repository.branch`` of ``_config.yml`` (default ``main``)."""
    try:
        root = find_project(project)
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=30)
        sha = proc.stdout.strip()
        if proc.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", sha):
            return sha
    except (ProjectNotFoundError, OSError, subprocess.SubprocessError):
        pass
    return str((_config(project).get("repository") or {}).get("branch") or "main").strip()


def distribution_name(project: Path | None = None) -> str:
    """The package's distribution name, ``[project] name`` of the project's pyproject.toml
    (what pip checks a ``NAME @ URL`` requirement against)."""
    try:
        meta = tomllib.loads((find_project(project) / "pyproject.toml").read_text())
    except (ProjectNotFoundError, OSError, tomllib.TOMLDecodeError):
        return FALLBACK_DISTRIBUTION
    return str((meta.get("project") or {}).get("name") or FALLBACK_DISTRIBUTION)


def chapter_extras(name: str | None) -> tuple[str, ...]:
    """The extras chapter ``name``'s set-up cell installs (``None``: the default ones)."""
    return CHAPTER_EXTRAS.get(chapter(name).name, DEFAULT_EXTRAS) if name else DEFAULT_EXTRAS


def requirement(url: str, revision: str, extras: Sequence[str] = DEFAULT_EXTRAS,
                distribution: str = FALLBACK_DISTRIBUTION) -> str:
    """``DIST[EXTRAS] @ git+URL@REVISION`` (pip's direct-URL form)."""
    return f"{distribution}[{','.join(extras)}] @ git+{url.rstrip('/')}@{revision}"


def package_source(project: Path | None = None, sha: str | None = None,
                   chapter_name: str | None = None) -> str:
    """What chapter ``chapter_name``'s set-up cell pip-installs outside the project: the
    package with its extras at commit ``sha`` (default :func:`source_revision`);
    "" when ``repository.url`` is unset."""
    url = repository_url(project)
    if not url:
        return ""
    return requirement(url, sha or source_revision(project), chapter_extras(chapter_name),
                       distribution_name(project))


# ---------------------------------------------------------------------------- the buttons
def _github_parts(url: str) -> tuple[str, str]:
    match = re.fullmatch(r"https?://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", url.strip())
    if not match:
        raise ValueError(f"not a GitHub repository URL: {url!r} (Binder and Colab open "
                         f"notebooks from https://github.com/OWNER/REPO)")
    return match.group(1), match.group(2)


def notebook_path(name: str) -> str:
    """Where chapter ``name``'s notebook is, in the launch tree and on the launch branch
    (its page name ``chapters/<name>`` plus ``.ipynb``, as the buttons build it)."""
    return f"{EXECUTED_SUBDIR}/{chapter(name).name}.ipynb"


def launch_urls(url: str, name: str, branch: str = LAUNCH_BRANCH) -> dict[str, str]:
    """The Binder and Colab links of chapter ``name``'s page, as sphinx-book-theme builds
    them from :func:`launch_settings` (``tests/test_launch.py`` checks them against a
    real build)."""
    owner, repo = _github_parts(url)
    path = notebook_path(name)
    return {"binder": f"{BINDERHUB_URL}/v2/gh/{owner}/{repo}/{branch}?urlpath=tree/{path}",
            "colab": f"{COLAB_URL}/github/{owner}/{repo}/blob/{branch}/{path}"}


def launch_settings(url: str) -> dict[str, Any]:
    """The ``_config.yml`` entries for the header's repository link and the launch buttons."""
    return {"repository": {"url": url, "branch": LAUNCH_BRANCH, "path_to_book": ""},
            "html": {"use_repository_button": True},
            "launch_buttons": {"notebook_interface": "classic", "binderhub_url": BINDERHUB_URL,
                               "colab_url": COLAB_URL}}


def book_config(project: Path, root: Path) -> Path:
    """The ``_config.yml`` jupyter-book gets: the project's, plus, when ``repository.url``
    is set, :func:`launch_settings` (written to ``<root>/_config.generated.yml``).
    Without a URL the project's file is used as is."""
    import yaml  # the book extra

    source = Path(project) / CONFIG_FILE
    url = repository_url(project)
    if not url:
        return source
    _github_parts(url)  # fail here, not in the middle of jupyter-book
    cfg = yaml.safe_load(source.read_text()) or {}
    extra = launch_settings(url)
    cfg["repository"] = extra["repository"]
    cfg.setdefault("html", {}).update(extra["html"])
    cfg["launch_buttons"] = {**(cfg.get("launch_buttons") or {}), **extra["launch_buttons"]}
    out = Path(root) / "_config.generated.yml"
    out.write_text("# written by lottery.book.launch.book_config from ../_config.yml; do not edit\n"
                   + yaml.safe_dump(cfg, sort_keys=False))
    return out


# ---------------------------------------------------------------------------- the launch tree
def set_package_source(notebook: dict[str, Any], spec: str) -> dict[str, Any]:
    """Set ``package_source = spec`` in an executed notebook's ``injected-parameters``
    cell (papermill's; one is added after the ``parameters`` cell if there is none) and
    in its papermill metadata. Changes and returns ``notebook``."""
    line = f"package_source = {json.dumps(spec)}\n"
    cells = notebook["cells"]
    tagged = [c for c in cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    if tagged:
        cell = tagged[0]
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        kept = [ln for ln in source.splitlines(keepends=True)
                if not re.match(r"package_source\s*=", ln)]
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        cell["source"] = "".join(kept) + line
    else:
        at = next((i + 1 for i, c in enumerate(cells)
                   if "parameters" in c.get("metadata", {}).get("tags", [])), 0)
        cells.insert(at, {"cell_type": "code", "execution_count": None, "outputs": [],
                          "metadata": {"tags": ["injected-parameters"]},
                          "source": "# Parameters\n" + line})
    papermill = notebook.setdefault("metadata", {}).setdefault("papermill", {})
    papermill.setdefault("parameters", {})["package_source"] = spec
    return notebook


def binder_requirements(url: str, revision: str, distribution: str = FALLBACK_DISTRIBUTION) -> str:
    """Binder's ``requirements.txt``: CPU torch first, then the package at ``revision``."""
    return (f"# Binder environment of the launch tree ({url} at {revision}).\n"
            f"--extra-index-url {TORCH_CPU_INDEX}\n{TORCH_REQUIREMENT}\n"
            f"{requirement(url, revision, BINDER_EXTRAS, distribution)}\n")


def _readme(url: str, revision: str) -> str:
    return (f"# Launch tree of lottery-book\n\nGenerated by `python -m lottery.book.launch` "
            f"from {url} at commit {revision}; the book's Binder and Colab buttons open "
            f"these notebooks. Do not edit: every book published from main replaces this "
            f"branch.\n\n- `{EXECUTED_SUBDIR}/<chapter>.ipynb`: the executed chapters; their "
            f"set-up cell installs `package_source` when `lottery` is not importable (Colab).\n"
            f"- `requirements.txt`, `runtime.txt`: Binder's environment (CPU torch, the "
            f"package at that commit), so on Binder the set-up cell does nothing.\n")


def write_launch_tree(out: Path, project: Path | None = None, book_dir: Path | None = None,
                      sha: str | None = None) -> list[Path]:
    """Write the launch tree into ``out``: every chapter's executed notebook from
    ``<book_dir>/chapters/`` (default: the project's ``book/``) at
    :func:`notebook_path`, with its ``package_source`` pinned to ``sha`` (default: the
    checkout's commit), and Binder's ``requirements.txt`` and ``runtime.txt``.

    Raises ``RuntimeError`` without ``repository.url`` or when a chapter has not been
    executed. Returns the files written, relative to ``out``."""
    root = find_project(project)
    url = repository_url(root)
    if not url:
        raise RuntimeError(f"repository.url is not set in {root / CONFIG_FILE}: the launch "
                           f"tree needs the URL that its notebooks install the package from")
    _github_parts(url)
    executed = Path(book_dir) if book_dir else root / BOOK_DIR
    executed = executed / EXECUTED_SUBDIR
    missing = [c.name for c in CHAPTERS if not (executed / f"{c.name}.ipynb").is_file()]
    if missing:
        raise RuntimeError(f"not executed yet: {missing} (no {executed}/<name>.ipynb); "
                           f"run `make book` first")
    revision = sha or source_revision(root)
    dist = distribution_name(root)
    files = {notebook_path(c.name): json.dumps(set_package_source(
        json.loads((executed / f"{c.name}.ipynb").read_text()),
        requirement(url, revision, chapter_extras(c.name), dist)), indent=1) + "\n"
        for c in CHAPTERS}
    files.update({"requirements.txt": binder_requirements(url, revision, dist),
                  "runtime.txt": PYTHON_RUNTIME + "\n", "README.md": _readme(url, revision)})
    out = Path(out)
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return [Path(rel) for rel in files]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lottery.book.launch OUT_DIR``: write the launch tree of the built book."""
    parser = argparse.ArgumentParser(prog="python -m lottery.book.launch",
                                     description=main.__doc__)
    parser.add_argument("out", type=Path, help="folder to write the launch tree into")
    parser.add_argument("--project", type=Path, default=None, help="the project folder")
    parser.add_argument("--book-dir", type=Path, default=None,
                        help="the built book folder (default: the project's book/)")
    parser.add_argument("--sha", default=None, help="commit to pin (default: git rev-parse HEAD)")
    args = parser.parse_args(argv)
    try:
        root = find_project(args.project)
        if not repository_url(root):
            print(f"launch tree: repository.url is not set in {root / CONFIG_FILE}; "
                  f"the book has no launch buttons and no launch tree is written")
            return 0
        written = write_launch_tree(args.out, root, args.book_dir, args.sha)
    except (RuntimeError, ValueError, ProjectNotFoundError) as exc:
        print(f"launch tree: {exc}", file=sys.stderr)
        return 2
    print(f"launch tree: {len(written)} files in {args.out} "
          f"({package_source(root, args.sha)}, branch {LAUNCH_BRANCH})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
