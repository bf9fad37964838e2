"""The verdicts as a reader sees them: a compact table (claim and the paper's statement,
a verdict badge, the difference that decides it with its interval, robustness) and the
details of each claim in a collapsible block.

The badge carries a symbol and the verdict's words as well as a colour, so it reads
without colour; the table has four narrow columns that wrap, so it fits a phone screen.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

from lottery.stats import claims as claim_rules
from lottery.stats import verdicts as rules
from lottery.stats.record import Claim

#: verdict -> (symbol, CSS class)
BADGES = {rules.REPRODUCED: ("✔", "reproduced"), rules.PARTLY: ("◐", "partly"),
          rules.NOT: ("✘", "not-reproduced"), rules.INCONCLUSIVE: ("?", "inconclusive")}


def badge(c: Claim) -> str:
    """The verdict as an HTML badge (symbol + words), with "provisional" when not robust."""
    symbol, css = BADGES.get(c.verdict, ("–", "untested"))
    words = c.verdict if c.tested else "not tested"
    out = f'<span class="verdict-badge verdict-{css}">{symbol} {html.escape(words)}</span>'
    if c.tested and c.robust is False:
        out += '<br><span class="verdict-provisional">provisional</span>'
    return out


def _t(d: dict) -> float:
    mean, low, high = d.get("mean_pts"), d.get("low_pts"), d.get("high_pts")
    if mean is None or low is None or high is None or high == low:
        return math.inf
    return abs(mean) / ((high - low) / 2)


def deciding(c: Claim) -> dict | None:
    """The test that decides the verdict: the first one against the paper when it is not
    reproduced, else the weakest (smallest mean relative to its interval)."""
    tests = [d for d in c.details if d.get("state") != "descriptive"]
    if not tests:
        return None
    against = [d for d in tests if d.get("state") == rules.AGAINST]
    return against[0] if against else min(tests, key=_t)


def _pts(x: float) -> str:
    return f"{x:+.1f}".replace("-", "−")


def _difference(c: Claim) -> str:
    d = deciding(c)
    if d is None:
        return html.escape(c.measured if c.tested else c.verdict.removeprefix("not tested "))
    if d.get("low_pts") is None:
        return html.escape(f"{d['group']}: {d['comparison']} {_pts(d['mean_pts'])} pts (no interval)")
    return (f"{html.escape(d['group'])}: {html.escape(d['comparison'])}<br>"
            f"<b>{_pts(d['mean_pts'])}</b> [{_pts(d['low_pts'])}, {_pts(d['high_pts'])}] pts "
            f"({100 * d['level']:.0f}%)")


def _robustness(c: Claim) -> str:
    if not c.tested:
        return "—"
    if c.robust is None:
        return "in the verdict chapter"
    if not c.details:
        return "no seeds"
    text = "robust" if c.robust else f"provisional; needs ~{c.seeds_needed} seeds"
    return f"{text}<br><small>{c.seeds} seeds; detects ≥ {c.mde:.1f} pts</small>" if c.mde else text


def compact_table(found: Sequence[Claim]) -> str:
    """The compact verdict table (HTML)."""
    rows = []
    for c in found:
        name = html.escape(c.claim.split(" (")[0])
        rows.append(f'<tr><td data-label="claim"><b>{name}</b><br><small>paper: {html.escape(c.paper)}'
                    f'</small></td><td data-label="verdict">{badge(c)}</td>'
                    f'<td data-label="deciding difference">{_difference(c)}</td>'
                    f'<td data-label="robust?">{_robustness(c)}</td></tr>')
    head = ("<tr><th>claim (paper's statement)</th><th>verdict</th><th>deciding difference "
            "[interval]</th><th>robust?</th></tr>")
    return f'<table class="verdict-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def details_blocks(found: Sequence[Claim]) -> str:
    """One collapsible block per claim: what was measured, the test, every interval,
    the power and the robustness (HTML)."""
    blocks = []
    for c in found:
        lines = [("this book", c.measured), ("intervals", c.interval), ("test", c.test),
                 ("status", claim_rules.status(c)), ("robustness", c.robustness or "—"),
                 ("power", f"minimum detectable effect {c.mde} pts; seeds for ±2 pts: {c.seeds_needed}"
                  if c.mde is not None else "—")]
        body = "".join(f"<p><b>{k}:</b> {html.escape(str(v))}</p>" for k, v in lines)
        blocks.append(f'<details class="verdict-details"><summary>{html.escape(c.claim)} — '
                      f'{html.escape(c.verdict)}</summary>{body}</details>')
    return "".join(blocks)
