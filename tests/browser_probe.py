"""Measure a built page in headless Chromium: chart text sizes, horizontal overflow,
exercises, hidden cells, and every resource the page loaded.

Chromium's ``--dump-dom`` prints the DOM after the page's scripts ran. The probe copies
the page next to itself with one script added that, once the charts have drawn, writes
its measurements as JSON into a ``<pre id="lottery-probe">``; the test reads them back.
Usable on its own: ``python tests/browser_probe.py PAGE.html [WIDTH]`` prints the JSON.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]

PROBE = r"""
<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var out = {width: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
               charts: [], exercises: 0, solutions: 0, hidden: [], resources: []};
    document.querySelectorAll("div.lottery-chart").forEach(function (el) {
      var r = el.getBoundingClientRect(), sizes = [], overflow = 0;
      el.querySelectorAll("svg text").forEach(function (t) {
        if (!t.textContent.trim()) return;
        var b = t.getBoundingClientRect();
        if (b.width === 0 && b.height === 0) return;
        sizes.push(parseFloat(getComputedStyle(t).fontSize));
      });
      var svg = el.querySelector("svg");
      if (svg) overflow = svg.getBoundingClientRect().right - window.innerWidth;
      out.charts.push({id: el.id, top: r.top + window.scrollY, width: r.width,
                       svgWidth: svg ? svg.getBoundingClientRect().width : 0,
                       minFont: sizes.length ? Math.min.apply(null, sizes) : null,
                       texts: sizes.length, overflow: overflow});
    });
    out.exercises = document.querySelectorAll("div.exercise").length;
    out.solutions = document.querySelectorAll("details.solution, div.solution").length;
    document.querySelectorAll("details.hide").forEach(function (d) {
      var before = d.open; d.open = true;
      var code = d.querySelector("pre, table");
      out.hidden.push({closed: !before, code: code ? code.textContent.length : 0,
                       visible: code ? code.getBoundingClientRect().height > 0 : false});
      d.open = before;
    });
    performance.getEntriesByType("resource").forEach(function (e) { out.resources.push(e.name); });
    if (window.parent !== window) { window.parent.postMessage(JSON.stringify(out), "*"); return; }
    var pre = document.createElement("pre");
    pre.id = "lottery-probe";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }, 1500);
});
</script>
"""


# Headless Chromium will not make a window narrower than 500 px, so narrower widths
# (a phone's 420 px) load the page in an iframe of that width: media queries and layout
# see the iframe's width, and the probe posts its measurements to the wrapper.
WRAPPER = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="{src}" style="width:{width}px;height:{height}px;border:0"></iframe>
<script>window.addEventListener("message", function (e) {{
  var pre = document.createElement("pre"); pre.id = "lottery-probe"; pre.textContent = e.data;
  document.body.appendChild(pre); }});</script></body></html>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def probe(chromium: str, page: Path, width: int = 1300, height: int = 2000) -> dict:
    """Load ``page`` at ``width`` CSS px and return the measurements."""
    html = page.read_text(encoding="utf-8")
    copy = page.with_name(f"_probe_{page.name}")
    copy.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    wrapper = page.with_name(f"_probe_wrap_{page.name}")
    wrapper.write_text(WRAPPER.format(src=copy.name, width=width, height=height), encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run(
                [chromium, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000",
                 f"--window-size={max(width, 500) + 20},{height}", "--dump-dom", wrapper.as_uri()],
                capture_output=True, text=True, timeout=180)
    finally:
        copy.unlink(missing_ok=True)
        wrapper.unlink(missing_ok=True)
    found = re.search(r'<pre id="lottery-probe">(.*?)</pre>', proc.stdout, re.S)
    if not found:
        raise RuntimeError(f"no probe output for {page} (rc {proc.returncode}): {proc.stderr[-1500:]}")
    text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    return json.loads(text.replace("&amp;", "&"))


def screenshot(chromium: str, page: Path, out: Path, width: int, height: int) -> Path:
    """A PNG of ``page`` at ``width`` CSS px (via the iframe wrapper, for narrow widths)."""
    wrapper = page.with_name(f"_shot_wrap_{page.name}")
    wrapper.write_text(WRAPPER.format(src=page.name, width=width, height=height), encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}",
                            "--virtual-time-budget=15000",
                            f"--window-size={max(width, 500)},{height}",
                            f"--screenshot={out}", wrapper.as_uri()], capture_output=True, timeout=180)
    finally:
        wrapper.unlink(missing_ok=True)
    return out


if __name__ == "__main__":
    print(json.dumps(probe(find_chromium(), Path(sys.argv[1]),
                           int(sys.argv[2]) if len(sys.argv) > 2 else 1300), indent=1))
