"""How many seeds a claim needs: the minimum detectable effect of a test over seeds and
the seeds a decision interval of a given half-width needs, both from the measured
per-seed standard deviation.

For a test over ``n`` seeds whose per-seed values spread with standard deviation ``SD``,
decided by a two-sided interval at level ``1 − α`` (or a TOST at ``1 − 2α``):

* **minimum detectable effect** (80% power): ``(t(1 − α/2, n − 1) + t(0.8, n − 1)) · SD / √n``,
  the true difference the test finds with probability 0.8;
* **seeds needed** for a half-width ``h`` (2 points by default): the smallest ``n`` with
  ``t(1 − α/2, n − 1) · SD / √n ≤ h``.

An exact sign-flip test over ``n`` seeds cannot give a p-value below ``2^-n``;
:func:`sign_flip_seeds` is the smallest ``n`` that can reach a level at all.
"""

from __future__ import annotations

import math

from scipy import stats

POWER = 0.8
#: The half-width of a decision interval the seed count is sized for (points as a fraction).
HALF_WIDTH = 0.02
MAX_SEEDS = 1000


def mde(sd: float, n: int, level: float, power: float = POWER) -> float:
    """Minimum detectable effect of a two-sided test at ``level`` over ``n`` seeds (NaN
    below two seeds or without a spread)."""
    if n < 2 or not math.isfinite(sd):
        return float("nan")
    return (stats.t.ppf(1 - (1 - level) / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / math.sqrt(n)


def seeds_needed(sd: float, level: float, half_width: float = HALF_WIDTH) -> int | None:
    """Smallest seed count whose interval at ``level`` has half-width ≤ ``half_width``
    (None without a spread; :data:`MAX_SEEDS` at most)."""
    if not math.isfinite(sd):
        return None
    if sd == 0:
        return 2
    for n in range(2, MAX_SEEDS + 1):
        if stats.t.ppf(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n) <= half_width:
            return n
    return MAX_SEEDS


def sign_flip_seeds(alpha: float) -> int:
    """Smallest number of seeds for which an exact one-sided sign-flip test can reach p < α."""
    return max(1, math.floor(math.log2(1 / alpha)) + 1)
