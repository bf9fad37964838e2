"""Durable files: written whole or not at all, flushed to disk before they count, and
read back with an error that names the file.

- :func:`atomic_write` writes into a temporary sibling, ``fsync``s it, renames it over
  the target and ``fsync``s the folder, so a crash or power loss leaves the old file or
  the new one, never a torn one.
- :func:`write_once` is the same for files that must not be replaced once they exist
  (θ0 of a run): the first writer wins, a second one is discarded.
- A full disk (or quota, or file-size limit) raises :class:`StoreWriteError` naming the
  file; nothing half-written is left behind. torch reports it as a ``RuntimeError``
  ("unexpected pos", "file write failed"), Python as ``OSError`` 28/27/122.
- :func:`load_tensors` / :func:`load_json` raise :class:`CorruptFile` naming the file when
  it is empty, truncated or not what it should be.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

#: errno values that mean "no room to write": disk full, file too large, quota exceeded.
FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", 122)}
#: How torch's writer says the same (its C++ stream writer raises RuntimeError).
TORCH_FULL = ("unexpected pos", "file write failed", "PytorchStreamWriter failed")


class StoreWriteError(OSError):
    """The run store could not be written (disk full, quota, file-size limit)."""


class CorruptFile(ValueError):
    """A stored file exists but cannot be read back (empty, truncated, not the format)."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: cannot be read ({reason})")
        self.path = Path(path)
        self.reason = reason


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (quota, size limit) is full."""
    if isinstance(exc, OSError):
        return exc.errno in FULL
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in TORCH_FULL)


def full_error(path: Path | str, exc: BaseException) -> StoreWriteError:
    free = _free_bytes(Path(path))
    where = f"; {free / 2**20:.0f} MiB free there" if free is not None else ""
    return StoreWriteError(errno.ENOSPC, f"no space left to write it (disk full, quota or file-size "
                                         f"limit{where}); free some space or set LOTTERY_CACHE_DIR "
                                         f"to a larger disk", str(path))


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def fsync_file(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path | str) -> None:
    """Make a rename inside ``path`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_sibling(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return tmp


def _write_temp(path: Path, write: Callable[[str], None]) -> str:
    """``write`` into a synced temporary sibling of ``path``; a full disk becomes
    :class:`StoreWriteError` and the temporary file is removed."""
    tmp = _temp_sibling(path)
    try:
        write(tmp)
        fsync_file(tmp)
    except BaseException as exc:
        os.unlink(tmp)
        if is_full(exc):
            raise full_error(path, exc) from None
        raise
    return tmp


def atomic_write(path: Path | str, write: Callable[[str], None]) -> None:
    """Write ``path`` through ``write(tmp_name)``: all of it, or nothing."""
    path = Path(path)
    tmp = _write_temp(path, write)
    try:
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(path.parent)


def write_once(path: Path | str, write: Callable[[str], None]) -> bool:
    """Like :func:`atomic_write`, but an existing ``path`` is kept (first writer wins).
    Returns whether this call wrote it."""
    path = Path(path)
    if path.exists():
        return False
    tmp = _write_temp(path, write)
    try:
        os.link(tmp, path)          # fails if another writer got there first
        written = True
    except FileExistsError:
        written = False
    except OSError:                 # a file system without hard links: rename instead
        written = not path.exists()
        if written:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return written


def torch_writer(tensors: dict[str, torch.Tensor]) -> Callable[[str], None]:
    state = {k: v.detach().cpu() for k, v in tensors.items()}
    return lambda tmp: torch.save(state, tmp)


def json_writer(obj: Any) -> Callable[[str], None]:
    def write(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
    return write


def save_tensors(path: Path | str, tensors: dict[str, torch.Tensor]) -> None:
    atomic_write(path, torch_writer(tensors))


def save_json(path: Path | str, obj: Any) -> None:
    atomic_write(path, json_writer(obj))


def load_tensors(path: Path | str) -> dict[str, torch.Tensor]:
    """A stored ``{name: tensor}`` file; :class:`CorruptFile` names it if it is unreadable."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CorruptFile(path, "the file is empty")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:         # torch raises many kinds for a torn file
        raise CorruptFile(path, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'truncated'}") from None
    if not isinstance(state, dict):
        raise CorruptFile(path, f"expected a dict of tensors, found {type(state).__name__}")
    return state


def load_json(path: Path | str) -> Any:
    """A stored JSON file; :class:`CorruptFile` names it if it is empty or torn."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptFile(path, f"not valid JSON: {exc}") from None
