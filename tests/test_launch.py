"""Launching a chapter outside the project (Colab, Binder): the pinned requirement its
set-up cell installs, the launch buttons and the launch tree they open, the glue without
myst-nb, and, as Colab would run it, a chapter executed in a fresh virtual environment
that has the package's dependencies but not the package, so its set-up cell installs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml

from lottery.book import chapters, launch, layout, notebook

REPO = Path(__file__).resolve().parents[1]
URL = "https://github.com/someone/lottery-book"
SHA = "0123456789abcdef0123456789abcdef01234567"
DIST = launch.distribution_name(REPO)


def _project(tmp_path: Path, url: str = URL) -> Path:
    """A project folder (the files find_project looks for) whose repository.url is ``url``."""
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    for name in (layout.CONFIG_FILE, layout.TOC_FILE, "pyproject.toml"):
        shutil.copy2(REPO / name, project / name)
    cfg = yaml.safe_load((project / layout.CONFIG_FILE).read_text())
    cfg["repository"]["url"] = url
    (project / layout.CONFIG_FILE).write_text(yaml.safe_dump(cfg))
    return project


# ------------------------------------------------------------------ the pinned requirement
def test_the_set_up_cell_installs_the_book_extra_at_the_commit(tmp_path):
    project = _project(tmp_path, URL + "/")
    assert DIST == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
    assert launch.package_source(project, SHA) == f"{DIST}[book] @ git+{URL}@{SHA}"
    for ch in chapters.CHAPTERS:
        assert launch.package_source(project, SHA, ch.name) == f"{DIST}[book] @ git+{URL}@{SHA}"
    assert launch.package_source(_project(tmp_path / "none", "")) == ""


def test_a_chapter_can_install_more_extras(tmp_path, monkeypatch):
    monkeypatch.setitem(launch.CHAPTER_EXTRAS, "federated", ("book", "federated"))
    assert (launch.package_source(_project(tmp_path), SHA, "federated")
            == f"{DIST}[book,federated] @ git+{URL}@{SHA}")
    with pytest.raises(ValueError, match="unknown chapter"):
        launch.package_source(_project(tmp_path / "other"), SHA, "no-such-chapter")


def test_the_pinned_revision_is_the_checkouts_commit(tmp_path):
    # outside a git checkout: repository.branch of _config.yml
    assert launch.source_revision(_project(tmp_path)) == "main"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("the project is not a git checkout here")
    assert launch.source_revision(REPO) == head.stdout.strip()


# ------------------------------------------------------------------ buttons and config
def test_the_buttons_open_the_chapter_on_the_launch_branch():
    urls = launch.launch_urls(URL, "tickets")
    assert urls == {
        "binder": "https://mybinder.org/v2/gh/someone/lottery-book/launch"
                  "?urlpath=tree/chapters/tickets.ipynb",
        "colab": "https://colab.research.google.com/github/someone/lottery-book/blob/launch/"
                 "chapters/tickets.ipynb"}
    assert launch.notebook_path("tickets") == "chapters/tickets.ipynb"
    with pytest.raises(ValueError, match="GitHub"):
        launch.launch_urls("https://gitlab.com/a/b", "tickets")


def test_the_book_config_points_the_buttons_at_the_launch_branch(tmp_path):
    project = _project(tmp_path, URL + "/")
    cfg = yaml.safe_load(launch.book_config(project, tmp_path).read_text())
    assert cfg["repository"] == {"url": URL, "branch": launch.LAUNCH_BRANCH, "path_to_book": ""}
    assert cfg["html"]["use_repository_button"] is True
    buttons = cfg["launch_buttons"]
    assert buttons["binderhub_url"] == "https://mybinder.org"
    assert buttons["colab_url"] == "https://colab.research.google.com"
    plain = _project(tmp_path / "plain", "")
    assert launch.book_config(plain, tmp_path) == plain / layout.CONFIG_FILE
    shipped = yaml.safe_load((REPO / layout.CONFIG_FILE).read_text())
    assert not shipped["launch_buttons"]["binderhub_url"] and not shipped["launch_buttons"]["colab_url"]


# ------------------------------------------------------------------ the launch tree
def _executed(name: str, injected: bool = True) -> dict:
    cells = [{"cell_type": "code", "metadata": {"tags": ["parameters", "remove-cell"]},
              "execution_count": 1, "outputs": [],
              "source": 'profile = "course"\npackage_source = None\n'}]
    if injected:
        cells.append({"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
                      "execution_count": 2, "outputs": [],
                      "source": f'# Parameters\nprofile = "smoke"\npackage_source = "git+{URL}"'})
    cells.append({"cell_type": "markdown", "metadata": {}, "source": f"# {name}"})
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3"},
                                         "papermill": {"parameters": {"profile": "smoke"}}},
            "nbformat": 4, "nbformat_minor": 5}


def _fake_book(tmp_path: Path) -> Path:
    book = tmp_path / "book"
    (book / layout.EXECUTED_SUBDIR).mkdir(parents=True)
    for i, ch in enumerate(chapters.CHAPTERS):
        path = book / layout.EXECUTED_SUBDIR / f"{ch.name}.ipynb"
        path.write_text(json.dumps(_executed(ch.name, injected=i % 2 == 0)))
    return book


def test_the_launch_tree_holds_every_chapter_pinned_and_binders_environment(tmp_path):
    project, book = _project(tmp_path), _fake_book(tmp_path)
    out = tmp_path / "tree"
    written = launch.write_launch_tree(out, project, book, sha=SHA)
    names = [c.name for c in chapters.CHAPTERS]
    assert sorted(map(str, written)) == sorted(
        [f"chapters/{n}.ipynb" for n in names] + ["requirements.txt", "runtime.txt", "README.md"])
    for name in names:
        nb = json.loads((out / launch.notebook_path(name)).read_text())
        spec = launch.package_source(project, SHA, name)
        injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
        assert len(injected) == 1, name
        assert injected[0]["source"].count("package_source") == 1
        assert f"package_source = {json.dumps(spec)}" in injected[0]["source"]
        assert injected[0]["source"].startswith("# Parameters\n")
        had_one = [c.name for c in chapters.CHAPTERS].index(name) % 2 == 0  # see _fake_book
        assert ('profile = "smoke"' in injected[0]["source"]) == had_one  # other lines kept
        tags = [c["metadata"].get("tags", []) for c in nb["cells"]]
        assert tags.index(["injected-parameters"]) == 1, name  # right after `parameters`
        assert nb["metadata"]["papermill"]["parameters"]["package_source"] == spec
    lines = [ln for ln in (out / "requirements.txt").read_text().splitlines() if not ln.startswith("#")]
    assert lines == ["--extra-index-url https://download.pytorch.org/whl/cpu", "torch==2.13.0+cpu",
                     f"{DIST}[book] @ git+{URL}@{SHA}"]
    assert (out / "runtime.txt").read_text() == "python-3.11\n"


def test_binder_gets_the_torch_that_the_project_pins():
    pinned = REPO / "constraints" / "pinned.txt"
    if not pinned.exists():
        pytest.skip("no constraints/pinned.txt")
    version = re.search(r"^torch==([\w.]+)$", pinned.read_text(), re.M).group(1)
    assert launch.TORCH_REQUIREMENT == f"torch=={version}+cpu"


def test_the_launch_tree_needs_every_chapter_and_a_url(tmp_path, capsys):
    project, book = _project(tmp_path), _fake_book(tmp_path)
    (book / layout.EXECUTED_SUBDIR / "tickets.ipynb").unlink()
    with pytest.raises(RuntimeError, match="tickets"):
        launch.write_launch_tree(tmp_path / "tree", project, book, sha=SHA)
    assert launch.main([str(tmp_path / "tree"), "--project", str(project),
                        "--book-dir", str(book)]) == 2
    plain = _project(tmp_path / "plain", "")
    with pytest.raises(RuntimeError, match="repository.url"):
        launch.write_launch_tree(tmp_path / "tree", plain, book)
    # the workflow's call on a repository without a URL: nothing written, no failure
    assert launch.main([str(tmp_path / "none"), "--project", str(plain)]) == 0
    assert not (tmp_path / "none").exists() and "no launch tree" in capsys.readouterr().out


def test_the_launch_tree_from_the_command_line(tmp_path, capsys):
    project, book = _project(tmp_path), _fake_book(tmp_path)
    out = tmp_path / "tree"
    assert launch.main([str(out), "--project", str(project), "--book-dir", str(book),
                        "--sha", SHA]) == 0
    assert (out / "chapters" / "tickets.ipynb").is_file()
    assert f"@{SHA}" in (out / "requirements.txt").read_text()
    assert "launch tree:" in capsys.readouterr().out


# ------------------------------------------------------------------ glue without myst-nb
def test_glue_values_runs_without_myst_nb(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb -> ImportError
    notebook.glue_values({"launch_test_value": np.float64(1.5), "launch_test_text": "x"})
    assert notebook.GLUED["launch_test_value"] == 1.5
    assert type(notebook.GLUED["launch_test_value"]) is float


# ------------------------------------------------------------------ a real build's buttons
TINY_PAGE = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Tickets"},
                       {"cell_type": "code", "metadata": {}, "execution_count": 1,
                        "outputs": [], "source": "1 + 1"}],
             "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                         "name": "python3"}},
             "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.slow
@pytest.mark.book
def test_a_built_pages_buttons_open_its_notebook_in_the_launch_tree(tmp_path):
    """jupyter-book builds the buttons from the generated config: their links are
    :func:`launch.launch_urls`, whose path is where the launch tree holds the notebook."""
    pytest.importorskip("jupyter_book")
    project = _project(tmp_path)
    root = tmp_path / "root"
    (root / "chapters").mkdir(parents=True)
    (root / "chapters" / "tickets.ipynb").write_text(json.dumps(TINY_PAGE))
    shutil.copy2(REPO / layout.BOOK_DIR / "references.bib", root / "references.bib")
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: chapters/tickets\n")
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
           str(root), "--path-output", str(root), "--config",
           str(launch.book_config(project, root)), "--toc", str(toc)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = (root / "_build" / "html" / "chapters" / "tickets.html").read_text()
    links = set(re.findall(r'href="(https://(?:mybinder\.org|colab\.research\.google\.com)[^"]*)"',
                           html))
    expected = launch.launch_urls(URL, "tickets")
    assert links == {expected["binder"].replace("&", "&amp;"), expected["colab"]}, links
    # ... and the tree has the notebook at the path both links name
    tree = tmp_path / "tree"
    launch.write_launch_tree(tree, project, _fake_book(tmp_path), sha=SHA)
    assert (tree / launch.notebook_path("tickets")).is_file()
    assert all(link.endswith("/" + launch.notebook_path("tickets")) for link in links)


# ------------------------------------------------------------------ the fresh venv
def _dependencies_without_the_project(tmp_path: Path) -> Path:
    """A folder of links to everything installed in this venv except the project
    (its editable finder, its ``.dist-info``): the new venv sees the dependencies (pip
    included), pip sees them installed, and ``lottery`` is not importable."""
    deps = tmp_path / "deps"
    deps.mkdir()
    own = {"lottery", re.sub(r"[-_.]+", "_", DIST).lower()}
    sites = {Path(p).resolve() for p in (sysconfig.get_paths()["purelib"],
                                         sysconfig.get_paths()["platlib"])}
    for site in sites:
        for entry in site.iterdir():
            # "lottery", "lottery-0.2.0.dist-info", "lottery_book-0.2.0.dist-info", ...
            project = re.sub(r"[-_.]+", "_", entry.name.split("-")[0]).lower()
            if entry.name.startswith("__editable__") or entry.suffix == ".pth" or project in own:
                continue
            if not (deps / entry.name).exists():
                (deps / entry.name).symlink_to(entry)
    return deps


def _fresh_venv(tmp_path: Path, deps: Path) -> Path:
    """A new venv whose only addition is a ``.pth`` line naming ``deps``. Without its
    own pip and setuptools, so that those of ``deps`` (the versions the dependencies
    ask for, e.g. torch's setuptools>=77) are the ones pip finds."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "zz_lottery_test_dependencies.pth").write_text(f"{deps}\n")
    return python


def _environment(tmp_path: Path, venv_python: Path, mirror: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV",
                        "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_FIND_LINKS")
           and not k.startswith("COVERAGE_")}
    jupyter = tmp_path / "jupyter"
    env.update(PATH=f"{venv_python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
               VIRTUAL_ENV=str(venv_python.parent.parent),
               PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               LOTTERY_CACHE_DIR=str(tmp_path / "cache"), LOTTERY_DATA_MIRROR=str(mirror),
               JUPYTER_PATH=str(jupyter), JUPYTER_DATA_DIR=str(jupyter / "data"),
               JUPYTER_CONFIG_DIR=str(jupyter / "config"),
               JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"), IPYTHONDIR=str(tmp_path / "ipython"),
               MPLCONFIGDIR=str(tmp_path / "mpl"))
    spec = jupyter / "kernels" / "fresh-venv" / "kernel.json"
    spec.parent.mkdir(parents=True)
    spec.write_text(json.dumps({"argv": [str(venv_python), "-m", "ipykernel_launcher", "-f",
                                         "{connection_file}"],
                                "display_name": "fresh venv", "language": "python"}))
    return env


