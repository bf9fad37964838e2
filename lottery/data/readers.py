"""Streaming readers for the review formats the paper's data comes in.

Every reader is a generator over :class:`Review` records, one line (or block) at a time:
paper-scale files are several GB. Gzip is detected by its magic bytes, not the suffix.

Bad input follows ``on_error``: ``"raise"`` raises :class:`DataFormatError` (file, line,
field) at the first malformed record; ``"skip"`` skips and counts them in a
:class:`ReadReport` and issues one ``DataWarning`` per file with the first few problems.
A truncated or corrupt file raises :class:`DataUnavailableError` naming it.

Records that are *valid but unusable* are always skipped and counted, under either
policy: neutral 3-star ratings (the paper discards them) and reviews without text
(the 2018 dump has some).
"""

from __future__ import annotations

import csv
import gzip
import json
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Literal

from lottery.data.errors import DataFormatError, DataUnavailableError, DataWarning

OnError = Literal["skip", "raise"]
_MAX_EXAMPLES = 5
_COUNTS = ("read", "kept", "neutral", "missing_text", "skipped")  # ReadReport's, in order


@dataclass(frozen=True)
class Review:
    """One labelled review. ``rating`` is the star rating (None where the source has
    only a 0/1 label, as FDU-MTL); ``line`` is the 1-based line where it starts."""

    label: int
    text: str
    rating: float | None
    source: str
    line: int


@dataclass
class ReadReport:
    """What a reader kept and why it dropped the rest (one per file or shared)."""

    read: int = 0
    kept: int = 0
    neutral: int = 0  # 3 stars: dropped as in the paper
    missing_text: int = 0  # no or empty text field
    skipped: int = 0  # malformed, skipped under on_error="skip"
    examples: list[str] = field(default_factory=list)  # first few malformed messages

    def add_error(self, error: DataFormatError) -> None:
        self.skipped += 1
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append(str(error))

    def since(self, before: "ReadReport", examples: list[str]) -> "ReadReport":
        """The counts added after ``before`` (an earlier copy), e.g. one file's own."""
        return ReadReport(*(getattr(self, f) - getattr(before, f) for f in _COUNTS), examples)

    def summary(self) -> str:
        text = (f"read {self.read}, kept {self.kept}, neutral (3 stars) {self.neutral}, "
                f"missing text {self.missing_text}, malformed skipped {self.skipped}")
        if self.examples:
            text += "; first problems: " + " | ".join(self.examples)
        return text


# ------------------------------------------------------------------ helpers


def star_to_label(rating: object) -> int | None:
    """Paper §3: 1-2 stars -> 0 (negative), 4-5 -> 1 (positive), 3 -> None (dropped).

    Ratings may come as ``5``, ``5.0`` or ``"5.0"``. Anything that is not a whole number
    from 1 to 5 raises ``ValueError`` (the reader turns it into a DataFormatError).
    """
    if isinstance(rating, bool):
        raise ValueError(f"rating must be a number from 1 to 5, got {rating!r}")
    try:
        value = float(rating)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"rating must be a number from 1 to 5, got {rating!r}") from None
    if value != value or value not in (1.0, 2.0, 3.0, 4.0, 5.0):
        raise ValueError(f"rating must be a whole number from 1 to 5, got {rating!r}")
    if value == 3.0:
        return None
    return 0 if value < 3.0 else 1


