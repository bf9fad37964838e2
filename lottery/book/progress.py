"""Progress and quiet while papermill executes a chapter.

**Progress.** A chapter runs in a kernel, and until it ends nothing else reports: the
tickets chapter of the course book trains 890 networks in about 18 minutes. A
:class:`ChapterProgress` counts, from a background thread, the networks the chapter
needs that have been stored since it started (a network is stored once its step's
``metrics.json`` exists; see :func:`lottery.book.plan.chapter_trainings`: an
instability step's file stands for its two trainings), and prints one
line every ``interval`` seconds and one at the end::

    tickets: 312/890 networks, 6 min elapsed, ~11 min left

Counting is cheap: one ``stat`` per network still missing, no file is read. On a
terminal the line is rewritten in place; elsewhere (a CI log, a file) every line is a
plain line, without carriage returns. :func:`end_line` ends a line left open in place
before other output (the build calls it before its own log lines).

**Quiet.** The kernel writes its own log to the build's stderr: at start-up "Kernel is
running over TCP without encryption" (ipykernel warns whenever the transport is TCP,
which is what papermill uses) and at shutdown "KeyboardInterrupt caught in kernel"
(jupyter_client interrupts a kernel before it asks it to shut down). Neither is the
chapter's. :func:`kernel_manager` returns a kernel manager class that starts the kernel
with its stderr piped through :func:`forward`, which drops exactly those lines
(:data:`KERNEL_NOISE`) and passes every other line on, so a real kernel error is still
seen; it also gives the kernel extra environment variables (the build names the
chapter's stamps folder so).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Sequence

from lottery.experiment.labels import duration

#: Kernel log lines that are transport and shutdown noise, not the chapter's output.
KERNEL_NOISE: tuple[str, ...] = (
    "Kernel is running over TCP without encryption",
    "KeyboardInterrupt caught in kernel",
    "KeyboardInterrupt caught in CFRunLoop",
)

#: Seconds between two progress lines.
INTERVAL = 30.0

_LOCK = threading.Lock()
_OPEN: dict[str, Any] = {"stream": None}   # the stream holding a line rewritten in place


def _stream(stream: IO[str] | None) -> IO[str]:
    return stream if stream is not None else sys.stderr


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def emit(text: str, stream: IO[str] | None = None, in_place: bool = False) -> None:
    """Print one progress line: rewritten in place when ``in_place`` and the stream is a
    terminal, else a plain line (never a carriage return in a log)."""
    out = _stream(stream)
    with _LOCK:
        if in_place and _is_terminal(out):
            out.write("\r" + text + "\x1b[K")
            _OPEN["stream"] = out
        elif _OPEN["stream"] is out:      # replace the line left open in place
            out.write("\r" + text + "\x1b[K\n")
            _OPEN["stream"] = None
        else:
            out.write(text + "\n")
        out.flush()


def end_line(stream: IO[str] | None = None) -> None:
    """End a progress line left open in place (before other output)."""
    out = _stream(stream)
    with _LOCK:
        if _OPEN["stream"] is out:
            out.write("\n")
            out.flush()
            _OPEN["stream"] = None


class ChapterProgress:
    """Counts a chapter's networks as they are stored and prints a line every ``interval``
    seconds (and one at :meth:`stop`).

    ``networks`` are the ``metrics.json`` paths of every network the chapter needs (or a
    mapping of each path to the trainings it stands for), or a
    function returning them (called in the background thread, so that working them out
    never delays the chapter; if it fails, the lines only give the elapsed time). The
    networks already stored when it starts are not counted: ``done/total`` is what this
    run trains.
    """

    def __init__(self, chapter: str, networks: Sequence[Path] | Mapping[Path, int] | Callable[[], Any],
                 stream: IO[str] | None = None, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.chapter = chapter
        self._networks = networks
        self._stream = stream
        self.interval = INTERVAL if interval is None else interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = clock()
        self.total: int | None = None      # networks to train (None: not known)
        self.stored = 0                    # networks the chapter needs that were stored already
        self._pending: dict[Path, int] = {}

    # ------------------------------------------------------------ counting
    def _count_start(self) -> None:
        try:
            found = self._networks() if callable(self._networks) else self._networks
            weights = ({Path(p): int(n) for p, n in found.items()} if isinstance(found, Mapping)
                       else dict.fromkeys(map(Path, found), 1))
        except Exception:       # the plan is a nicety: never let it disturb the chapter
            return
        self._pending = {p: n for p, n in weights.items() if not p.exists()}
        self.total = sum(self._pending.values())
        self.stored = sum(weights.values()) - self.total

    def done(self) -> int:
        """Networks stored since the start (one ``stat`` per step still missing)."""
        if self.total is None:
            return 0
        self._pending = {p: n for p, n in self._pending.items() if not p.exists()}
        return self.total - sum(self._pending.values())

    def line(self, final: bool = False) -> str:
        elapsed = self._clock() - self._start
        if self.total is None or self.total == self.stored == 0:   # unknown, or it trains nothing
            return f"{self.chapter}: {duration(elapsed)} elapsed"
        if self.total == 0:
            return (f"{self.chapter}: nothing to train (all {self.stored:,} networks it needs are "
                    f"stored), {duration(elapsed)} elapsed")
        done = self.done()
        text = f"{self.chapter}: {done:,}/{self.total:,} networks"
        if final:
            return text + f" trained in {duration(elapsed)}"
        text += f", {duration(elapsed)} elapsed"
        if 0 < done < self.total:
            text += f", ~{duration(elapsed / done * (self.total - done))} left"
        return text

    # ------------------------------------------------------------ the thread
    def _run(self) -> None:
        self._count_start()
        while not self._stop.wait(self.interval):
            emit(self.line(), self._stream, in_place=True)

    def start(self) -> "ChapterProgress":
        self._start = self._clock()
        self._thread = threading.Thread(target=self._run, name=f"progress-{self.chapter}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling; print the final line if this run trained anything."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.total:
            emit(self.line(final=True), self._stream)
        else:
            end_line(self._stream)

    def __enter__(self) -> "ChapterProgress":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------- quiet kernels
def is_noise(line: str) -> bool:
    """Whether a kernel's stderr line is one of :data:`KERNEL_NOISE`."""
    return any(n in line for n in KERNEL_NOISE)


def forward(pipe: IO[bytes], stream: IO[str] | None = None) -> None:
    """Copy a kernel's stderr to ``stream`` (default: this process's stderr at the time
    of each line), line by line, without the :data:`KERNEL_NOISE` lines."""
    try:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            if is_noise(line):
                continue
            end_line(stream)
            out = _stream(stream)
            with _LOCK:
                out.write(line)
                out.flush()
    except (OSError, ValueError):   # the pipe was closed under us: the kernel is gone
        pass


def kernel_manager(env: Mapping[str, str] | None = None, stream: IO[str] | None = None) -> type:
    """A jupyter_client kernel manager class (papermill's ``kernel_manager_class``) whose
    kernel gets ``env`` added to its environment and has its stderr filtered by
    :func:`forward`."""
    from jupyter_client.manager import AsyncKernelManager  # the book extra

    extra = dict(env or {})

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw["env"] = {**(kw.get("env") or os.environ), **extra}
            kw["stderr"] = subprocess.PIPE
            await super()._async_launch_kernel(kernel_cmd, **kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None and process.stderr is not None:
                threading.Thread(target=forward, args=(process.stderr, stream), daemon=True,
                                 name="kernel-stderr").start()

    return QuietKernelManager
