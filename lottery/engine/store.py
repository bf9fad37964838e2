"""The run store: one directory per (procedure, settings), named by a hash of the settings.

In the spirit of OpenLTH: every step writes its output atomically (into a temporary
sibling, synced, then renamed; :mod:`lottery.engine.durable`), and every step skips
itself when its output exists, so a run killed at any moment resumes from its last
finished step and ends with the same numbers as an uninterrupted run. A stored step
that cannot be read back (a torn file after a crash of the machine, a full disk) is
named, moved to ``<run>/.corrupt/`` and trained again (:class:`CorruptStep`).

Hashes are taken over a canonical JSON form of the settings in which fields marked
``NOT_HASHED`` are left out and fields equal to their ``neutral`` default are dropped,
so adding a setting later does not orphan old runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from filelock import FileLock

from lottery import config
from lottery.engine.durable import (CorruptFile, fsync_dir, fsync_file, full_error, is_full, json_writer,
                                    load_json, load_tensors, save_json, save_tensors, torch_writer,
                                    write_once)

__all__ = ["CORRUPT_DIR", "CorruptFile", "CorruptStep", "RunDir", "RunStore", "StepWritten", "canonical",
           "load_json", "load_tensors", "save_json", "save_tensors", "settings_hash"]


def canonical(obj: Any) -> Any:
    """JSON-able canonical form of settings (dataclasses, tuples, dicts, scalars)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            if not f.metadata.get("hashed", True):
                continue
            value = getattr(obj, f.name)
            if "neutral" in f.metadata and value == f.metadata["neutral"]:
                continue
            out[f.name] = canonical(value)
        return out
    if isinstance(obj, dict):
        return {str(k): canonical(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer():
        return obj  # keep 1.0 as 1.0: json writes it so
    return obj


def settings_hash(obj: Any, length: int = 12) -> str:
    text = json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


#: The run store's one test seam: ``on_step_written(phase, step)`` is called with
#: ``phase="tensors"`` when a step's tensors are in its temporary folder (metrics not
#: written, folder not renamed) and with ``phase="stored"`` once the step is stored. None
#: in normal use; the resume tests kill the process from it (``tests/kill_at.py``).
StepWritten = Callable[[str, str], None]

#: Where a run keeps steps that could not be read back (``<run>/.corrupt/``): moved
#: aside, never deleted, and trained again.
CORRUPT_DIR = ".corrupt"


class CorruptStep(CorruptFile):
    """A stored step (or a run file such as ``theta0.pt``) that cannot be read back."""

    def __init__(self, run: "RunDir", step: str | None, bad: CorruptFile):
        super().__init__(bad.path, bad.reason)
        self.run, self.step = run, step


class RunDir:
    """One run: ``settings.json``, ``theta0.pt`` (and ``theta_k<k>.pt``), and finished steps
    as folders.

    Nothing is created until the first file is written (a command that fails before it
    trains anything leaves no folder behind). A step folder (e.g. ``reset/round_03``)
    appears only once all of its files are written and synced: they are written into a
    temporary folder that is then renamed. If two writers finish the same step (two
    chains sharing the run, two commands on one store), the first one's folder stays and
    the second one's is discarded; :meth:`lock` lets a writer wait instead of training
    a step another process is training.
    """

    def __init__(self, path: Path, key: dict[str, Any], on_step_written: StepWritten | None = None):
        self.path = Path(path)
        self.key = key
        self.on_step_written = on_step_written

    def _create(self) -> None:
        if not (self.path / "settings.json").exists():
            self.path.mkdir(parents=True, exist_ok=True)
            write_once(self.path / "settings.json", json_writer(canonical(self.key)))

    def step_dir(self, step: str) -> Path:
        return self.path / step

    def done(self, step: str) -> bool:
        return (self.path / step / "metrics.json").exists()

    @contextlib.contextmanager
    def lock(self, steps: Sequence[str]) -> Iterator[None]:
        """Hold the lock files of ``steps`` (``<run>/.locks/``; taken in sorted order, so
        two holders cannot deadlock; released when the holder dies). A writer takes them,
        checks :meth:`done` again, and trains only what is still missing."""
        self._create()
        (self.path / ".locks").mkdir(exist_ok=True)
        with contextlib.ExitStack() as stack:
            for step in sorted(set(steps)):
                stack.enter_context(FileLock(self.path / ".locks" / f"{step.replace('/', '.')}.lock"))
            yield

    def write_step(self, step: str, metrics: dict[str, Any],
                   tensors: dict[str, dict[str, torch.Tensor]] | None = None) -> bool:
        """Write ``metrics.json`` and ``<name>.pt`` files for ``step`` all at once.
        Returns False (and keeps the stored step) if another writer finished it first."""
        self._create()
        final = self.path / step
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp"))
        try:
            try:
                self._fill(tmp, step, metrics, tensors or {})
            except BaseException as exc:
                if is_full(exc):
                    raise full_error(final, exc) from None
                raise
            return self._publish(tmp, final, step)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _fill(self, tmp: Path, step: str, metrics: dict[str, Any],
              tensors: dict[str, dict[str, torch.Tensor]]) -> None:
        for name, t in tensors.items():
            torch_writer(t)(tmp / f"{name}.pt")
            fsync_file(tmp / f"{name}.pt")
        if self.on_step_written:
            self.on_step_written("tensors", step)
        json_writer(metrics)(tmp / "metrics.json")
        fsync_file(tmp / "metrics.json")
        fsync_dir(tmp)

    def _publish(self, tmp: Path, final: Path, step: str) -> bool:
        # Under the step's publish lock (not the training lock of :meth:`lock`, which the
        # caller may hold): without it a second writer could find ``done`` false, then
        # the first writer's just-renamed folder, set it aside as a leftover and publish
        # its own, and both would count as the winner.
        (self.path / ".locks").mkdir(exist_ok=True)
        with FileLock(self.path / ".locks" / f"{step.replace('/', '.')}.publish.lock"):
            if self.done(step):
                return False                  # first finished step wins
            if final.exists():                # a leftover without metrics: keep it aside
                self._set_aside(final)
            try:
                os.rename(tmp, final)
            except OSError as exc:            # another writer renamed its folder first
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not self.done(step):
                    raise
                return False
        fsync_dir(final.parent)
        if self.on_step_written:
            self.on_step_written("stored", step)
        return True

    def _set_aside(self, folder: Path) -> Path:
        """Move ``folder`` into ``<run>/.corrupt/`` (kept for inspection)."""
        aside = self.path / CORRUPT_DIR / f"{folder.relative_to(self.path).as_posix().replace('/', '.')}.{time.time_ns()}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(folder, aside)
        except FileNotFoundError:             # another process moved it already
            pass
        return aside

    def quarantine(self, steps: Sequence[str]) -> list[Path]:
        """Move stored ``steps`` (and run files such as ``theta0.pt``) aside so that they
        are trained again; returns where they went."""
        return [self._set_aside(self.path / s) for s in steps if (self.path / s).exists()]

    def steps(self) -> list[str]:
        """The finished steps stored in this run (``reset/round_03``, ``round_02``, ...)."""
        return sorted(p.parent.relative_to(self.path).as_posix()
                      for p in self.path.glob("**/metrics.json") if not p.parent.name.startswith(".")
                      and CORRUPT_DIR not in p.parts)

    def metrics(self, step: str) -> dict[str, Any]:
        try:
            return load_json(self.path / step / "metrics.json")
        except CorruptFile as bad:
            raise CorruptStep(self, step, bad) from None

    def tensors(self, step: str, name: str) -> dict[str, torch.Tensor]:
        """A finished step's tensors. Asked for, a file the step lacks is damage too (e.g.
        ``weights.pt`` of a run imported without weights, :mod:`lottery.engine.archive`):
        :class:`CorruptStep`, so the step is set aside and trained again."""
        path = self.path / step / f"{name}.pt"
        try:
            return load_tensors(path)
        except CorruptFile as bad:
            raise CorruptStep(self, step, bad) from None
        except FileNotFoundError:
            if not self.done(step):
                raise
            raise CorruptStep(self, step, CorruptFile(path, "the step has no such file")) from None

    def save_file(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        """Store a run file (``theta0.pt``) once: an existing one is kept."""
        self._create()
        write_once(self.path / name, torch_writer(tensors))

    def load_file(self, name: str) -> dict[str, torch.Tensor]:
        try:
            return load_tensors(self.path / name)
        except CorruptFile as bad:
            raise CorruptStep(self, None, bad) from None

    def drop(self, step: str, name: str) -> None:
        """Delete a bulky file (old trained weights) that later steps no longer need."""
        f = self.path / step / f"{name}.pt"
        if f.exists():
            f.unlink()


class RunStore:
    """All runs under one root (default ``<cache>/runs``). ``on_step_written`` is the
    test seam (see :data:`StepWritten`) that every run of this store calls."""

    def __init__(self, root: Path | str | None = None, on_step_written: StepWritten | None = None):
        self.root = Path(root) if root is not None else config.cache_dir() / "runs"
        self.on_step_written = on_step_written

    def path(self, procedure: str, key: dict[str, Any]) -> Path:
        """Where a run lives (nothing is created: for plans and checks)."""
        return self.root / f"{procedure}-{settings_hash({'procedure': procedure, **key})}"

    def run(self, procedure: str, key: dict[str, Any]) -> RunDir:
        return RunDir(self.path(procedure, key), {"procedure": procedure, **key}, self.on_step_written)
