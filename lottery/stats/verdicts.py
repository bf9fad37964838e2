"""The verdict rules: from a claim's tests over seeds to *reproduced*, *partly
reproduced*, *not reproduced* or *inconclusive*.

A claim is made of tests (:class:`SeedTest`); each is one number per seed (a paired
difference averaged over the rounds of a sparsity range) and a statement about it:

* ``above`` / ``below``: the difference has the paper's sign;
* ``equivalent``: "similar", a TOST (two one-sided tests at α, i.e. a 90% interval)
  against ±margin;
* ``band``: "a loss of 3–5 points", a TOST against the band.

Each test ends in one **state**:

* ``support``: on the paper's side at the claim's family level (Bonferroni 1 − α/m);
* ``support_iut``: on the paper's side at 1 − α but not at the family level;
* ``partial``: part of the statement holds (a band test: a significant loss whose size
  is not pinned inside the band);
* ``against``: significantly on the other side at the family level (for equivalence
  and band tests: the interval excludes the margin or the band);
* ``open``: none of these.

A claim's verdict follows from its tests' states:

* **reproduced** — every test supports the paper at 1 − α. This is an
  *intersection-union test*: "in every domain" holds only if each domain's test
  rejects on its own, so no multiplicity correction is needed (or allowed to help);
* **not reproduced** — some test is significantly *against* the paper: one domain where
  the opposite holds refutes a claim made for every domain;
* **partly reproduced** — some tests support it at the family level (or partially), none
  is against;
* **inconclusive** — none of these: more seeds are needed to tell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from lottery.stats import inference as inf
from lottery.stats import power

REPRODUCED, PARTLY, NOT, INCONCLUSIVE = ("reproduced", "partly reproduced", "not reproduced",
                                         "inconclusive")
VERDICTS = (REPRODUCED, PARTLY, NOT, INCONCLUSIVE)
SUPPORT, SUPPORT_IUT, PARTIAL, AGAINST, OPEN = "support", "support_iut", "partial", "against", "open"

#: "Similar" (claim 4): the whole 90% interval within ±2 points. The paper gives no
#: margin. 2 points is the largest whole-point margin below the smallest difference the
#: paper itself reports as a difference (the 3–5 point transfer loss of §5.3, which it
#: still calls "not substantial"); 3 and 4 points are shown next to it.
EQUIVALENCE_PTS = 0.02
EQUIVALENCE_MARGINS = (0.02, 0.03, 0.04)
#: The paper's "3–5% drop-off" of Books and Electronics masks after transfer.
LOSS_BAND = (-0.05, -0.03)


@dataclass(frozen=True)
class SeedTest:
    """One test of a claim: per-seed values and the statement about them."""

    group: str          # "Books", "CDs → *", "all domains"
    comparison: str     # "RESET − FULL"
    within: str         # the sparsity range
    values: tuple[float, ...]
    kind: str = "above"   # above | below | equivalent | band
    family: int = 1       # m of the claim's Bonferroni family
    margin: float = EQUIVALENCE_PTS
    band: tuple[float, float] = LOSS_BAND

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def iut_level(self) -> float:
        """Level of the interval that can support the paper (1 − α; TOST: 1 − 2α)."""
        return 1 - 2 * inf.ALPHA if self.kind in ("equivalent", "band") else 1 - inf.ALPHA

    @property
    def family_level(self) -> float:
        alpha = inf.ALPHA / max(self.family, 1)
        return 1 - 2 * alpha if self.kind in ("equivalent", "band") else 1 - alpha

    def interval(self) -> inf.Interval:
        return inf.t_interval(self.values, self.iut_level)

    def family_interval(self) -> inf.Interval:
        return inf.t_interval(self.values, self.family_level)

    def state(self) -> str:
        iv, fam = self.interval(), self.family_interval()
        if math.isnan(iv.low):
            return OPEN
        if self.kind in ("above", "below"):
            side = (lambda i: i.above_zero) if self.kind == "above" else (lambda i: i.below_zero)
            other = (lambda i: i.below_zero) if self.kind == "above" else (lambda i: i.above_zero)
            if side(fam):
                return SUPPORT
            if other(fam):
                return AGAINST
            return SUPPORT_IUT if side(iv) else OPEN
        if self.kind == "equivalent":
            return equivalence_state(iv, fam, self.margin)
        return band_state(iv, fam, self.band)

    def mde(self) -> float:
        return power.mde(self.interval().sd, self.n, self.iut_level)

    def seeds_needed(self) -> int | None:
        return power.seeds_needed(self.interval().sd, self.iut_level)

    def detail(self) -> dict[str, Any]:
        iv, fam = self.interval(), self.family_interval()
        needed = self.seeds_needed()
        return {"group": self.group, "comparison": self.comparison, "range": self.within,
                "seeds": iv.n, "mean_pts": _pts(iv.mean), "low_pts": _pts(iv.low),
                "high_pts": _pts(iv.high), "level": round(iv.level, 4),
                "family_low_pts": _pts(fam.low), "family_high_pts": _pts(fam.high),
                "family_level": round(fam.level, 4), "sd_pts": _pts(iv.sd),
                "mde_pts": _pts(self.mde()), "seeds_needed": needed, "state": self.state()}


def _pts(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(100 * float(x), 2)


def equivalence_state(iv: inf.Interval, family: inf.Interval, margin: float) -> str:
    """TOST: the 90% interval inside ±margin supports "similar"; the family interval
    entirely outside it is against; else open."""
    if iv.low >= -margin and iv.high <= margin:
        return SUPPORT if family.low >= -margin and family.high <= margin else SUPPORT_IUT
    if family.low > margin or family.high < -margin:
        return AGAINST
    return OPEN


def band_state(iv: inf.Interval, family: inf.Interval, band: tuple[float, float]) -> str:
    """"A loss inside the band": the interval inside it supports; the family interval
    missing the band entirely is against (a loss clearly smaller or larger, or none); a
    significant loss that is not pinned inside the band is partial."""
    lo, hi = band
    if iv.low >= lo and iv.high <= hi:
        return SUPPORT if family.low >= lo and family.high <= hi else SUPPORT_IUT
    if family.high < lo or family.low > hi:
        return AGAINST
    return PARTIAL if iv.high < 0 else OPEN


def verdict(states: Sequence[str]) -> str:
    """A claim's verdict from the states of its tests (rules in the module docstring)."""
    if not states:
        return INCONCLUSIVE
    if any(s == AGAINST for s in states):
        return NOT
    if all(s in (SUPPORT, SUPPORT_IUT) for s in states):
        return REPRODUCED
    if any(s in (SUPPORT, PARTIAL) for s in states):
        return PARTLY
    return INCONCLUSIVE


def stability_state(test: inf.StabilityTest | None, alpha: float) -> str:
    """"b is less stable than a" at ``alpha`` per test: support, against (a is less
    stable) or open."""
    if test is None:
        return OPEN
    if test.less_stable("b", alpha):
        return SUPPORT
    return AGAINST if test.less_stable("a", alpha) else OPEN


def claim_power(tests: Sequence[SeedTest]) -> tuple[float | None, int | None]:
    """(minimum detectable effect in points, seeds needed) of a claim: those of its
    weakest test (the largest of each)."""
    mdes = [t.mde() for t in tests]
    needs = [t.seeds_needed() for t in tests]
    finite = [m for m in mdes if math.isfinite(m)]
    counted = [n for n in needs if n is not None]
    return (round(100 * max(finite), 2) if finite else None, max(counted) if counted else None)


def per_seed(values: Any) -> tuple[float, ...]:
    """Per-seed values as a plain tuple (a Series or array of one value per seed)."""
    return tuple(float(v) for v in np.asarray(values, dtype=float))
