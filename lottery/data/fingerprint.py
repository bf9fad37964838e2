"""A fingerprint of the data a run actually reads, so that results are keyed by the data.

A user's dataset is a list of paths: the same paths can hold other reviews tomorrow. Run
directories are therefore keyed by a hash of the *content* of every file the domains
read (:func:`data_fingerprint`), not by the paths, and :func:`run_data_key` is what a
run key stores about the data: for a JSON spec, the formats and file contents of the
domains, never the spec's name or where it and the data lie (a renamed spec or a moved
data folder reuses the runs).

Hashing a multi-GB file on every command would be slow, so each file's digest is cached
in ``<cache>/data-fingerprints.json`` under its path, with the file's size, modification
time, inode and status-change time (``st_ctime_ns``). All four must match to reuse the
digest. Size and mtime alone miss an edit that keeps both (``cp -p``, ``rsync -a``,
``touch -r`` set the mtime back); the ctime cannot be set by users and changes on every
write, rename, ``chmod`` or ``touch``, and a file replaced by another (renamed over it)
has another inode. A file changed less than :data:`RACY_NS` before it is hashed is not
cached: timestamps advance in clock ticks, so an edit in the same tick (or one still
being written) would leave every recorded value unchanged. An unchanged file costs a
``stat``. A missing file, a directory or an empty file is an error naming it, even when
old results exist.

Downloaded datasets (FDU-MTL, Blitzer) are pinned by the SHA-256 list shipped with the
code and verified on every read, so their content is fixed by the dataset name: they
need no fingerprint (and their run keys stay what they were).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from lottery import config
from lottery.data.errors import DataUnavailableError
from lottery.data.registry import DatasetSpec, get_dataset, resolve_domain

CACHE_FILE = "data-fingerprints.json"
#: A file whose mtime or ctime is this recent when it is hashed is not cached (2 s: more
#: than any file system's timestamp tick and a writer's last flush).
RACY_NS = 2_000_000_000
#: The ``data.dataset`` a run key stores for every JSON spec (:func:`run_data_key`).
USER_SPEC = "user-spec"


def _cache_path() -> Path:
    return config.cache_dir() / CACHE_FILE


def _load_cache() -> dict[str, dict]:
    try:
        return json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict[str, dict]) -> None:
    """Atomic write; a read-only cache folder only costs the speed-up, never the result."""
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def data_file_stat(path: str | Path) -> os.stat_result:
    """``stat`` of a data file a spec lists; a missing file, a directory or an empty file
    is a :class:`DataUnavailableError` that names it."""
    try:
        st = Path(path).stat()
    except OSError:
        raise DataUnavailableError(f"{path}: data file not found (it is listed in the dataset "
                                   f"spec); restore it or remove it from the spec") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataUnavailableError(f"{path}: is a directory, expected a review file (it is "
                                   f"listed in the dataset spec); list the files in it instead")
    if st.st_size == 0:
        raise DataUnavailableError(f"{path}: is empty (0 bytes), expected a review file (it is "
                                   f"listed in the dataset spec); fill it or remove it from the "
                                   f"spec")
    return st


def _stamp(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino,
            "ctime_ns": st.st_ctime_ns}


def file_digest(path: str | Path, cache: dict[str, dict] | None = None) -> str:
    """BLAKE2b-128 of the file's bytes, reused while its size, mtime, inode and ctime are
    unchanged (see the module docstring)."""
    p = Path(path).expanduser().resolve()
    now = time.time_ns()
    st = data_file_stat(p)
    stamp = _stamp(st)
    entry = (cache or {}).get(str(p))
    if entry and all(entry.get(k) == v for k, v in stamp.items()):
        return entry["digest"]
    h = hashlib.blake2b(digest_size=16)
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if cache is not None:
        if now - max(st.st_mtime_ns, st.st_ctime_ns) >= RACY_NS:
            cache[str(p)] = {**stamp, "digest": digest}
        else:
            cache.pop(str(p), None)
    return digest


def _domain_digests(data: config.DataSettings, spec: DatasetSpec) -> list[tuple[str, list[str]]]:
    """Per domain of ``data`` (canonical, sorted), the digests of its files in spec order."""
    cache = _load_cache()
    before = dict(cache)
    domains = sorted(resolve_domain(d, data.dataset) for d in data.domains)
    digests = [(d, [file_digest(p, cache) for p in spec.files[d]]) for d in domains]
    if cache != before:
        _save_cache(cache)
    return digests


def data_fingerprint(data: config.DataSettings) -> str | None:
    """Hash of every file that ``data.domains`` read (None for checksum-pinned datasets).

    Covers all domains of ``data``, not only the run's own: the shared vocabulary is
    trained on all of them, so any of their files can change a run's numbers.
    """
    spec = get_dataset(data.dataset)
    if spec.downloadable:
        return None
    h = hashlib.blake2b(digest_size=16)
    for domain, digests in _domain_digests(data, spec):
        for digest in digests:
            h.update(f"{domain}\0{digest}\0".encode())
    return h.hexdigest()


def run_data_key(data: config.DataSettings) -> dict[str, Any]:
    """What a run key stores about the data: everything that changes the numbers, nothing
    that only says where the files are.

    A checksum-pinned dataset: ``{"data": data}`` (``data`` itself: run keys unchanged).
    A user dataset: ``data`` with ``dataset`` replaced by ``"user-spec"``, ``data_spec``
    (per domain of ``data.domains``, canonical and sorted: its format and its files'
    content digests in spec order) and ``data_files`` (:func:`data_fingerprint`). The
    spec's file name and location and the data folder's location are not part of it.
    """
    spec = get_dataset(data.dataset)
    if spec.downloadable:
        return {"data": data}
    described = {d: {"format": spec.format_of(d), "files": digests}
                 for d, digests in _domain_digests(data, spec)}
    return {"data": dataclasses.replace(data, dataset=USER_SPEC), "data_spec": described,
            "data_files": data_fingerprint(data)}
