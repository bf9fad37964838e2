"""The run store: one directory per (procedure, settings), named by a hash of the settings.

In the spirit of OpenLTH: every step writes its output atomically (into a temporary
sibling, then ``os.replace``), and every step skips itself when its output exists, so a
run killed at any moment resumes from its last finished step and ends with the same
numbers as an uninterrupted run.

Hashes are taken over a canonical JSON form of the settings in which fields marked
``NOT_HASHED`` are left out and fields equal to their ``neutral`` default are dropped,
so adding a setting later does not orphan old runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from lottery import config


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


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    _atomic_write(Path(path), lambda tmp: torch.save({k: v.detach().cpu() for k, v in tensors.items()}, tmp))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def save_json(path: Path, obj: Any) -> None:
    def write(tmp):
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
    _atomic_write(Path(path), write)


def load_json(path: Path) -> Any:
    with open(path) as fh:
        return json.load(fh)


#: The run store's one test seam: ``on_step_written(phase, step)`` is called with
#: ``phase="tensors"`` when a step's tensors are in its temporary folder (metrics not
#: written, folder not renamed) and with ``phase="stored"`` once the step is stored. None
#: in normal use; the resume tests kill the process from it (``tests/kill_at.py``).
StepWritten = Callable[[str, str], None]


class RunDir:
    """One run: ``settings.json``, optional ``theta0.pt``, and finished steps as folders.

    A step folder (e.g. ``reset/round_03``) appears only once all of its files are
    written: they are written into a temporary folder that is then renamed.
    """

    def __init__(self, path: Path, key: dict[str, Any], on_step_written: StepWritten | None = None):
        self.path = Path(path)
        self.on_step_written = on_step_written
        self.path.mkdir(parents=True, exist_ok=True)
        settings_file = self.path / "settings.json"
        if not settings_file.exists():
            save_json(settings_file, canonical(key))

    def step_dir(self, step: str) -> Path:
        return self.path / step

    def done(self, step: str) -> bool:
        return (self.path / step / "metrics.json").exists()

    def write_step(self, step: str, metrics: dict[str, Any],
                   tensors: dict[str, dict[str, torch.Tensor]] | None = None) -> None:
        """Write ``metrics.json`` and ``<name>.pt`` files for ``step`` all at once."""
        final = self.path / step
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp"))
        try:
            for name, t in (tensors or {}).items():
                torch.save({k: v.detach().cpu() for k, v in t.items()}, tmp / f"{name}.pt")
            if self.on_step_written:
                self.on_step_written("tensors", step)
            with open(tmp / "metrics.json", "w") as fh:
                json.dump(metrics, fh, indent=1, sort_keys=True)
            if final.exists():          # a half-deleted leftover; finished steps are skipped
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        if self.on_step_written:
            self.on_step_written("stored", step)

    def metrics(self, step: str) -> dict[str, Any]:
        return load_json(self.path / step / "metrics.json")

    def tensors(self, step: str, name: str) -> dict[str, torch.Tensor]:
        return load_tensors(self.path / step / f"{name}.pt")

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
