"""The compact verdict table: badges readable without colour, the deciding test, the
provisional mark, and one collapsible block per claim."""

from __future__ import annotations

from lottery.book import verdict_view
from lottery.stats import verdicts
from lottery.stats.record import Claim


def _claim(verdict: str, states: list[str], robust: bool | None) -> Claim:
    details = [{"group": f"G{i}", "comparison": "A − B", "mean_pts": m, "low_pts": m - 1.0,
                "high_pts": m + 1.0, "level": 0.95, "state": s}
               for i, (m, s) in enumerate(zip((3.0, 0.5, -4.0), states))]
    return Claim("2. A beats B (Fig. 3)", "A better", "measured", "iv", "t", verdict, 2.5, 12, 10,
                 robust, "robustness text", details)


def test_badges_deciding_test_and_provisional():
    ok = _claim(verdicts.REPRODUCED, ["support", "support_iut"], True)
    bad = _claim(verdicts.NOT, ["support", "open", "against"], False)
    untested = Claim("12. X (§5.2)", "paper", "—", "—", "—", "not tested (needs rounds)")
    table = verdict_view.compact_table([ok, bad, untested])
    assert table.count("<tr>") == 4
    assert "✔ reproduced" in table and "✘ not reproduced" in table and "– not tested" in table
    assert verdict_view.deciding(ok)["group"] == "G1"            # the weakest support
    assert verdict_view.deciding(bad)["group"] == "G2"           # the test against the paper
    assert "−4.0" in table and "provisional" in table and "needs ~12 seeds" in table
    blocks = verdict_view.details_blocks([ok, bad, untested])
    assert blocks.count("<details") == 3 and "robustness text" in blocks