def _source_files() -> list[str]:
    """The checkout's files as a clone would have them: tracked and not ignored."""
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode == 0:
        return [f for f in proc.stdout.split("\0") if f and (REPO / f).is_file()]
    skip = {".git", ".venv", ".cache", "_build", "chapters", "__pycache__", "build"}
    return [str(p.relative_to(REPO)) for p in REPO.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(REPO).parts)]


def _wheel(tmp_path: Path) -> Path:
    """The project built as a wheel, offline, from a copy of the checkout (what pip
    builds from a ``git+URL@SHA`` clone), so that nothing is written into the checkout."""
    src = tmp_path / "src"
    for rel in _source_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    wheels = tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "--no-index", "-w", str(wheels), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = wheels.glob("*.whl")
    return wheel


def _run(python: Path, code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.book
def test_a_chapter_installs_the_package_and_runs_in_a_fresh_venv(tmp_path, mirror):
    """As on Colab: no checkout, the package not installed; the data chapter's set-up
    cell pip-installs ``DIST[book] @ <wheel>`` (pip offline: the dependencies are
    there already) and the chapter then runs to the end."""
    import jupytext

    python = _fresh_venv(tmp_path, _dependencies_without_the_project(tmp_path))
    env = _environment(tmp_path, python, mirror)
    work = tmp_path / "work"
    work.mkdir()
    before = _run(python, "import lottery", env, work)
    assert before.returncode != 0 and "No module named 'lottery'" in before.stderr, before
    deps_ok = _run(python, "import torch, papermill, ipykernel, myst_nb, altair", env, work)
    assert deps_ok.returncode == 0, deps_ok.stderr[-2000:]

    wheel = _wheel(tmp_path)
    spec = f"{DIST}[book] @ {wheel.as_uri()}"
    source = work / "data.ipynb"
    jupytext.write(jupytext.read(REPO / "notebooks" / chapters.chapter("data").source), source)
    params = work / "params.yml"
    params.write_text(yaml.safe_dump({"profile": "smoke", "package_source": spec}))
    out = work / "data-out.ipynb"
    proc = subprocess.run([str(python), "-m", "papermill", str(source), str(out), "-k", "fresh-venv",
                           "-f", str(params), "--cwd", str(work), "--no-progress-bar"],
                          env=env, cwd=work, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors and not executed["metadata"]["papermill"].get("exception")

    after = _run(python, "import importlib.metadata as m, lottery; print(lottery.__file__); "
                         f"print(m.distribution({DIST!r}).read_text('direct_url.json'))", env, work)
    assert after.returncode == 0, after.stderr[-2000:]
    where, direct_url = after.stdout.split("\n", 1)
    assert Path(where).resolve().is_relative_to((tmp_path / "venv").resolve()), where
    assert json.loads(direct_url)["url"] == wheel.as_uri()
