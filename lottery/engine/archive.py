"""A filled run store as one checksummed archive: export it, import it elsewhere.

A teacher builds the book once and hands the results out; students import them and
build the book in a minute, retraining only what they change. The archive
(``.tar.gz``) holds, relative to the cache:

- ``runs/<run>/``: ``settings.json``, ``theta0.pt`` (and ``theta_k<k>.pt``) and every
  *finished* step (a folder with ``metrics.json``: ``metrics.json``, ``mask.pt``, and
  ``weights.pt`` only when exported with weights). Locks, steps set aside
  (``.corrupt/``) and unfinished temporary folders are left out.
- ``vocab/``: the shared SentencePiece models and their index, so the vocabulary is not
  trained again; ``encoded/``: the encoded splits (both keyed by content).
- ``MANIFEST.json`` (the last member): the format, the lottery version, whether weights
  are in it, and the SHA-256 and size of every other member.

:func:`import_store` reads the archive twice. The first pass writes nothing: every
member must be a plain file with a safe relative path under ``runs/``, ``vocab/`` or
``encoded/`` (no ``..``, no absolute path, no link or device), listed once in the
manifest with its checksum. The second pass extracts into a hidden staging folder in the
run store, checking every checksum again, and only then publishes: a finished step
that the store already has is kept (the run store's rule: the first finished step
wins, :meth:`lottery.engine.store.RunDir.write_step`), others are renamed into place
whole; run files and cache files are written once and never replace an existing one.
A stored step identical to the archive's (same metrics and mask) gets the files it
lacks, so importing an export with weights after one without adds the weights.

**Weights.** The run store keeps ``weights.pt`` only for the latest round of each
strategy, and a chain needs it to prune its next round. Without weights (the default)
an imported store serves everything that reads results (the whole book, ``lottery
claims``) and any run that trains new run folders (other seeds, domains, settings); a
chain cannot be extended to more rounds (``-p rounds 8``): that stops naming the missing
``weights.pt``. Exported with weights, imported chains resume and extend as if trained
here.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Iterable, Iterator

from lottery import __version__
from lottery.engine.durable import atomic_write, fsync_dir, write_once
from lottery.engine.store import RunDir, RunStore

FORMAT = "lottery-run-store"
FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
#: Top-level folders of an archive: the run store and the cache's vocabulary and encoded data.
ROOTS = ("runs", "vocab", "encoded")
WEIGHTS = "weights.pt"
CHUNK = 1 << 20


class ArchiveError(ValueError):
    """An archive that cannot be imported (the message is one line; nothing was written)."""


@dataclass
class Counts:
    """What an export or import did."""

    runs: int = 0
    steps: int = 0            # finished steps exported / added to the store
    steps_kept: int = 0       # import: steps the store had already (kept)
    completed: int = 0        # import: files (weights) added to identical steps the store had
    run_files: int = 0        # settings.json, theta0.pt, ... exported / added
    cache_files: int = 0      # vocab/ and encoded/ files exported / added
    kept_files: int = 0       # import: run and cache files the store had already
    bytes: int = 0
    with_weights: bool = False
    version: str = __version__
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- export
def _run_files(run: Path, with_weights: bool) -> Iterator[Path]:
    """A run folder's files to export: top-level files and finished steps' files."""
    for p in sorted(run.iterdir()):
        if p.name.startswith(".") or p.is_symlink():
            continue
        if p.is_file():
            yield p
    for metrics in sorted(run.rglob("metrics.json")):
        step = metrics.parent
        rel = step.relative_to(run).parts
        if any(part.startswith(".") for part in rel) or step.is_symlink():
            continue
        for f in sorted(step.iterdir()):
            if f.is_file() and not f.is_symlink() and not f.name.startswith(".") \
                    and (with_weights or f.name != WEIGHTS):
                yield f


def _cache_files(cache: Path) -> Iterator[tuple[str, Path]]:
    for root in ROOTS[1:]:
        folder = cache / root
        if folder.is_dir():
            for f in sorted(folder.rglob("*")):
                rel = f.relative_to(cache)
                if f.is_file() and not f.is_symlink() and not any(p.startswith(".") for p in rel.parts):
                    yield rel.as_posix(), f


class _Hashing(io.RawIOBase):
    """A file read by tarfile, hashed on the way (so the checksum is of what was stored)."""

    def __init__(self, fh: IO[bytes]):
        self.fh, self.sha = fh, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.sha.update(data)
        return data


def _add(tar: tarfile.TarFile, name: str, path: Path, files: dict[str, dict]) -> int:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
    with open(path, "rb") as fh:
        hashing = _Hashing(fh)
        tar.addfile(info, hashing)
    files[name] = {"sha256": hashing.sha.hexdigest(), "size": info.size}
    return info.size


def list_runs(store: RunStore) -> list[Path]:
    """Every run folder of the store (a folder holding ``settings.json``)."""
    root = store.root
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and (p / "settings.json").is_file())


def export_store(archive: Path | str, store: RunStore, cache: Path, runs: Iterable[Path] | None = None,
                 with_weights: bool = False) -> Counts:
    """Write ``archive`` (.tar.gz, atomically) with ``runs`` (default: every run of
    ``store``), the cache's ``vocab/`` and ``encoded/`` and the manifest."""
    runs = list_runs(store) if runs is None else sorted({Path(r) for r in runs if (Path(r) / "settings.json").is_file()})
    counts = Counts(with_weights=with_weights)
    files: dict[str, dict] = {}

    def write(tmp: str) -> None:
        with tarfile.open(tmp, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
            for run in runs:
                counts.runs += 1
                for f in _run_files(run, with_weights):
                    rel = f.relative_to(run)
                    counts.bytes += _add(tar, f"runs/{run.name}/{rel.as_posix()}", f, files)
                    if len(rel.parts) == 1:
                        counts.run_files += 1
                    elif f.name == "metrics.json":
                        counts.steps += 1
            for name, f in _cache_files(cache):
                counts.bytes += _add(tar, name, f, files)
                counts.cache_files += 1
            manifest = json.dumps({
                "format": FORMAT, "format_version": FORMAT_VERSION, "lottery": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "with_weights": with_weights, "runs": counts.runs, "steps": counts.steps,
                "files": files}, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode = len(manifest), 0o644
            tar.addfile(info, io.BytesIO(manifest))

    atomic_write(Path(archive), write)
    os.chmod(archive, 0o644)   # to be handed out (the temporary file was private)
    return counts


# ---------------------------------------------------------------------------- checks
def _safe_name(name: str) -> PurePosixPath:
    """A member's path, refused unless it is relative, plain and under :data:`ROOTS`."""
    path = PurePosixPath(name)
    if ("\\" in name or "\x00" in name or path.is_absolute() or not path.parts
            or any(p in ("..", ".", "") or p.startswith(".") for p in path.parts)):
        raise ArchiveError(f"unsafe path {name!r} in the archive")
    if path.parts[0] not in ROOTS or len(path.parts) < 2 or (path.parts[0] == "runs" and len(path.parts) < 3):
        raise ArchiveError(f"unexpected member {name!r} in the archive (only {', '.join(ROOTS)} and "
                           f"{MANIFEST})")
    return path


def _members(tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, PurePosixPath | None]]:
    """Every member with its checked path (None for the manifest); refuses links,
    devices and a name given twice."""
    seen: set[str] = set()
    for m in tar:
        if m.isdir():                                # folders are made from the files' paths
            parts = PurePosixPath(m.name).parts
            if PurePosixPath(m.name).is_absolute() or ".." in parts:
                raise ArchiveError(f"unsafe path {m.name!r} in the archive")
            continue
        if not m.isfile():
            raise ArchiveError(f"{m.name!r} in the archive is not a plain file (a link or device)")
        if m.name in seen:
            raise ArchiveError(f"{m.name!r} is in the archive twice")
        seen.add(m.name)
        yield m, (None if m.name == MANIFEST else _safe_name(m.name))


def _digest(fh: IO[bytes], out: IO[bytes] | None = None) -> str:
    sha = hashlib.sha256()
    for chunk in iter(lambda: fh.read(CHUNK), b""):
        sha.update(chunk)
        if out is not None:
            out.write(chunk)
    return sha.hexdigest()


def _check_manifest(manifest: dict | None, found: dict[str, str]) -> dict:
    if manifest is None:
        raise ArchiveError(f"no {MANIFEST} in the archive: not a `lottery store export` archive")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ArchiveError(f"not a {FORMAT} archive of format version {FORMAT_VERSION}")
    listed = manifest.get("files") or {}
    for name in sorted(set(listed) | set(found)):
        if name not in found:
            raise ArchiveError(f"{name} is in the manifest but not in the archive")
        if name not in listed:
            raise ArchiveError(f"{name} is in the archive but not in the manifest")
        if found[name] != listed[name].get("sha256"):
            raise ArchiveError(f"checksum mismatch for {name} (SHA-256 {found[name][:12]}…, the "
                               f"manifest says {str(listed[name].get('sha256'))[:12]}…)")
    return manifest


def verify(archive: Path | str) -> dict:
    """Check every member and checksum of ``archive`` without writing anything; returns
    the manifest. Raises :class:`ArchiveError` (one line) on the first problem."""
    found: dict[str, str] = {}
    manifest = None
    try:
        with tarfile.open(archive, "r:*") as tar:
            for m, path in _members(tar):
                fh = tar.extractfile(m)
                if path is None:
                    try:
                        manifest = json.loads(fh.read())
                    except ValueError as exc:
                        raise ArchiveError(f"{MANIFEST} is not valid JSON ({exc})") from None
                else:
                    found[m.name] = _digest(fh)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise ArchiveError(f"no such archive: {archive}") from None
        raise ArchiveError(f"not a readable .tar.gz archive ({type(exc).__name__}: {exc})") from None
    return _check_manifest(manifest, found)


# ---------------------------------------------------------------------------- import
def _stage(archive: Path | str, manifest: dict, staging: Path) -> None:
    """Extract every member under ``staging``, checking each checksum again."""
    listed = manifest["files"]
    with tarfile.open(archive, "r:*") as tar:
        for m, path in _members(tar):
            if path is None:
                continue
            target = staging.joinpath(*path.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                digest = _digest(tar.extractfile(m), out)
                out.flush()
                os.fsync(out.fileno())
            if digest != listed.get(m.name, {}).get("sha256"):
                raise ArchiveError(f"checksum mismatch for {m.name} (the archive changed while "
                                   f"it was imported)")


def _copy_once(src: Path, dest: Path) -> bool:
    return write_once(dest, lambda tmp: shutil.copyfile(src, tmp))


def _file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return _digest(fh)


def _complete_step(staged: Path, stored: Path) -> int:
    """A step the store has already is kept; if it is the very same step (every file both
    have is byte-identical), the files it lacks (``weights.pt`` dropped by an earlier
    import without weights) are added, each written once. Returns how many."""
    theirs = {f.name: f for f in staged.iterdir() if f.is_file()}
    ours = {f.name for f in stored.iterdir() if f.is_file()}
    missing = sorted(set(theirs) - ours)
    if not missing or any(_file_digest(theirs[n]) != _file_digest(stored / n) for n in ours & set(theirs)):
        return 0
    return sum(_copy_once(theirs[n], stored / n) for n in missing)


def _publish_run(staged: Path, store: RunStore, counts: Counts) -> None:
    """Run files written once, then each finished step renamed into place whole unless
    the store has it already (first finished step wins)."""
    final = store.root / staged.name
    final.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in staged.iterdir() if p.is_file()):
        added = _copy_once(f, final / f.name)
        counts.run_files += added
        counts.kept_files += not added
    run = RunDir(final, {})    # only its steps are published: settings.json was copied above
    for metrics in sorted(staged.rglob("metrics.json")):
        step = metrics.parent.relative_to(staged).as_posix()
        if run.done(step):
            counts.steps_kept += 1
            counts.completed += _complete_step(metrics.parent, final / step)
            continue
        (final / step).parent.mkdir(parents=True, exist_ok=True)
        fsync_dir(metrics.parent)
        # the run store's own publication: renamed whole, a leftover set aside, and a
        # step another writer finished first is kept
        if run._publish(metrics.parent, final / step, step):
            counts.steps += 1
        else:
            counts.steps_kept += 1
    counts.runs += 1


def import_store(archive: Path | str, store: RunStore, cache: Path) -> Counts:
    """Verify ``archive`` completely, then add its runs to ``store`` and its vocabulary
    and encoded data to ``cache``; nothing finished is ever replaced."""
    manifest = verify(archive)
    counts = Counts(with_weights=bool(manifest.get("with_weights")), version=str(manifest.get("lottery")))
    if counts.version != __version__:
        counts.notes.append(f"exported by lottery {counts.version}, imported by {__version__}: "
                            f"runs of another engine version are kept apart by their hashes")
    store.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=store.root, prefix=".import-"))
    try:
        _stage(archive, manifest, staging)
        for name in ROOTS[1:]:
            for f in sorted(p for p in (staging / name).rglob("*") if p.is_file()):
                added = _copy_once(f, cache / f.relative_to(staging))
                counts.cache_files += added
                counts.kept_files += not added
        runs = staging / "runs"
        for run in sorted(runs.iterdir()) if runs.is_dir() else []:
            _publish_run(run, store, counts)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts.bytes = sum(int(f.get("size", 0)) for f in manifest["files"].values())
    return counts
