"""Progress while a chapter executes, and the kernel's transport noise filtered
(lottery/book/progress.py, lottery/book/build.py)."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import nbformat
import pytest

from lottery.book import build, chapters, plan, progress
from lottery.experiment import selection

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^tickets: (\d+)/(\d+) networks, (\d+ s|\d+ min) elapsed(, ~(\d+ s|\d+ min) left)?$")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _fake_store(root: Path, n: int, stored: int) -> list[Path]:
    """``n`` networks' metrics.json paths in a fake run store, the first ``stored`` present."""
    paths = [root / f"tickets-{i // 8:04d}" / "reset" / f"round_{i % 8:02d}" / "metrics.json" for i in range(n)]
    for p in paths[:stored]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("{}")
    return paths


def _fill(paths: list[Path], pause: float) -> threading.Thread:
    def go() -> None:
        for p in paths:
            time.sleep(pause)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("{}")
    t = threading.Thread(target=go)
    t.start()
    return t


def test_progress_counts_a_store_filled_by_a_thread(tmp_path):
    paths = _fake_store(tmp_path, 40, stored=10)       # 10 stored before: not this run's work
    out = io.StringIO()                                # not a terminal: a CI log
    with progress.ChapterProgress("tickets", paths, stream=out, interval=0.05):
        filler = _fill(paths[10:], 0.01)
        filler.join()
        time.sleep(0.2)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) >= 3
    counts = [int(LINE.match(line).group(1)) for line in lines[:-1]]
    assert all(LINE.match(line).group(2) == "30" for line in lines[:-1])
    assert counts == sorted(counts) and counts[-1] == 30
    assert any(LINE.match(line).group(4) for line in lines[:-1] if 0 < int(LINE.match(line).group(1)) < 30)
    assert re.fullmatch(r"tickets: 30/30 networks trained in \d+ s", lines[-1])


def test_the_time_left_is_extrapolated_from_the_networks_done(tmp_path):
    paths = _fake_store(tmp_path, 100, stored=0)
    clock = iter([0.0, 0.0, 360.0]).__next__
    p = progress.ChapterProgress("tickets", paths, stream=io.StringIO(), clock=clock)
    p._start = clock()
    p._count_start()
    for path in paths[:25]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    assert p.line() == "tickets: 25/100 networks, 6 min elapsed, ~18 min left"


def test_nothing_to_train_or_no_plan_still_says_how_long(tmp_path):
    paths = _fake_store(tmp_path, 5, stored=5)
    p = progress.ChapterProgress("verdict", paths, stream=io.StringIO(), clock=lambda: 0.0)
    p._count_start()
    assert p.line() == "verdict: nothing to train (all 5 networks it needs are stored), 0 s elapsed"

    p = progress.ChapterProgress("data", [], stream=io.StringIO(), clock=lambda: 0.0)
    p._count_start()
    assert p.line() == "data: 0 s elapsed"                # a chapter that trains nothing

    def broken():
        raise ValueError("no plan")
    p = progress.ChapterProgress("phase", broken, stream=io.StringIO(), clock=lambda: 0.0)
    p._count_start()
    assert p.line() == "phase: 0 s elapsed" and p.total is None


def test_a_terminal_gets_one_line_rewritten_in_place(tmp_path):
    paths = _fake_store(tmp_path, 4, stored=0)
    out = Terminal()
    with progress.ChapterProgress("tickets", paths, stream=out, interval=0.05):
        _fill(paths, 0.02).join()
        time.sleep(0.15)
    text = out.getvalue()
    assert text.startswith("\rtickets: ") and "\x1b[K" in text
    assert text.endswith("\rtickets: 4/4 networks trained in 0 s\x1b[K\n") and text.count("\n") == 1


def test_kernel_transport_noise_is_dropped_and_other_lines_pass():
    pipe = io.BytesIO(b"[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All "
                      b"communication is sent in plain text.\n"
                      b"a real problem in a worker\n"
                      b"[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\n"
                      b"[IPKernelApp] ERROR | Exception in message handler:\n")
    out = io.StringIO()
    progress.forward(pipe, out)
    assert out.getvalue() == ("a real problem in a worker\n"
                              "[IPKernelApp] ERROR | Exception in message handler:\n")


def test_a_chapter_counts_the_networks_its_plan_counts():
    run = selection.chapter_settings("smoke")
    params = {"domains": ["books"], "seeds": [0], "package_source": "git+x", "dask": None}
    paths = plan.chapter_networks("smoke", "tickets", params)
    assert len(paths) == len(set(paths)) == plan.cost(run, "tickets", {"domains": ["books"], "seeds": [0]}).networks
    assert all(p.name == "metrics.json" for p in paths)
    assert plan.chapter_networks("smoke", "data", {"domains": ["books"]}) == []


def test_execute_chapter_prints_progress_while_papermill_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(progress, "INTERVAL", 0.05)
    needed = plan.chapter_networks("smoke", "tickets", {"domains": ["books"], "seeds": [0]})

    def fake_papermill(source, output, parameters):    # trains the chapter's networks slowly
        _fill(needed, 0.01).join()
        time.sleep(0.2)
        output.write_text("{}")

    monkeypatch.setattr(build, "_papermill", fake_papermill)
    build.execute_chapter("tickets", "smoke", {"domains": ["books"], "seeds": [0]},
                          output=tmp_path / "t.ipynb", project=REPO, log=lambda _: None)
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"tickets: {len(needed)}/{len(needed)} networks trained in 0 s"
    assert any(LINE.match(line) for line in err[:-1])


@pytest.mark.slow
def test_a_real_kernel_is_quiet_but_its_errors_still_show(tmp_path, capfd):
    """papermill with the build's kernel manager: no transport warning at start-up, no
    shutdown noise, but a line the kernel logs as an error reaches stderr."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("get_ipython().kernel.log.error('a real kernel error %s', x)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = chapters.ChapterSource(chapters.chapter("data"), nb, {"x": 1})
    build._papermill(source, tmp_path / "out.ipynb", {"x": 2})
    err = capfd.readouterr().err
    assert "a real kernel error 2" in err
    assert not any(noise in err for noise in progress.KERNEL_NOISE), err
    assert (tmp_path / "out.ipynb").exists()
