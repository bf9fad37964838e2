"""Dataset registry: which files hold which domain, in which format, from where.

A :class:`DatasetSpec` maps each canonical domain name to a list of files. Files of a
*downloadable* dataset (``fdu-mtl``, ``blitzer``) are paths relative to the data root
(``<cache>/data`` or ``$LOTTERY_DATA_MIRROR``) and are checked against a shipped
sha256 file before use; files of a user dataset are plain paths, used as they are.

User data, two ways:

- in Python: ``register_dataset("mine", "mcauley2014", {"books": ["/data/Books_5.json.gz"]})``
- from the command line: ``--set data.dataset=/path/to/mine.json`` where the JSON file
  is ``{"format": "mcauley2014", "domains": {"books": ["Books_5.json.gz"]}}`` (relative
  paths are relative to the JSON file).
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from lottery import config
from lottery.data.errors import DataSettingsError, UnknownDomainError
from lottery.data.readers import READERS

FDU_MTL_DOMAINS: tuple[str, ...] = (
    "apparel", "baby", "books", "camera_photo", "dvd", "electronics",
    "health_personal_care", "imdb", "kitchen_housewares", "magazines", "MR", "music",
    "software", "sports_outdoors", "toys_games", "video",
)

FDU_MTL_URL = ("https://github.com/FrankWork/fudan_mtl_reviews/raw/"
               "3cb081d07167a2d97bfab2cf950c52acae3b0c2e/data/fudan-mtl-dataset.tar.gz")
BLITZER_URL = "https://www.cs.jhu.edu/~mdredze/datasets/sentiment/domain_sentiment_data.tar.gz"

# The paper's display names (Fig. 1 uses their initials): canonical -> paper name.
_PAPER_NAMES: dict[str, str] = {v: k for k, v in config.PAPER_DOMAINS.items()}


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its format, and per canonical domain the files to pool.

    ``root`` is the folder (under the data root) that a download fills; for a user
    dataset it is None and ``files`` holds ready-to-use paths.
    """

    name: str
    format: str
    files: dict[str, tuple[str, ...]]
    root: str | None = None
    url: str | None = None
    checksums: str | None = None  # resource name of the shipped sha256 file
    aliases: dict[str, str] = field(default_factory=dict)  # lower-case alias -> canonical
    formats: dict[str, str] = field(default_factory=dict)  # per-domain format (else ``format``)
    names: dict[str, str] = field(default_factory=dict)  # per-domain display name
    provenance: str = ""  # where the reviews come from (the data chapter prints it)
    licence: str = ""

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.files)

    def format_of(self, domain: str) -> str:
        return self.formats.get(domain, self.format)

    def display_name(self, domain: str) -> str:
        """The spec's name for a domain; FDU-MTL and Blitzer use the paper's names."""
        if domain in self.names:
            return self.names[domain]
        return _PAPER_NAMES.get(domain, domain) if self.downloadable else domain

    @property
    def downloadable(self) -> bool:
        return self.url is not None


def _fdu_mtl() -> DatasetSpec:
    files = {d: (f"fdu-mtl/{d}.task.train", f"fdu-mtl/{d}.task.test") for d in FDU_MTL_DOMAINS}
    return DatasetSpec("fdu-mtl", "fdu-mtl", files, root="fdu-mtl", url=FDU_MTL_URL,
                       checksums="fdu-mtl.sha256",
                       provenance="FDU-MTL (Liu, Qiu, Huang, ACL 2017): 16 review domains, 14 of "
                                  "them Amazon categories from Blitzer et al. (2007); ~2,000 "
                                  "labelled, tokenised, lower-cased reviews per domain",
                       licence="no explicit licence; distributed by its authors for research")


def _blitzer() -> DatasetSpec:
    folders = {"books": "books", "dvd": "dvd", "electronics": "electronics",
               "kitchen_housewares": "kitchen_&_housewares"}
    files = {d: tuple(f"blitzer-acl/sorted_data_acl/{f}/{s}.review"
                      for s in ("positive", "negative")) for d, f in folders.items()}
    return DatasetSpec("blitzer", "blitzer", files, root="blitzer-acl", url=BLITZER_URL,
                       checksums="blitzer.sha256",
                       provenance="Multi-Domain Sentiment Dataset v2 (Blitzer, Dredze, Pereira "
                                  "2007): 1,000 positive and 1,000 negative Amazon reviews per "
                                  "domain with star ratings",
                       licence="no explicit licence; distributed by its authors for research",
                       aliases={"kitchen_&_housewares": "kitchen_housewares"})


#: name -> spec. ``fdu-mtl`` is the default (``config.DataSettings.dataset``).
DATASETS: dict[str, DatasetSpec] = {"fdu-mtl": _fdu_mtl(), "blitzer": _blitzer()}


def register_dataset(name: str, format: str, files: dict[str, list[str | Path]],
                     aliases: dict[str, str] | None = None, formats: dict[str, str] | None = None,
                     names: dict[str, str] | None = None, provenance: str = "",
                     licence: str = "") -> DatasetSpec:
    """Register the user's own files under ``name`` (see :func:`make_spec`)."""
    spec = make_spec(name, format, files, aliases, formats, names, provenance, licence)
    DATASETS[name] = spec
    return spec


