"""A fingerprint of the data a run actually reads, so that results are keyed by the data.

A user's dataset is a list of paths: the same paths can hold other reviews tomorrow. Run
directories are therefore keyed by a hash of the *content* of every file the domains
read (:func:`data_fingerprint`), not by the paths. Hashing a multi-GB file on every
command would be slow, so each file's digest is cached by (path, size, modification
time) in ``<cache>/data-fingerprints.json``: a file that changes gets a new digest, an
unchanged one costs a ``stat``. A missing file is an error, even when old results exist.

Downloaded datasets (FDU-MTL, Blitzer) are pinned by the SHA-256 list shipped with the
code and verified on every read, so their content is fixed by the dataset name: they
need no fingerprint (and their run keys stay what they were).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from lottery import config
from lottery.data.errors import DataUnavailableError
from lottery.data.registry import get_dataset, resolve_domain

CACHE_FILE = "data-fingerprints.json"


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


def file_digest(path: str | Path, cache: dict[str, dict] | None = None) -> str:
    """BLAKE2b-128 of the file's bytes, reused while its size and mtime are unchanged."""
    p = Path(path).expanduser().resolve()
    try:
        st = p.stat()
    except OSError:
        raise DataUnavailableError(f"{p}: data file not found (it is listed in the dataset "
                                   f"spec); restore it or remove it from the spec") from None
    entry = (cache or {}).get(str(p))
    if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        return entry["digest"]
    h = hashlib.blake2b(digest_size=16)
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if cache is not None:
        cache[str(p)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "digest": digest}
    return digest


def data_fingerprint(data: config.DataSettings) -> str | None:
    """Hash of every file that ``data.domains`` read (None for checksum-pinned datasets).

    Covers all domains of ``data``, not only the run's own: the shared vocabulary is
    trained on all of them, so any of their files can change a run's numbers.
    """
    spec = get_dataset(data.dataset)
    if spec.downloadable:
        return None
    cache = _load_cache()
    before = dict(cache)
    h = hashlib.blake2b(digest_size=16)
    for domain in sorted(resolve_domain(d, data.dataset) for d in data.domains):
        for path in spec.files[domain]:
            h.update(f"{domain}\0{file_digest(path, cache)}\0".encode())
    if cache != before:
        _save_cache(cache)
    return h.hexdigest()
