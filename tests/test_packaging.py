"""Packaging and release: conda and pip name the same runtime deps; shipped data files
and the licence are in the wheel; one version everywhere; every imported package is
declared in the extra that needs it; Python support stated consistently; Flower is
optional; the constraint files cover every dependency within its declared range."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import resources
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import lottery
from lottery.config import FederatedSettings

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
ENVIRONMENT = yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))
CITATION = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
#: The repository URL (a placeholder until the project has its real one): the same in
#: pyproject.toml, CITATION.cff and the PyPI description, so it is changed in all three.
REPOSITORY = PROJECT["urls"]["Repository"]


def _name(spec: str) -> str:
    """Normalised distribution name of a pip or conda spec ('numpy>=1.24' -> 'numpy')."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~\[;]", spec.strip(), maxsplit=1)[0]).lower()


def _requirements(*extras: str) -> list[Requirement]:
    """The runtime requirements plus those of ``extras`` (all extras when none given)."""
    groups = PROJECT["optional-dependencies"]
    names = extras or tuple(groups)
    return [Requirement(r) for r in PROJECT["dependencies"]] + [Requirement(r) for e in names for r in groups[e]]


def _with_implied(req: Requirement) -> set[str]:
    """The requirement's distribution and those its extras add (dask[distributed] ->
    dask, distributed), read from the installed metadata (one level)."""
    names = {_name(req.name)}
    if req.extras:
        try:
            requires = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            return names
        for r in map(Requirement, requires):
            if r.marker and any(r.marker.evaluate({"extra": e}) for e in req.extras):
                names.add(_name(r.name))
    return names


def _environment_names() -> set[str]:
    names = set()
    for dep in ENVIRONMENT["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-"):  # -e .[book,test], --extra-index-url ...: not a package name
                continue
            names.add(_name(item))
    return names - {"python", "pip"}


def test_environment_yml_names_the_runtime_dependencies():
    runtime = {_name(d) for d in PROJECT["dependencies"]}
    assert runtime == {"torch", "numpy", "pandas", "scipy", "sentencepiece", "tqdm", "filelock", "altair"}
    assert _environment_names() == runtime


def test_environment_yml_python_torch_and_extras():
    deps = ENVIRONMENT["dependencies"]
    assert "python>=3.11" in deps and "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "torch==2.13.0" in pip
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip   # the CPU build
    project = [p for p in pip if p.startswith("-e .[")]
    assert project == ["-e .[book,test,cluster]"]   # as `make venv`: no Flower


def test_jupyter_book_pinned_below_2():
    book = [Requirement(r) for r in PROJECT["optional-dependencies"]["book"]]
    jb = next(r for r in book if _name(r.name) == "jupyter-book")
    assert jb.specifier.contains("1.0.4") and not jb.specifier.contains("2.0.0")


def test_checksum_files_are_package_data():
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["lottery"]
    assert "data/*.sha256" in globs
    text = resources.files("lottery.data").joinpath("fdu-mtl.sha256").read_text()
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert len(lines) == 48 and all(re.fullmatch(r"[0-9a-f]{64}  fdu-mtl/\S+", l) for l in lines)


# ------------------------------------------------------------------ the wheel

@pytest.mark.slow
def test_wheel_contains_the_data_files_licence_and_metadata(tmp_path):
    """Build the wheel offline (no isolation: the venv's setuptools, the test extra's
    ``setuptools>=77.0.3``) and look inside.

    It is built from a copy, so setuptools' ``build/`` folder does not land in the repo.
    """
    src = tmp_path / "src"
    shutil.copytree(REPO / "lottery", src / "lottery",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "LICENSE", PROJECT["readme"]):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, src / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"cannot build the wheel: {result.stderr.strip()[-600:]}"
    wheel = next((tmp_path / "dist").glob("lottery_book-*.whl"))
    zf = zipfile.ZipFile(wheel)
    names = set(zf.namelist())
    assert {"lottery/data/fdu-mtl.sha256", "lottery/data/blitzer.sha256",
            "lottery/data/readers.py", "lottery/data/vocab.py", "lottery/engine/jobs.py",
            "lottery/cli/app.py"} <= names
    info = f"lottery_book-{lottery.__version__}.dist-info"
    assert zf.read(f"{info}/licenses/LICENSE") == (REPO / "LICENSE").read_bytes()
    meta = zf.read(f"{info}/METADATA").decode()
    header, _, body = meta.partition("\n\n")
    fields = [tuple(line.split(": ", 1)) for line in header.splitlines() if ": " in line]
    one = dict(fields)
    assert (one["Name"], one["Version"]) == ("lottery-book", lottery.__version__)
    assert (one["License-Expression"], one["License-File"]) == ("MIT", "LICENSE")
    assert one["Requires-Python"] == ">=3.11"
    assert one["Description-Content-Type"] == "text/markdown"
    assert body.strip() == (REPO / "docs/pypi.md").read_text(encoding="utf-8").strip()
    requires = [Requirement(v) for k, v in fields if k == "Requires-Dist"]
    flower = [r for r in requires if _name(r.name) in {"flwr", "ray"}]
    assert flower and all(r.marker and r.marker.evaluate({"extra": "federated"})
                          and not r.marker.evaluate({"extra": "book"}) for r in flower)
    assert "lottery = lottery.cli.app:main" in zf.read(f"{info}/entry_points.txt").decode()