#: JSON specs read so far, by (resolved path, size, mtime, ctime): an edited spec is read
#: again; specs are not registered (``lottery datasets`` lists only registered ones).
_JSON_SPECS: dict[tuple[str, int, int, int], DatasetSpec] = {}


def make_spec(name: str, format: str, files: dict[str, list[str | Path]],
              aliases: dict[str, str] | None = None, formats: dict[str, str] | None = None,
              names: dict[str, str] | None = None, provenance: str = "",
              licence: str = "") -> DatasetSpec:
    """A spec of the user's own files (any format in ``READERS``), checked.

    Paths are used as given (no download, no checksum). Domain names are free; the
    paper names (Books, Movies, ...) resolve to them when they match the FDU-MTL names.
    ``formats`` overrides ``format`` per domain; ``names`` gives display names.
    """
    for where, fmt in [("format", format)] + [(f"domains.{d}.format", f)
                                              for d, f in (formats or {}).items()]:
        if fmt not in READERS:
            raise DataSettingsError(f"dataset {name!r}: {where}: unknown review format {fmt!r}; "
                                    f"choose one of {sorted(READERS)}")
    if not files:
        raise DataSettingsError(f"dataset {name!r}: 'domains' must map at least one domain to "
                                f"a list of files")
    for d, paths in files.items():
        if isinstance(paths, (str, Path)) or not paths:
            raise DataSettingsError(f"dataset {name!r}: domains.{d}: expected a non-empty list "
                                    f"of file paths, got {paths!r}")
    spec = DatasetSpec(name, format,
                       {d: tuple(str(Path(p).expanduser()) for p in paths)
                        for d, paths in files.items()},
                       aliases={k.lower(): v for k, v in (aliases or {}).items()},
                       formats=dict(formats or {}), names=dict(names or {}),
                       provenance=provenance, licence=licence)
    return spec


#: The JSON dataset spec (README "Your own reviews"): top-level ``format`` (the default
#: for every domain), ``domains`` mapping a name to a list of files or to
#: ``{"files": [...], "format": ..., "name": ...}``, optional ``aliases``, ``provenance``
#: and ``licence``. Relative paths are relative to the JSON file.
SPEC_KEYS = ("format", "domains", "aliases", "provenance", "licence")
DOMAIN_KEYS = ("files", "format", "name")


class _Object(dict):
    """A parsed JSON object that remembers the keys given more than once (and how often):
    ``json`` itself silently keeps the last value."""

    def __init__(self, pairs: list[tuple[str, object]]):
        super().__init__(pairs)
        self.repeated = [(k, n) for k, n in Counter(k for k, _ in pairs).items() if n > 1]


def _repeated_key(value: object, where: str = "") -> tuple[str, str, int] | None:
    """(where, key, count) of the first key that an object of the parsed spec repeats;
    ``where`` is the dotted path of that object ("" at the top level)."""
    if isinstance(value, _Object) and value.repeated:
        return (where, *value.repeated[0])
    if isinstance(value, dict):
        children = [(f"{where}.{k}" if where else k, v) for k, v in value.items()]
    elif isinstance(value, list):
        children = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for child_where, child in children:
        found = _repeated_key(child, child_where)
        if found:
            return found
    return None


