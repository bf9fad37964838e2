"""Why this book differs from the paper: move one departure at a time back to §5.1.

The course profile departs from the paper's settings to fit a laptop (learning rate,
prune fraction, review length, model width, training-set size). Each
:class:`Departure` undoes one of them on its own, on one domain and the profile's seeds,
with TICKET-RESET and TICKET-RANDOM; :func:`ablation_table` compares the claims' key
statistics (:func:`lottery.stats.claims.key_statistics`) with those of the unchanged profile
and says which verdicts move. Departures marked ``course=False`` cost too much for the
course book's budget and run when the chapter is asked for them (``-p variants all``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from lottery.config import ExperimentSettings, to_dict
from lottery.engine import runner
from lottery.experiment import validate as experiment
from lottery.stats import claims, inference, verdicts

BASE = "course profile"


@dataclass(frozen=True)
class Departure:
    """One setting (or coupled pair) moved toward the paper."""

    key: str  # what ``variants`` names
    change: str  # the departure undone, as the table prints it
    overrides: tuple[tuple[str, Any], ...]  # dotted settings (as ``--set``)
    #: training time relative to the course profile's own run on one domain, and how
    #: it was obtained ("measured": Books, 5 seeds, this project's 2-core CPU;
    #: "estimated": from the work count — trainings × epochs × reviews × width)
    cost: float
    cost_basis: str
    course: bool  # runs in the course book by default


DEPARTURES: tuple[Departure, ...] = (
    Departure("he_a", "He init with a = √5 (PyTorch's layer default) instead of 0",
              (("model.he_a", math.sqrt(5)),), 1.0, "estimated", True),
    Departure("lr", "lr 1e-3 (paper) with 15 epochs", (("train.lr", 1e-3), ("train.max_epochs", 15)),
              2.0, "measured", False),
    Departure("p", "p = 0.35 (paper), 11 rounds to 99.1%",
              (("prune.prune_fraction_per_round", 0.35), ("prune.rounds", 11)), 1.5, "estimated", False),
    Departure("max_len", "reviews up to 500 subwords (paper)", (("vocab.max_len", 500),), 1.3,
              "estimated", False),
    Departure("n_train_600", "600 training reviews (half: the learning curve)", (("data.n_train", 600),),
              0.6, "measured", False),
    Departure("n_train_1240", "1,240 training reviews (the most FDU-MTL's smallest class allows)",
              (("data.n_train", 1240),), 1.0, "estimated", False),
    Departure("width", "a 2× wider CNN (96/48/48; the paper's is 417/127/117)",
              (("model.embed_dim", 96), ("model.channels", 48), ("model.hidden", 48)), 3.0,
              "estimated", False),
    Departure("float_order", "another float summation order (2 threads), as on another CPU",
              (("train.threads", 2),), 1.2, "estimated", True),
)


def profile_differences(a: ExperimentSettings, b: ExperimentSettings,
                        names: tuple[str, str] = ("course", "paper"),
                        skip: tuple[str, ...] = ("federated.",)) -> pd.DataFrame:
    """Every setting whose value differs between two profiles (dotted names), except
    those starting with ``skip`` (by default the federated chapter's own settings)."""

    def flat(prefix: str, obj: Any, out: dict[str, Any]) -> dict[str, Any]:
        if isinstance(obj, dict):
            for k, v in obj.items():
                flat(f"{prefix}{k}.", v, out)
        else:
            out[prefix[:-1]] = obj
        return out

    fa, fb = flat("", to_dict(a), {}), flat("", to_dict(b), {})
    rows = [{"setting": k, names[0]: str(fa[k]), names[1]: str(fb.get(k))}
            for k in fa if fa[k] != fb.get(k) and not k.startswith(("train.eval_batch_size", *skip))]
    return pd.DataFrame(rows).set_index("setting")


def departure(key: str) -> Departure:
    for d in DEPARTURES:
        if d.key == key:
            return d
    raise ValueError(f"unknown ablation variant {key!r}; choose from "
                     f"{[d.key for d in DEPARTURES]} or 'course' / 'all'")


def select(variants: str | Sequence[str] | None) -> tuple[Departure, ...]:
    """``None``/"course": the course book's set; "all": every departure; or a list of keys."""
    if variants is None or variants == "course":
        return tuple(d for d in DEPARTURES if d.course)
    if variants == "all":
        return DEPARTURES
    if isinstance(variants, str):
        variants = [variants]
    return tuple(departure(k) for k in variants)


def ablated_domain(domains: Sequence[str], chosen_by_reader: bool) -> str:
    """The one domain the ablation runs on: the reader's first, else Books, else the first."""
    if not chosen_by_reader and "books" in domains:
        return "books"
    return domains[0]


def variant_settings(base: ExperimentSettings, d: Departure | None) -> ExperimentSettings:
    return base if d is None else experiment.apply_overrides(base, dict(d.overrides))


def run_ablation(base: ExperimentSettings, departures: Sequence[Departure], domain: str,
                 seeds: Sequence[int], progress: bool = False,
                 workers: int | None = None) -> pd.DataFrame:
    """TICKET-RESET and TICKET-RANDOM on ``domain`` for the base and each departure
    (resumable: the run store skips what exists). Column ``variant`` names the setting."""

    frames = []
    for d in (None, *departures):
        s = variant_settings(base, d)
        df = runner.run_tickets(s, domains=[domain], seeds=seeds, strategies=["reset", "random"],
                                progress=progress, workers=workers)
        frames.append(df.assign(variant=BASE if d is None else d.key))
    return pd.concat(frames, ignore_index=True)


def _verdicts(stats: dict[str, Any]) -> dict[str, str]:
    """The claims these statistics decide, by the rules of :mod:`lottery.stats.verdicts`."""
    return {"2 RESET > FULL": verdicts.verdict([stats["RESET − FULL ≤ 90%"].state()]),
            "4 RESET ≈ RANDOM": verdicts.verdict([stats["RESET − RANDOM ≤ 96%"].state()]),
            "5 gap opens": verdicts.verdict([stats["gap change"].state()])}


def _ci(test: Any) -> str:
    """A key statistic's mean [95% interval] (points)."""
    return inference.t_interval(test.values).text()


def _paired_change(base: Any, variant: Any) -> str:
    """Variant − base of a per-seed statistic, paired by seed (95% interval), or "—"."""
    n = min(len(base.values), len(variant.values))
    if n < 2 or len(base.values) != len(variant.values):
        return "—"
    return inference.t_interval([b - a for a, b in zip(base.values, variant.values)]).text()


def ablation_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per variant: key statistics (mean [95% interval], points), collapses, the verdicts
    of claims 2, 4 and 5 on this domain, and which verdicts differ from the base."""
    rows = []
    base_verdicts: dict[str, str] | None = None
    base_stats: dict[str, Any] | None = None
    for key, df in results.groupby("variant", sort=False):
        st = claims.key_statistics(df)
        decided = _verdicts(st)
        if key == BASE:
            base_verdicts, base_stats = decided, st
        changed = [k.split()[0] for k, v in decided.items()
                   if base_verdicts is not None and base_verdicts[k] != v]
        d = None if key == BASE else departure(str(key))
        rows.append({"variant": key, "change": "—" if d is None else d.change,
                     "full model": f"{100 * st['full model'].mean:.1f}%",
                     "RESET − FULL ≤ 90%": _ci(st["RESET − FULL ≤ 90%"]),
                     "RESET − RANDOM ≤ 96%": _ci(st["RESET − RANDOM ≤ 96%"]),
                     "RESET − RANDOM > 96%": _ci(st["RESET − RANDOM > 96%"]),
                     "gap change − base (paired)": "—" if base_stats is None
                     else _paired_change(base_stats["gap change"], st["gap change"]),
                     "collapsed": f"{st['collapsed']}/{st['networks']}",
                     **decided,
                     "verdicts changed": ", ".join(changed) if key != BASE else "—"})
        if key != BASE and not changed:
            rows[-1]["verdicts changed"] = "none"
    return pd.DataFrame(rows).set_index("variant")


def departure_table() -> pd.DataFrame:
    """The departures: what each undoes, its settings, its measured cost, course or not."""
    rows = [{"variant": d.key, "change": d.change,
             "settings": ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in d.overrides),
             "cost (× the profile's run)": f"{d.cost:.1f} ({d.cost_basis})",
             "in the course book": "yes" if d.course else "no"}
            for d in DEPARTURES]
    return pd.DataFrame(rows).set_index("variant")


def conclusions(table: pd.DataFrame) -> str:
    """One Markdown bullet per variant: what it changes, computed from :func:`ablation_table`."""
    if len(table) <= 1:
        return "_No departure was run in this build (only the profile itself)._"
    base = table.loc[BASE]
    lines = []
    for key, row in table.drop(index=BASE).iterrows():
        moved = [c for c in ("2 RESET > FULL", "4 RESET ≈ RANDOM", "5 gap opens")
                 if row[c] != base[c]]
        what = ("moves no verdict" if not moved else "moves " + "; ".join(
            f"claim {c.split()[0]} from *{base[c]}* to *{row[c]}*" for c in moved))
        paired = row.get("gap change − base (paired)", "—")
        what += ("" if paired == "—" else f"; its gap change differs from the course's by {paired} "
                 "(paired by seed; an interval covering 0 is no evidence of a difference, not "
                 "evidence of none)")
        lines.append(f"- **{row['change']}** ({key}) {what}; full model {row['full model']} "
                     f"(course {base['full model']}), collapsed networks {row['collapsed']} "
                     f"(course {base['collapsed']}).")
    return "\n".join(lines)
