"""Packaging: conda and pip name the same runtime deps; shipped data files are packaged."""

from __future__ import annotations

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

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
ENVIRONMENT = yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))


def _name(spec: str) -> str:
    """Normalised distribution name of a pip or conda spec ('numpy>=1.24' -> 'numpy')."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~\[;]", spec.strip(), maxsplit=1)[0]).lower()


def _environment_names() -> set[str]:
    names = set()
    for dep in ENVIRONMENT["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-"):  # -e .[book,test], --index-url ...: not a package name
                continue
            names.add(_name(item))
    return names - {"python", "pip"}


def test_environment_yml_names_the_runtime_dependencies():
    runtime = {_name(d) for d in PYPROJECT["project"]["dependencies"]}
    assert runtime == {"torch", "numpy", "pandas", "scipy", "sentencepiece", "tqdm"}
    assert _environment_names() == runtime


def test_environment_yml_python_and_torch_pins():
    deps = ENVIRONMENT["dependencies"]
    assert "python>=3.10" in deps and "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "torch==2.13.0" in pip and any(p.startswith("-e .[") and "book" in p for p in pip)


def test_jupyter_book_pinned_below_2():
    book = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["book"]]
    jb = next(r for r in book if _name(r.name) == "jupyter-book")
    assert jb.specifier.contains("1.0.4") and not jb.specifier.contains("2.0.0")


def test_checksum_files_are_package_data():
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["lottery"]
    assert "data/*.sha256" in globs
    text = resources.files("lottery.data").joinpath("fdu-mtl.sha256").read_text()
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert len(lines) == 48 and all(re.fullmatch(r"[0-9a-f]{64}  fdu-mtl/\S+", l) for l in lines)


@pytest.mark.slow
def test_wheel_contains_the_checksum_files(tmp_path):
    """Build the wheel offline (no isolation: the venv's setuptools) and look inside.

    It is built from a copy, so setuptools' ``build/`` folder does not land in the repo.
    """
    src = tmp_path / "src"
    shutil.copytree(REPO / "lottery", src / "lottery",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        if (REPO / name).is_file():
            shutil.copy(REPO / name, src / name)
    if not (src / "README.md").exists():
        (src / "README.md").write_text("lottery\n")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {result.stderr.strip()[-300:]}")
    wheel = next((tmp_path / "dist").glob("lottery-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"lottery/data/fdu-mtl.sha256", "lottery/data/blitzer.sha256",
            "lottery/data/readers.py", "lottery/data/vocab.py", "lottery/engine/jobs.py",
            "lottery/cli/app.py"} <= names