def _load_spec(path: Path) -> object:
    """The parsed spec; unreadable, invalid JSON or a repeated key: one-line error."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_Object)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataSettingsError(f"{path}: cannot read the dataset spec ({exc})") from None
    except ValueError as exc:
        raise DataSettingsError(f"{path}: not valid JSON ({exc})") from None
    repeated = _repeated_key(raw)
    if repeated:
        where, key, count = repeated
        times = "twice" if count == 2 else f"{count} times"
        place = f'in "{where}"' if where else "at the top level"
        raise DataSettingsError(f"{path}: key {key!r} appears {times} {place} (JSON would keep "
                                f"only the last); give each key once")
    return raw


def _spec_from_json(path: Path) -> DatasetSpec:
    raw = _load_spec(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("domains"), dict):
        raise DataSettingsError(f'{path}: a dataset spec is a JSON object with "domains": '
                                f'{{name: [files]}} (see the README, "Your own reviews")')
    unknown = [k for k in raw if k not in SPEC_KEYS]
    if unknown:
        raise DataSettingsError(f"{path}: unknown key {unknown[0]!r}; a spec has {list(SPEC_KEYS)}")
    files, formats, names = {}, {}, {}
    for d, entry in raw["domains"].items():
        if isinstance(entry, dict):
            bad = [k for k in entry if k not in DOMAIN_KEYS]
            if bad:
                raise DataSettingsError(f"{path}: domains.{d}: unknown key {bad[0]!r}; a domain "
                                        f"has {list(DOMAIN_KEYS)}")
            if "format" in entry:
                formats[d] = entry["format"]
            if "name" in entry:
                names[d] = str(entry["name"])
            entry = entry.get("files")
        if isinstance(entry, str) or not isinstance(entry, list) or not entry:
            raise DataSettingsError(f"{path}: domains.{d}: expected a non-empty list of files, "
                                    f"got {entry!r}")
        bad = [p for p in entry if not isinstance(p, str) or not p.strip()]
        if bad:
            raise DataSettingsError(f"{path}: domains.{d}: every file must be a path (a string), "
                                    f"got {bad[0]!r}")
        files[d] = [p if Path(p).is_absolute() else str(path.parent / p) for p in entry]
    fmt = raw.get("format")
    if fmt is None:
        if len(formats) != len(files):
            missing = [d for d in files if d not in formats][0]
            raise DataSettingsError(f"{path}: no format for domain {missing!r}: give a top-level "
                                    f'"format" or one per domain (one of {sorted(READERS)})')
        fmt = next(iter(formats.values()))
    return make_spec(str(path), fmt, files, raw.get("aliases"), formats, names,
                            str(raw.get("provenance", "")), str(raw.get("licence", "")))


def get_dataset(name: str) -> DatasetSpec:
    """The registered spec, or one read from a ``*.json`` spec file path."""
    if name in DATASETS:
        return DATASETS[name]
    if name.endswith(".json"):
        path = Path(name).expanduser()
        if path.is_dir():
            raise DataSettingsError(f"{name}: is a directory, expected a JSON dataset spec file")
        if not path.is_file():
            raise DataSettingsError(f"{name}: dataset spec file does not exist")
        st = path.stat()
        key = (f"{name}\0{path.resolve()}", st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key not in _JSON_SPECS:
            _JSON_SPECS[key] = _spec_from_json(path)
        return _JSON_SPECS[key]
    if Path(name).expanduser().is_dir():
        raise DataSettingsError(f"{name}: is a directory, expected a registered dataset "
                                f"{sorted(DATASETS)} or a JSON dataset spec file in it")
    raise UnknownDomainError(f"unknown dataset {name!r}; registered: {sorted(DATASETS)} "
                             f"(or give the path of a JSON dataset spec)")


def resolve_domain(name: str, dataset: str = "fdu-mtl") -> str:
    """Canonical domain name for ``name``: exact, case-insensitive, alias, paper name
    (Books, Electronics, Movies, CDs, Home) or its initial as in Fig. 1 (B, E, M, C, H).
    Unknown -> ValueError listing valid names. The one place domain names are resolved."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownDomainError(f"domain names must be non-empty strings, got {name!r}")
    spec = get_dataset(dataset)
    if name in spec.files:
        return name
    lowered = name.strip().lower()
    initials = {paper[0].lower(): domain for paper, domain in config.PAPER_DOMAINS.items()}
    if len(lowered) == 1 and initials.get(lowered) in spec.files:
        return initials[lowered]
    for domain in spec.files:
        if domain.lower() == lowered:
            return domain
    if lowered in spec.aliases:
        return spec.aliases[lowered]
    for paper, domain in config.PAPER_DOMAINS.items():
        if paper.lower() == lowered and domain in spec.files:
            return domain
    valid = sorted(spec.files, key=str.lower)
    papers = [p for p, d in config.PAPER_DOMAINS.items() if d in spec.files]
    raise UnknownDomainError(f"unknown domain {name!r} for dataset {spec.name!r}; valid: "
                             f"{valid}" + (f" or paper names {papers}" if papers else ""))


def paper_name(domain: str) -> str:
    """Display name in the paper's terms ('dvd' -> 'Movies'); other domains unchanged.
    For a user dataset chosen with :func:`use_display_names`, its own names."""
    if _ACTIVE_NAMES is not None:
        return _ACTIVE_NAMES.get(domain, domain)
    return _PAPER_NAMES.get(domain, domain)


#: The one deliberate process-wide display choice: the names :func:`paper_name` writes,
#: set by :func:`use_display_names` (None: the paper's names, for FDU-MTL and Blitzer).
#: A chapter's kernel or a command shows one dataset, and every label, table and chart
#: of it must name domains alike without passing the dataset around. It is text only:
#: no run, key, file or number depends on it. Code that shows another dataset for a
#: while (a test, say) uses :func:`display_names`, which puts the previous choice back.
_ACTIVE_NAMES: dict[str, str] | None = None


def use_display_names(dataset: str) -> None:
    """Display domains the way ``dataset`` names them (the paper's names for FDU-MTL and
    Blitzer; a user spec's own ``name`` fields, else the domain itself). Chapters and
    commands call this once for the dataset they show (see :data:`_ACTIVE_NAMES`)."""
    global _ACTIVE_NAMES
    spec = get_dataset(dataset)
    _ACTIVE_NAMES = None if spec.downloadable else {d: spec.display_name(d) for d in spec.domains}


@contextmanager
def display_names(dataset: str) -> Iterator[None]:
    """:func:`use_display_names` for the ``with`` block only: the previous choice is put
    back on leaving it, also on an error."""
    global _ACTIVE_NAMES
    previous = _ACTIVE_NAMES
    try:
        use_display_names(dataset)
        yield
    finally:
        _ACTIVE_NAMES = previous
