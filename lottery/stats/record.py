"""One tested claim as a record: the paper's statement, this build's numbers, the tests
behind the verdict, its power (minimum detectable effect, seeds needed) and its
robustness (filled in by :mod:`lottery.stats.robustness`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from lottery.stats import verdicts as v
from lottery.stats.verdicts import SeedTest


@dataclass
class Claim:
    """One claim and its verdict. ``mde`` is in points; ``robust`` is None until
    :func:`lottery.stats.robustness.add_robustness` has perturbed the seeds."""

    claim: str
    paper: str
    measured: str
    interval: str
    test: str
    verdict: str
    mde: float | None = None
    seeds_needed: int | None = None
    seeds: int | None = None
    robust: bool | None = None
    robustness: str = ""
    details: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def number(self) -> int:
        return int(self.claim.split(".", 1)[0])

    @property
    def tested(self) -> bool:
        return not self.verdict.startswith("not tested")


def untested(claim: str, paper: str, why: str) -> Claim:
    return Claim(claim, paper, "—", "—", "—", f"not tested ({why})")


def make_claim(name: str, paper: str, measured: str, tests: Sequence[SeedTest], how: str,
               labels: Sequence[str] | None = None, extra_states: Sequence[str] = (),
               extra_seeds: int | None = None, descriptive: Sequence[SeedTest] = ()) -> Claim:
    """A claim decided by ``tests`` (and ``extra_states`` of tests that are not
    t-intervals, e.g. stability); ``descriptive`` tests are reported, not counted."""
    ivs = [t.interval() for t in tests]
    names = labels or [t.group for t in tests]
    interval = "; ".join(f"{n} {iv.text()}" if len(tests) > 1 else iv.text() for n, iv in zip(names, ivs))
    mde, needed = v.claim_power(tests)
    if extra_seeds is not None:
        needed = max(needed or 0, extra_seeds)
    level = tests[0].iut_level if tests else 0.95
    family = max((t.family for t in tests), default=1)
    text = f"{how}; {100 * level:.4g}% intervals"
    if family > 1:
        text += (f"; 'partly' and 'against' at the Bonferroni level over the claim's {family} "
                 f"tests ({100 * tests[0].family_level:.4g}%)")
    rows = [t.detail() for t in tests]
    rows += [{**t.detail(), "state": "descriptive"} for t in descriptive]
    return Claim(name, paper, measured, interval, text,
                 v.verdict([t.state() for t in tests] + list(extra_states)), mde, needed,
                 max((t.n for t in tests), default=None), details=rows)
