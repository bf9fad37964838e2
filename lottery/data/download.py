"""Getting the data files: download once, or read a local mirror; always verify.

Files of a downloadable dataset live under the *data root*, ``cache_dir()/data``
(e.g. ``<cache>/data/fdu-mtl/books.task.train``). When ``LOTTERY_DATA_MIRROR`` names
a folder with the same layout (``<mirror>/fdu-mtl/books.task.train``, as in the
shared data folder), files are read from there instead and nothing is downloaded.

Either way each file is checked against the sha256 shipped in the package
(``lottery/data/<dataset>.sha256``) before its first use in a process: a silently
truncated download would otherwise change every number in the book. Any failure
(no network, a missing or corrupted file) is one :class:`DataUnavailableError`
whose message says what to do.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from tqdm import tqdm

from lottery import config
from lottery.data.errors import DataUnavailableError
from lottery.data.fingerprint import data_file_stat
from lottery.data.registry import DatasetSpec

MIRROR_ENV = "LOTTERY_DATA_MIRROR"
_CHUNK = 1 << 20

# (path, size, mtime_ns, inode, ctime_ns) -> sha256 already computed in this process (the
# inode and ctime catch a same-size edit with the mtime set back, as in the fingerprints).
_verified: dict[tuple[str, int, int, int, int], str] = {}


def data_root() -> Path:
    """Where downloads are extracted: ``cache_dir()/data``."""
    return config.cache_dir() / "data"


def mirror_dir() -> Path | None:
    """The folder named by ``LOTTERY_DATA_MIRROR``, if set."""
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser().resolve() if value else None


@lru_cache(maxsize=None)
def load_checksums(resource: str) -> dict[str, str]:
    """``relative path -> sha256`` from a shipped checksum file (``#`` lines are comments)."""
    text = resources.files("lottery.data").joinpath(resource).read_text(encoding="utf-8")
    sums: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            digest, _, rel = line.partition("  ")
            sums[rel.strip()] = digest.strip()
    return sums


def sha256_file(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
    if key not in _verified:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
        _verified[key] = digest.hexdigest()
    return _verified[key]


def ensure_files(spec: DatasetSpec, relpaths: tuple[str, ...] | list[str]) -> list[Path]:
    """Local, verified paths of ``relpaths`` (entries of ``spec.files``).

    User datasets are only checked to be non-empty files. Downloadable ones come from the
    mirror if ``LOTTERY_DATA_MIRROR`` is set, else from the cache, downloading the
    dataset's archive first if any file is missing.
    """
    if not spec.downloadable:
        for p in relpaths:
            data_file_stat(p)  # missing, a directory or empty: an error naming the file
        return [Path(p) for p in relpaths]

    assert spec.checksums is not None
    sums = load_checksums(spec.checksums)
    mirror = mirror_dir()
    if mirror is not None:
        paths = [mirror / rel for rel in relpaths]
        for rel, path in zip(relpaths, paths):
            if not path.is_file():
                raise DataUnavailableError(
                    f"{path} is missing from the data mirror {MIRROR_ENV}={mirror} "
                    f"(expected layout <mirror>/{rel}). Point {MIRROR_ENV} at a complete copy, "
                    f"or unset it to download {spec.name} from {spec.url}.")
            _check(path, sums[rel], f"the mirror copy {path} is corrupted or a different "
                                    f"version; replace it with a good copy or unset "
                                    f"{MIRROR_ENV} to download {spec.name}")
        return paths

    root = data_root()
    paths = [root / rel for rel in relpaths]
    if not all(p.is_file() for p in paths):
        download_dataset(spec)
    for rel, path in zip(relpaths, paths):
        if not path.is_file():
            raise DataUnavailableError(
                f"the {spec.name} archive from {spec.url} has no file for {rel}; "
                f"set {MIRROR_ENV} to a folder holding <mirror>/{rel} instead.")
        _check(path, sums[rel], f"delete {path} (and {_archive_path(spec)}) and run again "
                                f"to download it afresh, or set {MIRROR_ENV}")
    return paths


def _check(path: Path, expected: str, advice: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise DataUnavailableError(f"checksum mismatch for {path}: sha256 {actual[:12]}... "
                                   f"!= expected {expected[:12]}...; {advice}.")


def _archive_path(spec: DatasetSpec) -> Path:
    assert spec.url is not None
    return data_root() / "downloads" / spec.url.rsplit("/", 1)[-1]


def download_dataset(spec: DatasetSpec) -> None:
    """Fetch the archive (if not already there) and extract the files ``spec`` uses."""
    archive = _archive_path(spec)
    if not archive.is_file():
        fetch(spec.url or "", archive)
    _extract(spec, archive)


def fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` (via ``dest.part``, renamed when complete)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urlopen(url, timeout=60) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, disable=None,
                      desc=f"downloading {dest.name}") as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (URLError, OSError, TimeoutError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DataUnavailableError(
            f"could not download {url} ({reason}). Check your internet connection, or set "
            f"{MIRROR_ENV} to a local folder with the same layout (e.g. "
            f"<mirror>/fdu-mtl/books.task.train).") from None
    part.replace(dest)


def _extract(spec: DatasetSpec, archive: Path) -> None:
    """Copy the members that ``spec`` uses to the data root, matched by path suffix.

    Members are streamed out one by one (never ``extractall``), so an archive cannot
    write outside the cache whatever its member names are.
    """
    assert spec.root is not None
    root = data_root()
    wanted = {rel[len(spec.root) + 1:]: rel for rels in spec.files.values() for rel in rels}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if not member.isfile() or "__MACOSX" in member.name:
                    continue
                name = member.name.removeprefix("./")
                for suffix, rel in wanted.items():
                    if name == suffix or name.endswith("/" + suffix):
                        dest = root / rel
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        src = tar.extractfile(member)
                        assert src is not None
                        with src, open(dest, "wb") as out:
                            shutil.copyfileobj(src, out, _CHUNK)
                        break
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataUnavailableError(f"could not read the archive {archive} ({exc}); delete it "
                                   f"and run again, or set {MIRROR_ENV}.") from None
