"""End-to-end book tests (smoke profile): build, nbval against the goldens, Chromium.

These execute every chapter, so they are marked ``book`` and ``slow``; deselect them
with ``pytest -m "not book"``. One smoke build (papermill + jupyter-book) is shared by
the module; the nbval run re-executes the golden notebooks and reuses the models the
build trained (same run store).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

import browser_probe
from golden_tools import GOLDEN_DIR, SANITIZE_FILE
from lottery.book import build, chapters, layout
from lottery.experiment import selection

pytestmark = [pytest.mark.book, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
MATH_PAGES = ("divergence", "tickets", "phase")


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory, mirror):
    root = tmp_path_factory.mktemp("book")
    start = time.perf_counter()
    index = build.build_book("smoke", book_dir=root, project=REPO, log=print)
    elapsed = time.perf_counter() - start
    print(f"smoke book built in {elapsed:.1f} s at {root}")
    return {"root": root, "index": index, "seconds": elapsed}


def _pages(root: Path) -> dict[str, Path]:
    return {c.name: root / "_build" / "html" / "chapters" / f"{c.name}.html" for c in chapters.CHAPTERS}


def _chart_outputs(nb_path: Path) -> int:
    """Charts a notebook outputs: displayed, or glued (myst-nb's prefixed mime type) for
    a numbered figure."""
    nb = nbformat.read(str(nb_path), as_version=4)
    return sum("lottery-chart-" in html
               for c in nb.cells if c.cell_type == "code" for out in c.outputs
               for key, html in out.get("data", {}).items() if key.endswith("text/html"))


def test_smoke_book_builds_every_chapter(smoke_book):
    root = smoke_book["root"]
    assert smoke_book["index"].exists()
    for name, page in _pages(root).items():
        assert page.exists(), f"no HTML for chapter {name}"
        nb = nbformat.read(str(root / "chapters" / f"{name}.ipynb"), as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                  if o.output_type == "error"]
        assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and 'profile = "smoke"' in injected[0].source
    timings = json.loads((root / "chapters" / layout.TIMINGS_FILE).read_text())
    assert set(timings) == set(chapters.EXECUTION_ORDER)
    assert smoke_book["seconds"] < 600


def _output_text(out: dict) -> str:
    if out.get("output_type") == "stream":
        return out.get("text", "")
    if out.get("output_type") == "error":
        return "Traceback " + "\n".join(out.get("traceback", []))
    return "\n".join(v if isinstance(v, str) else "\n".join(v) for k, v in out.get("data", {}).items()
                     if k.startswith("text/"))


def test_published_outputs_carry_no_build_noise(smoke_book):
    """No stderr, warning, traceback or path of the build machine in any page's output."""
    root = smoke_book["root"]
    noise = re.compile(r"Warning|Traceback|" + re.escape(str(REPO)) + "|" + re.escape(str(root)))
    for name in _pages(root):
        nb = nbformat.read(str(root / "chapters" / f"{name}.ipynb"), as_version=4)
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            for out in cell.outputs:
                assert out.get("name") != "stderr", f"{name}: stderr output: {out.get('text', '')[:200]}"
                hit = noise.search(_output_text(out))
                assert not hit, f"{name}: {hit.group(0)!r} in an output of cell {cell.source[:60]!r}"


def test_glued_numbers_are_pasted_into_the_prose(smoke_book):
    html = _pages(smoke_book["root"])["data"].read_text()
    pasted = re.findall(r'<span class="pasted-text">([^<]*)</span>', html)
    assert pasted and all(p.strip() for p in pasted)
    from lottery import data

    settings = selection.chapter_settings("smoke").settings
    total = int(data.split_summary(settings.data)["n_reviews"].sum())
    assert f"{total:,}" in pasted
    verdict = _pages(smoke_book["root"])["verdict"].read_text()
    assert "reproduced" in verdict or "not tested" in verdict


def test_html_loads_nothing_from_the_network(smoke_book):
    html_dir = smoke_book["root"] / "_build" / "html"
    pattern = re.compile(r'<(?:script|link|img)\b[^>]*(?:src|href)="(?:https?:)?//[^"]*"', re.I)
    for page in html_dir.rglob("*.html"):
        hits = pattern.findall(page.read_text())
        assert not hits, f"{page.name} loads {hits[0]}"
    assert (html_dir / "_static" / "vega-bundle.js").exists()
    assert (html_dir / "mathjax" / build.MATHJAX_FILE).exists()


def test_nbval_goldens(smoke_book, tmp_path):
    """Re-execute the golden notebooks and compare their text outputs (nbval). They run
    from a copy, so that what the pages write beside themselves (stamps) stays there."""
    for p in GOLDEN_DIR.glob("*.ipynb"):
        shutil.copy2(p, tmp_path / p.name)
    goldens = sorted(str(p) for p in tmp_path.glob("*.ipynb"))
    assert len(goldens) == len(chapters.CHAPTERS)
    cmd = [sys.executable, "-m", "pytest", "-q", "--nbval", "--nbval-current-env",
           "--nbval-sanitize-with", str(SANITIZE_FILE), "--noconftest",
           "-p", "no:cacheprovider", "--nbval-cell-timeout", "600", *goldens]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, (
        "nbval: executed chapters differ from tests/golden (if the change is intended, "
        "run `python tests/golden_tools.py`):\n" + proc.stdout[-8000:] + proc.stderr[-2000:])


# ------------------------------------------------------------------ Chromium
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        proc = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True,
                              text=True, timeout=900)
        if proc.returncode == 0 and shutil.which("chromium"):
            return shutil.which("chromium")
        pytest.skip("Chromium is not installed and `apt-get install -y chromium` failed: "
                    + proc.stderr[-300:])
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium); "
                "cannot check that charts and maths render")