def open_text(path: str | Path, newline: str | None = None) -> IO[str]:
    """Open a plain or gzip text file (by magic bytes), UTF-8, bad bytes replaced.

    Some source files hold a few invalid UTF-8 bytes (Blitzer's dvd/positive.review);
    replacing them is better than losing the review.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline=newline)
    return open(path, encoding="utf-8", errors="replace", newline=newline)


class _Emitter:
    """Shared bookkeeping: apply the error policy, count, and build Review records."""

    def __init__(self, path: Path, on_error: OnError, report: ReadReport | None):
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        self.source = str(path)
        self.on_error = on_error
        self.report = report if report is not None else ReadReport()  # may be shared by files
        self._before = replace(self.report, examples=[])
        self._examples: list[str] = []  # this file's first problems

    def error(self, line: int, fld: str, problem: str) -> None:
        err = DataFormatError(self.source, line, fld, problem)
        if self.on_error == "raise":
            raise err
        self.report.add_error(err)
        if len(self._examples) < _MAX_EXAMPLES:
            self._examples.append(str(err))

    def rated(self, line: int, rating: object, text: object,
              rating_field: str, text_field: str) -> Review | None:
        """A Review from a star rating, or None (counted) when it is dropped."""
        self.report.read += 1
        if rating is None:
            self.error(line, rating_field, "missing")
            return None
        try:
            label = star_to_label(rating)
        except ValueError as exc:
            self.error(line, rating_field, str(exc))
            return None
        if label is None:
            self.report.neutral += 1
            return None
        return self._review(line, label, float(rating), text, text_field)  # type: ignore[arg-type]

    def labelled(self, line: int, label: int, text: object, text_field: str) -> Review | None:
        self.report.read += 1
        return self._review(line, label, None, text, text_field)

    def _review(self, line: int, label: int, rating: float | None,
                text: object, text_field: str) -> Review | None:
        if text is None or (isinstance(text, str) and not text.strip()):
            self.report.missing_text += 1
            return None
        if not isinstance(text, str):
            self.error(line, text_field, f"expected a string, got {type(text).__name__}")
            return None
        self.report.kept += 1
        return Review(label=label, text=text, rating=rating, source=self.source, line=line)

    def finish(self) -> None:
        """One ``DataWarning`` with this file's own counts (not the shared report's)."""
        own = self.report.since(self._before, self._examples)
        if own.skipped:
            warnings.warn(f"{self.source}: skipped malformed records; {own.summary()}",
                          DataWarning, stacklevel=3)


# ------------------------------------------------------------------ readers


def _read_json_lines(path: Path, rating_field: str, text_field: str,
                     on_error: OnError, report: ReadReport | None) -> Iterator[Review]:
    emit = _Emitter(path, on_error, report)
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                emit.report.read += 1
                emit.error(lineno, "<json>", f"not valid JSON ({exc.msg})")
                continue
            if not isinstance(obj, dict):
                emit.report.read += 1
                emit.error(lineno, "<json>", "expected a JSON object")
                continue
            review = emit.rated(lineno, obj.get(rating_field), obj.get(text_field),
                                rating_field, text_field)
            if review is not None:
                yield review
    emit.finish()


def read_mcauley2014(path: str | Path, on_error: OnError = "skip",
                     report: ReadReport | None = None) -> Iterator[Review]:
    """McAuley 2014 per-category JSON lines (``overall``, ``reviewText``)."""
    return _read_json_lines(Path(path), "overall", "reviewText", on_error, report)


def read_mcauley2018(path: str | Path, on_error: OnError = "skip",
                     report: ReadReport | None = None) -> Iterator[Review]:
    """Ni, Li, McAuley 2018: same fields as 2014; reviews without ``reviewText`` are
    skipped and counted as ``missing_text`` (not errors: the dump really has them)."""
    return _read_json_lines(Path(path), "overall", "reviewText", on_error, report)


def read_amazon2023(path: str | Path, on_error: OnError = "skip",
                    report: ReadReport | None = None) -> Iterator[Review]:
    """McAuley Lab 2023 JSONL (``rating``, ``text``; the ``title`` is not used)."""
    return _read_json_lines(Path(path), "rating", "text", on_error, report)


def read_snap2013(path: str | Path, on_error: OnError = "skip",
                  report: ReadReport | None = None) -> Iterator[Review]:
    """SNAP 2013 (McAuley & Leskovec): blank-line separated ``key: value`` blocks with
    ``review/score`` and ``review/text``. ``line`` is the block's first line."""
    path = Path(path)
    emit = _Emitter(path, on_error, report)

    def flush(block: dict[str, str], start: int, bad: tuple[int, str] | None):
        if bad is not None:
            emit.report.read += 1
            emit.error(bad[0], "<block>", f"expected 'key: value', got {bad[1][:60]!r}")
            return None
        return emit.rated(start, block.get("review/score"), block.get("review/text"),
                          "review/score", "review/text")

    block: dict[str, str] = {}
    start = 0
    bad: tuple[int, str] | None = None
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                if block or bad:
                    review = flush(block, start, bad)
                    if review is not None:
                        yield review
                block, bad = {}, None
                continue
            if not block and bad is None:
                start = lineno
            key, sep, value = line.partition(":")
            if not sep or not key.strip() or " " in key.strip():
                bad = bad or (lineno, line)
                continue
            block[key.strip()] = value.strip()
        if block or bad:
            review = flush(block, start, bad)
            if review is not None:
                yield review
    emit.finish()


