"""Claim verdicts follow the (synthetic) measurements."""

from __future__ import annotations

from lottery import chapters, claims
from synthetic import jsd_frame, tickets_frame, transfer_frame

PHASE = "Phase transition above 96%: RESET better and steadier than RANDOM (Fig. 3)"


def test_claims_verdicts_follow_the_data():
    run = chapters.chapter_settings("smoke", rounds=3)
    verdicts = claims.claims(tickets_frame(), transfer_frame(), None, run)
    assert "verdict" in verdicts.columns
    by = verdicts["verdict"].to_dict()
    # synthetic RESET beats the full model by +1 pt per round: reproduced
    assert by["TICKET-RESET beats FULL-MODEL at 0–90% sparsity (Fig. 3)"] == "reproduced"
    # RESET and RANDOM differ by 3 pts per round: "similar below 96%" is not reproduced
    assert by["TICKET-RESET ≈ TICKET-RANDOM below 96% (Fig. 3)"] == "not reproduced"
    # 3 rounds reach 73%: the phase-transition claim cannot be tested
    assert by[PHASE].startswith("not tested")
    # MASKS-RESET is ~7 pts below the target's ticket, more than the paper's 3-5
    assert by["Transferred masks lose little up to 90% (Fig. 4)"] == "not reproduced"
    assert by["MASKS-RESET beats MASKS-RANDOM at extreme sparsity (Fig. 4)"].startswith("not tested")
    counts = claims.verdict_counts(verdicts)
    assert counts["n_claims"] == len(verdicts) == sum(
        counts[k] for k in ("n_reproduced", "n_partly", "n_not_reproduced", "n_untested"))
    assert counts["n_untested"] >= 1 and counts["n_not_reproduced"] >= 1
    deep = tickets_frame(rounds=9)
    verdicts = claims.claims(deep, transfer_frame(rounds=9), None, chapters.chapter_settings("smoke"))
    assert verdicts.loc[PHASE, "verdict"] != "not tested"
    assert verdicts.loc["MASKS-RESET beats MASKS-RANDOM at extreme sparsity (Fig. 4)",
                        "verdict"] == "reproduced"


def test_claims_without_pairs_skip_the_transfer_claims():
    run = chapters.chapter_settings("smoke", pairs=[])
    verdicts = claims.claims(tickets_frame(), transfer_frame(), None, run)
    assert not any("Fig. 4" in c for c in verdicts.index)


def test_claims_jsd_verdict():
    names = ["books", "electronics", "dvd", "music", "kitchen_housewares"]
    jsd = jsd_frame({frozenset(("electronics", "kitchen_housewares")): 1.0,
                     frozenset(("music", "kitchen_housewares")): 50.0}, names)
    run = chapters.chapter_settings("course")
    verdicts = claims.claims(tickets_frame(), None, jsd, run)
    assert verdicts.loc["Domain similarity (Fig. 1)", "verdict"] == "reproduced"
    assert "Electronics–Home" in verdicts.loc["Domain similarity (Fig. 1)", "this book"]
    swapped = jsd_frame({frozenset(("electronics", "kitchen_housewares")): 1.0,
                         frozenset(("books", "dvd")): 50.0}, names)
    verdicts = claims.claims(tickets_frame(), None, swapped, run)
    assert verdicts.loc["Domain similarity (Fig. 1)", "verdict"] == "partly reproduced"