def test_licence_is_an_mit_file_that_pyproject_ships():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]  # PEP 639: the expression only
    assert Requirement(PYPROJECT["build-system"]["requires"][0]).specifier.contains("77.0.3")


# ------------------------------------------------------------------ one version

def test_one_version_everywhere():
    """lottery.__version__ is the single source: pyproject reads it, the installed
    metadata, `lottery --version`, CHANGELOG.md's newest entry and CITATION.cff agree."""
    version = lottery.__version__
    Version(version)    # a valid PEP 440 version
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lottery.__version__"}
    try:
        installed = importlib.metadata.version(PROJECT["name"])
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{PROJECT['name']} is not installed in this venv: run `make venv`")
    assert installed == version, "the installed metadata is stale: run `make venv`"
    out = subprocess.run([sys.executable, "-m", "lottery.cli.app", "--version"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == f"lottery {version}"
    script = Path(sys.executable).with_name("lottery")
    if script.exists():   # the console script of the editable install
        out = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                             timeout=120, check=True).stdout
        assert out.strip() == f"lottery {version}"
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## \[?(\d[^\]\s]*)\]?", changelog, re.MULTILINE)
    assert newest and newest.group(1) == version
    assert str(CITATION["version"]) == version


# ------------------------------------------------------------------ metadata

def test_requires_python_matches_the_classifiers_and_this_interpreter():
    spec = SpecifierSet(PROJECT["requires-python"])
    assert str(spec) == ">=3.11"
    minors = sorted(int(m) for c in PROJECT["classifiers"]
                    for m in re.findall(r"^Programming Language :: Python :: 3\.(\d+)$", c))
    assert minors == list(range(11, 14))                      # 3.11, 3.12, 3.13: no gaps
    assert all(spec.contains(f"3.{m}") for m in minors) and not spec.contains(f"3.{minors[0] - 1}")
    assert spec.contains(".".join(map(str, sys.version_info[:3])))
    assert "Programming Language :: Python :: 3 :: Only" in PROJECT["classifiers"]


def test_project_metadata_is_complete():
    assert PROJECT["name"] == "lottery-book" and PROJECT["description"]
    assert PROJECT["authors"] and all(a.get("name") for a in PROJECT["authors"])
    assert len(PROJECT["keywords"]) >= 5
    urls = PROJECT["urls"]
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    assert urls["Issues"].startswith(REPOSITORY) and urls["Changelog"].startswith(REPOSITORY)
    assert PROJECT["scripts"] == {"lottery": "lottery.cli.app:main"}


def test_pypi_description_is_short_and_links_absolutely():
    """The PyPI page is docs/pypi.md (< 4 KB: the two commands and the book's link), not
    the README with its development tables."""
    assert PROJECT["readme"] == "docs/pypi.md"
    text = (REPO / "docs/pypi.md").read_text(encoding="utf-8")
    assert len(text.encode()) < 4096
    assert "make book" in text and "make test" in text
    assert PROJECT["urls"]["Documentation"] in text and REPOSITORY in text
    links = re.findall(r"\]\(([^)]+)\)|<(https?://[^>]+)>", text)
    assert links and all(re.match(r"https?://", a or b) for a, b in links)  # PyPI resolves no relative link
    assert "pip install 'lottery-book[federated]'" in text


CFF_KEYS = {"abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi",
            "identifiers", "keywords", "license", "license-url", "message", "preferred-citation",
            "references", "repository", "repository-artifact", "repository-code", "title", "type",
            "url", "version"}
CFF_REFERENCE_KEYS = {"abbreviation", "abstract", "authors", "collection-doi", "collection-title",
                      "collection-type", "commit", "conference", "contact", "copyright",
                      "data-type", "database", "database-provider", "date-accessed",
                      "date-downloaded", "date-published", "date-released", "department", "doi",
                      "edition", "editors", "editors-series", "end", "entry", "filename",
                      "format", "identifiers", "institution", "isbn", "issn", "issue",
                      "issue-date", "issue-title", "journal", "keywords", "languages", "license",
                      "license-url", "loc-end", "loc-start", "location", "medium", "month",
                      "nihmsid", "notes", "number", "number-volumes", "pages", "patent-states",
                      "pmcid", "publisher", "recipients", "repository", "repository-artifact",
                      "repository-code", "scope", "section", "senders", "start", "status",
                      "term", "thesis-type", "title", "translators", "type", "url", "version",
                      "volume", "volume-title", "year", "year-original"}
DOI = r"10\.\d{4,9}(\.\d+)?/[A-Za-z0-9:/_;\-\.\(\)\[\]\\]+"


def _person_or_entity(a: dict) -> bool:
    return bool(a.get("family-names") and a.get("given-names")) or bool(a.get("name"))


def test_citation_cff_cites_the_book_and_the_paper():
    """CITATION.cff against the CFF 1.2.0 schema's keys, by hand: the book at the top
    level (software), the paper under ``references``."""
    c = CITATION
    assert set(c) <= CFF_KEYS, set(c) - CFF_KEYS
    assert c["cff-version"] == "1.2.0" and c["message"] and c["title"] and c["type"] == "software"
    assert c["authors"] and all(_person_or_entity(a) for a in c["authors"])
    assert c["license"] == PROJECT["license"] and c["repository-code"] == REPOSITORY
    assert c["url"] == PROJECT["urls"]["Documentation"]
    paper = c["references"][0]
    assert set(paper) <= CFF_REFERENCE_KEYS, set(paper) - CFF_REFERENCE_KEYS
    assert paper["type"] == "conference-paper"
    assert paper["title"] == "Evaluating Lottery Tickets Under Distributional Shifts"
    assert [(a["given-names"], a["family-names"]) for a in paper["authors"]] == [
        ("Shrey", "Desai"), ("Hongyuan", "Zhan"), ("Ahmed", "Aly")]
    assert paper["year"] == 2019 and 1 <= paper["month"] <= 12
    assert re.fullmatch(DOI, paper["doi"]) and paper["doi"] == "10.18653/v1/D19-6117"
    assert all(e.get("name") for e in (paper["conference"], paper["publisher"]))
    assert re.fullmatch(r"[A-Z]{2}", paper["conference"]["country"])
    assert all(i["type"] in {"doi", "url", "swh", "other"} and i["value"] for i in paper["identifiers"])
    assert any("1910.12708" in i["value"] for i in paper["identifiers"])      # arXiv
    assert "preferred-citation" not in c    # both are cited: the book here, the paper in references
    assert (REPO / "book/references.bib").read_text(encoding="utf-8").count(paper["doi"]) == 1


# ------------------------------------------------------------------ imports are declared

#: Import names whose distribution has another name, for packages not installed here.
IMPORT_NAMES = {"yaml": "pyyaml", "IPython": "ipython", "vl_convert": "vl-convert-python",
                "sklearn": "scikit-learn", "PIL": "pillow"}


def _lottery_imports() -> dict[str, set[Path]]:
    """Top-level third-party module -> the lottery files that import it (anywhere in the file)."""
    found: dict[str, set[Path]] = {}
    for path in (REPO / "lottery").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            else:
                continue
            for m in mods:
                top = m.split(".")[0]
                if top != "lottery" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(path.relative_to(REPO))
    return found


def _distributions(module: str) -> set[str]:
    dists = importlib.metadata.packages_distributions().get(module)
    return {_name(d) for d in dists} if dists else {_name(IMPORT_NAMES.get(module, module))}


def _extra_for(path: Path) -> str | None:
    """The extra a module's imports may come from (None: the runtime dependencies)."""
    p = path.as_posix()
    if p.startswith("lottery/book/"):
        return "book"
    return {"lottery/engine/cluster.py": "cluster", "lottery/federated/flower.py": "federated"}.get(p)


def test_every_imported_package_is_declared_in_the_extra_that_needs_it():
    runtime = set().union(*map(_with_implied, _requirements()[:len(PROJECT["dependencies"])]))
    extras = {e: set().union(*map(_with_implied, (Requirement(r) for r in reqs)))
              for e, reqs in PROJECT["optional-dependencies"].items()}
    imports = _lottery_imports()
    assert {"torch", "yaml", "IPython", "jupyter_client", "myst_nb", "filelock", "flwr"} <= set(imports)
    missing = []
    for module, paths in sorted(imports.items()):
        for path in sorted(paths):
            extra = _extra_for(path)
            allowed = runtime | (extras[extra] if extra else set())
            if not _distributions(module) & allowed:
                missing.append(f"{module} ({path}: {'runtime' if extra is None else extra})")
    assert not missing, f"imported but not declared: {missing}"


def test_the_command_line_imports_only_runtime_dependencies():
    """`pip install lottery-book` without extras gives a working `lottery` command: what
    importing the CLI imports from third parties (directly, in lottery's own files) is
    in [project].dependencies; the extras' packages are imported when a command needs them."""
    code = ("import sys; before = set(sys.modules); import lottery.cli.app; "
            "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=300, check=True).stdout.split())
    direct = loaded & set(_lottery_imports())
    runtime = {_name(r) for r in PROJECT["dependencies"]}
    assert {"torch", "numpy"} <= direct
    assert all(_distributions(m) & runtime for m in direct), \
        {m: _distributions(m) for m in direct if not _distributions(m) & runtime}


# ------------------------------------------------------------------ Flower is optional

def _make_dry_run(*args: str) -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "-B", *args, "VENV=/nonexistent-venv"], cwd=REPO,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [line for line in out.splitlines() if "pip install" in line]


def test_flower_is_not_in_what_make_installs_and_inline_is_the_default():
    installs = _make_dry_run("venv")
    assert len(installs) == 2 and all("-c constraints/pinned.txt" in line for line in installs)
    assert installs[0].endswith(" torch") and installs[1].endswith("-e '.[book,test,cluster]'")
    default = {r for e in ("book", "test", "cluster") for r in _requirements(e)}
    assert not [r for r in default if _name(r.name) in {"flwr", "ray"}]
    assert [_name(r) for r in PROJECT["optional-dependencies"]["federated"]] == ["flwr"]
    assert FederatedSettings().backend == "inline"      # the chapter and CLI need no Flower
    flower = _make_dry_run("test-flower")
    assert flower[-1].endswith("-e '.[book,test,cluster,federated]'")


def test_make_installs_with_the_constraints_file_it_is_given():
    installs = _make_dry_run("venv", "CONSTRAINTS=constraints/lower.txt")
    assert len(installs) == 2 and all("-c constraints/lower.txt" in line for line in installs)


def test_a_missing_flower_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    from lottery.cli import app
    from lottery.federated import flower, jobs

    monkeypatch.setitem(sys.modules, "flwr", None)           # as if not installed
    monkeypatch.setitem(sys.modules, "flwr.simulation", None)
    with pytest.raises(flower.FlowerMissing, match=re.escape("pip install 'lottery-book[federated]'")):
        flower.run(None, [], None, None, None)
    # what `lottery federated --set federated.backend=flower` prints once its ticket runs exist
    monkeypatch.setattr(jobs, "run_federated", lambda settings, **kw: flower.run(settings, [], None, None, None))
    code = app.main(["federated", "--profile", "smoke", "--runs", str(tmp_path), "--quiet",
                     "--set", "federated.backend=flower"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("lottery: federated.backend=flower needs Flower")
    assert "pip install 'lottery-book[federated]'" in err and "federated.backend" in err


# ------------------------------------------------------------------ constraint files

def _constraints(name: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "constraints" / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            spec = list(req.specifier)
            assert len(spec) == 1 and spec[0].operator == "==", line
            assert _name(req.name) not in pins, f"{name}: {req.name} twice"
            pins[_name(req.name)] = spec[0].version
    return pins


def _lower_bound(req: Requirement) -> str:
    bounds = [s.version for s in req.specifier if s.operator in (">=", "==")]
    assert len(bounds) == 1, f"{req}: one lower bound (>= or ==)"
    return bounds[0]


def test_the_pinned_set_satisfies_every_declared_range():
    pins = _constraints("pinned.txt")
    for req in _requirements():
        for name in _with_implied(req):
            assert name in pins, f"constraints/pinned.txt lacks {name} ({req})"
        assert req.specifier.contains(pins[_name(req.name)], prereleases=True), (req, pins[_name(req.name)])
    assert pins["torch"] == "2.13.0"            # no local label: a CPU or CUDA 2.13.0 build
    assert "lottery-book" not in pins and "pip" not in pins


def test_the_lower_file_holds_each_declared_lower_bound():
    lower = _constraints("lower.txt")
    for req in _requirements():
        assert _name(req.name) in lower, f"constraints/lower.txt lacks {req.name} ({req})"
        assert Version(lower[_name(req.name)]) == Version(_lower_bound(req)), req
        assert req.specifier.contains(lower[_name(req.name)], prereleases=True)
    assert lower["distributed"] == lower["dask"]            # dask[distributed]: same release
    declared = {_name(r.name) for r in _requirements()}
    assert set(lower) - declared <= {"distributed"}, set(lower) - declared