def read_blitzer(path: str | Path, on_error: OnError = "skip",
                 report: ReadReport | None = None) -> Iterator[Review]:
    """Blitzer et al. 2007 pseudo-XML (``<rating>``, ``<review_text>``).

    It is not valid XML (bare ``&``, no single root, some reviews repeat
    ``<unique_id>``), so it is parsed line by line: a line that is exactly ``<tag>``
    opens a field, ``</tag>`` closes it, anything else is field content.
    """
    path = Path(path)
    emit = _Emitter(path, on_error, report)
    fields: dict[str, list[str]] | None = None
    current: str | None = None
    start = 0
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            tag = line.strip()
            if tag == "<review>":
                if fields is not None:
                    emit.report.read += 1
                    emit.error(start, "review", "not closed before the next <review>")
                fields, current, start = {}, None, lineno
            elif tag == "</review>":
                if fields is None:
                    continue  # stray close tag: nothing to emit
                rating = "".join(fields.get("rating", [])).strip() or None
                text = "\n".join(fields["review_text"]).strip() if "review_text" in fields else None
                review = emit.rated(start, rating, text, "rating", "review_text")
                if review is not None:
                    yield review
                fields, current = None, None
            elif fields is None:
                continue  # outside a review (e.g. the data's header/footer lines)
            elif current is None and tag.startswith("<") and tag.endswith(">") \
                    and not tag.startswith("</") and " " not in tag:
                current = tag[1:-1]
                fields.setdefault(current, [])
                if current == "unique_id":
                    fields[current] = []  # a repeated <unique_id>: keep the last
            elif current is not None and tag == f"</{current}>":
                current = None
            elif current is not None:
                fields[current].append(line)
        if fields is not None:
            emit.report.read += 1
            emit.error(start, "review", "file ended inside a <review>")
    emit.finish()


def read_amazon_tsv(path: str | Path, on_error: OnError = "skip",
                    report: ReadReport | None = None) -> Iterator[Review]:
    """Amazon Customer Reviews TSV (header row; ``star_rating``, ``review_body``).

    Read with ``quoting=QUOTE_NONE``: the files do not quote fields, and a stray ``"``
    must not swallow the following lines.
    """
    path = Path(path)
    emit = _Emitter(path, on_error, report)
    csv.field_size_limit(2**31 - 1)  # bodies can exceed the 128 KiB default (fits a C long)
    with open_text(path, newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            emit.finish()
            return
        try:
            i_star, i_body = header.index("star_rating"), header.index("review_body")
        except ValueError:
            raise DataFormatError(str(path), 1, "<header>",
                                  f"needs columns star_rating and review_body, got {header}"
                                  ) from None
        for row in reader:
            lineno = reader.line_num
            if len(row) != len(header):
                emit.report.read += 1
                emit.error(lineno, "<row>", f"expected {len(header)} tab-separated columns, "
                                            f"got {len(row)}")
                continue
            review = emit.rated(lineno, row[i_star], row[i_body], "star_rating", "review_body")
            if review is not None:
                yield review
    emit.finish()


def read_fdu_mtl(path: str | Path, on_error: OnError = "skip",
                 report: ReadReport | None = None) -> Iterator[Review]:
    """FDU-MTL labelled lines ``label<TAB>text``, label already 0 or 1."""
    path = Path(path)
    emit = _Emitter(path, on_error, report)
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            label, sep, text = line.partition("\t")
            if not sep:
                emit.report.read += 1
                emit.error(lineno, "label", "expected 'label<TAB>text', found no tab")
                continue
            if label.strip() not in ("0", "1"):
                emit.report.read += 1
                emit.error(lineno, "label", f"expected 0 or 1, got {label[:20]!r}")
                continue
            review = emit.labelled(lineno, int(label), text, "text")
            if review is not None:
                yield review
    emit.finish()


Reader = Callable[..., Iterator[Review]]

#: Format name -> reader. These names are what a ``files`` dataset spec refers to.
READERS: dict[str, Reader] = {
    "fdu-mtl": read_fdu_mtl,
    "blitzer": read_blitzer,
    "mcauley2014": read_mcauley2014,
    "mcauley2018": read_mcauley2018,
    "amazon2023": read_amazon2023,
    "snap2013": read_snap2013,
    "amazon-tsv": read_amazon_tsv,
}


def read_reviews(path: str | Path, fmt: str, on_error: OnError = "skip",
                 report: ReadReport | None = None) -> Iterator[Review]:
    """Dispatch on the format name (see :data:`READERS`)."""
    try:
        reader = READERS[fmt]
    except KeyError:
        raise ValueError(f"unknown review format {fmt!r}; choose one of {sorted(READERS)}"
                         ) from None
    return _whole_file(path, reader(path, on_error=on_error, report=report))


def _whole_file(path: str | Path, reviews: Iterator[Review]) -> Iterator[Review]:
    """Turn a truncated or corrupt file (gzip, I/O) into one error that names the file."""
    try:
        yield from reviews
    except (EOFError, OSError, zlib.error) as exc:
        raise DataUnavailableError(f"{path}: cannot be read to the end ({exc}); the file is "
                                   f"truncated or corrupt: download or copy it again") from None

