"""``lottery data check``: what a dataset gives per domain and class, without training.

For every domain of the settings' dataset it reads every file (the same readers and
rules as a run) and counts what is kept and what is dropped and why: neutral 3-star
reviews, reviews without text, malformed records (with the first few problems, file and
line), duplicate texts, texts seen with both labels, replaced non-UTF-8 bytes. It then
compares the usable reviews per class with what the splits need (``n_train``,
``n_val``, ``n_test``) and says what to change when they do not fit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from lottery import config
from lottery.data.download import ensure_files
from lottery.data.fingerprint import file_digest
from lottery.data.readers import ReadReport, read_reviews
from lottery.data.registry import get_dataset, resolve_domain
from lottery.data.splits import _per_class, LABEL_NAMES, normalise, TINY_PER_CLASS


@dataclass
class DomainCheck:
    domain: str
    files: list[str]
    report: ReadReport
    per_class: dict[int, int]  # usable (deduplicated, unambiguous) reviews per label
    duplicates: int
    ambiguous: int
    replaced_bytes: int  # U+FFFD characters: bytes that were not valid UTF-8
    needed: int  # per class, train + val + test
    problems: list[str] = field(default_factory=list)


def check_domain(data: config.DataSettings, domain: str) -> DomainCheck:
    spec = get_dataset(data.dataset)
    canonical = resolve_domain(domain, data.dataset)

    paths = ensure_files(spec, spec.files[canonical])
    report = ReadReport()
    labels: dict[str, set[int]] = {}
    replaced = 0
    seen: Counter[str] = Counter()
    for path in paths:
        file_digest(path)  # fails clearly on a missing file
        for review in read_reviews(path, spec.format_of(canonical), "skip", report):
            key = normalise(review.text)
            seen[key] += 1
            labels.setdefault(key, set()).add(review.label)
            replaced += review.text.count("\ufffd")
    ambiguous = sum(1 for v in labels.values() if len(v) > 1)
    per_class = Counter(next(iter(v)) for v in labels.values() if len(v) == 1)
    duplicates = sum(n - 1 for n in seen.values())
    need = sum(_per_class(data))
    out = DomainCheck(canonical, [str(p) for p in paths], report,
                      {c: per_class.get(c, 0) for c in LABEL_NAMES}, duplicates, ambiguous,
                      replaced, need)
    for c, name in LABEL_NAMES.items():
        have = out.per_class[c]
        if have == 0:
            why = ("every review was a neutral 3-star one" if report.neutral and not report.kept
                   else "no review of this class was found")
            out.problems.append(f"{canonical}: no usable {name} review ({why}); check the "
                                f"files and their format ({spec.format_of(canonical)!r})")
        elif have < need:
            out.problems.append(f"{canonical}: {have} usable {name} reviews, the splits need "
                                f"{need} per class (n_train + n_val + n_test = "
                                f"{data.n_train} + {data.n_val} + {data.n_test}, halved); lower "
                                f"them with --set data.n_train=… or add reviews")
    smallest = min(_per_class(data))
    if smallest < TINY_PER_CLASS:
        out.problems.append(f"warning: a split has {smallest} reviews per class (< "
                            f"{TINY_PER_CLASS}): accuracies will be dominated by noise")
    if replaced:
        out.problems.append(f"warning: {replaced} invalid UTF-8 bytes in {canonical} were "
                            f"replaced by U+FFFD")
    return out


def check_dataset(data: config.DataSettings) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per domain (what was read, kept, dropped and why), per domain and class (usable
    vs needed), and the problems found (errors, then warnings)."""
    read_rows, class_rows, problems = [], [], []
    for domain in data.domains:
        c = check_domain(data, domain)
        r = c.report
        read_rows.append({"domain": c.domain, "files": len(c.files), "read": r.read, "kept": r.kept,
                          "neutral (3 stars)": r.neutral, "no text": r.missing_text,
                          "malformed": r.skipped, "duplicates": c.duplicates,
                          "both labels": c.ambiguous, "non-UTF-8 bytes": c.replaced_bytes})
        for label, name in LABEL_NAMES.items():
            class_rows.append({"domain": c.domain, "class": name, "usable": c.per_class[label],
                               "needed": c.needed,
                               "status": "ok" if c.per_class[label] >= c.needed else "too few"})
        problems += c.problems + [f"{c.domain}: malformed: {e}" for e in r.examples]
    return (pd.DataFrame(read_rows).set_index("domain"),
            pd.DataFrame(class_rows).set_index(["domain", "class"]), problems)