def _dump_dom(chromium: str, page: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class _DomSummary(HTMLParser):
    """Counts what the test needs: charts, their SVG marks, chart errors, MathJax."""

    def __init__(self):
        super().__init__()
        self.charts: list[dict[str, int]] = []
        self._depth: list[int] = []  # open-element depth inside the current chart
        self.errors: list[str] = []
        self._in_error = False
        self.mathjax = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "div" and "lottery-chart" in classes and not self._depth:
            self.charts.append({"svg": 0, "marks": 0})
            self._depth.append(0)
        elif self._depth:
            self._depth[-1] += 1
            if tag == "svg" and "marks" in classes:
                self.charts[-1]["svg"] += 1
            if tag in ("path", "rect", "line", "text") and self.charts[-1]["svg"]:
                self.charts[-1]["marks"] += 1
        if "lottery-chart-error" in classes:
            self._in_error = True
            self.errors.append("")
        if tag == "mjx-container":
            self.mathjax += 1

    def handle_endtag(self, tag):
        if self._depth:
            if self._depth[-1] == 0:
                self._depth.pop()
            else:
                self._depth[-1] -= 1
        self._in_error = False

    def handle_data(self, data):
        if self._in_error:
            self.errors[-1] += data


def test_charts_and_maths_render_in_chromium(smoke_book, chromium):
    root = smoke_book["root"]
    seen_charts = 0
    for name, page in _pages(root).items():
        dom = _dump_dom(chromium, page)
        summary = _DomSummary()
        summary.feed(dom)
        expected = _chart_outputs(root / "chapters" / f"{name}.ipynb")
        assert len(summary.charts) == expected, f"{name}: {len(summary.charts)} of {expected} charts"
        assert not summary.errors, f"{name}: {summary.errors}"
        assert "Error loading script" not in re.sub(r"<script.*?</script>", "", dom, flags=re.S)
        for i, chart in enumerate(summary.charts):
            assert chart["svg"] >= 1, f"{name}: chart {i} has no SVG"
            assert chart["marks"] >= 10, f"{name}: chart {i} has only {chart['marks']} marks"
        seen_charts += len(summary.charts)
        if name in MATH_PAGES:
            assert summary.mathjax > 0, f"{name}: maths not typeset (no mjx-container)"
    assert seen_charts >= 5
    shots = root / "screenshots"
    shots.mkdir(exist_ok=True)
    for name in ("tickets", "divergence"):
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                            "--virtual-time-budget=10000", "--window-size=1300,2400",
                            f"--screenshot={shots / (name + '.png')}",
                            _pages(root)[name].as_uri()], capture_output=True, timeout=120)
        assert (shots / f"{name}.png").stat().st_size > 20_000
    print(f"screenshots in {shots}")


# ------------------------------------------------------------------ readers and teachers
PHONE, DESKTOP = 420, 1300


@pytest.fixture(scope="module")
def probes(smoke_book, chromium):
    """Every chapter measured in Chromium at desktop and phone widths."""
    return {(name, w): browser_probe.probe(chromium, page, w)
            for name, page in _pages(smoke_book["root"]).items() for w in (DESKTOP, PHONE)}


def test_chart_text_is_readable_and_charts_fit_a_phone(probes):
    for (name, width), m in probes.items():
        assert m["width"] == width
        assert m["scrollWidth"] <= width, f"{name} at {width}px overflows to {m['scrollWidth']}px"
        for chart in m["charts"]:
            assert chart["texts"] > 10, f"{name}: chart {chart['id']} drew no text"
            assert chart["minFont"] >= 11, f"{name} at {width}px: {chart['minFont']}px chart text"
            assert chart["overflow"] <= 0, f"{name} at {width}px: chart {chart['id']} cut off"


def test_every_chapter_has_exercises_with_hidden_solutions(probes):
    for (name, width), m in probes.items():
        if width == DESKTOP:
            assert 3 <= m["exercises"] <= 5, f"{name}: {m['exercises']} exercises"
            assert m["solutions"] == m["exercises"], f"{name}: {m['solutions']} solutions"


def test_plumbing_cells_are_hidden_but_expandable(probes, smoke_book):
    for (name, width), m in probes.items():
        if width != DESKTOP:
            continue
        assert m["hidden"], f"{name}: no hidden cells"
        for cell in m["hidden"]:
            assert cell["closed"] and cell["code"] > 0 and cell["visible"], (name, cell)
    html = _pages(smoke_book["root"])["tickets"].read_text()
    text = re.sub(r"<[^>]+>", "", html)   # highlighted code is split into spans
    assert "def magnitude_prune(" in text and "p.mul_(m)" in text   # the method, from source
    assert html.count('id="fig-tickets"') == 1 and 'href="#fig-tickets"' in html


def test_pages_load_no_remote_resource_and_are_stamped(probes, smoke_book):
    for (name, width), m in probes.items():
        remote = [r for r in m["resources"] if not r.startswith(("file:", "data:", "blob:"))]
        assert not remote, f"{name} loaded {remote[:3]}"
    for name, page in _pages(smoke_book["root"]).items():
        html = page.read_text()
        assert "How this page was made" in html and "profile <strong>smoke</strong>" in html, name
    html_dir = smoke_book["root"] / "_build" / "html"
    assert not (html_dir / "genindex.html").exists()
    reproduce = (html_dir / "reproduce.html").read_text()
    assert "mathjax/" in reproduce and (html_dir / "mathjax" / build.MATHJAX_FILE).exists()


def test_the_other_pages_fit_a_phone_too(smoke_book, chromium):
    html_dir = smoke_book["root"] / "_build" / "html"
    for name in ("reproduce", "own_data", "references"):
        m = browser_probe.probe(chromium, html_dir / f"{name}.html", PHONE)
        assert m["scrollWidth"] <= PHONE, f"{name} overflows to {m['scrollWidth']}px at {PHONE}px"


def test_worker_processes_do_not_print_data_notes_into_a_chapter(tmp_path, mirror, monkeypatch):
    """DVD's replaced bytes are met in the training workers (spawned by the chapter's
    kernel): the note belongs to the data chapter, not to this chapter's output."""
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path / "cache"))
    out = build.execute_chapter("tickets", "smoke", {"domains": ["books", "dvd"]},
                                output=tmp_path / "tickets.ipynb", project=REPO, log=lambda *a: None)
    nb = nbformat.read(str(out), as_version=4)
    stderr = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("name") == "stderr"]
    assert not stderr, stderr[0][:200]
