"""What happens when a stored step cannot be read back: it is named, moved aside and
trained again, with everything that was derived from it.

A ticket run's rounds depend on each other: round r's mask is pruned from round r-1's
weights, and only the latest weights of a strategy are kept. So a corrupt step of a
strategy (``reset/round_05``) sends *all* of that strategy's stored rounds to
``<run>/.corrupt/``; a corrupt round 0 or ``theta0.pt`` sends the whole run. A corrupt
``theta_k<k>.pt`` is recomputed from θ0 alone, and a transfer or federated step depends
on nothing stored in its own run, so only that step goes. Retraining on the same machine
gives the same numbers (the run store's resume guarantee), so the result is as if the
step had never been damaged.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

from lottery.engine.store import CORRUPT_DIR, CorruptStep

T = TypeVar("T")

#: How many damaged steps one call may repair before it gives up (each repair moves at
#: least one step aside, so a loop is impossible; this only bounds the work).
MAX_REPAIRS = 5


def damaged(bad: CorruptStep) -> list[str]:
    """The stored steps and run files to set aside for the damage ``bad`` reports."""
    run, step, name = bad.run, bad.step, bad.path.name
    if step is None:                                 # a run file
        return [name] if name.startswith("theta_k") else run.steps() + [name]
    if "/" not in step:                              # transfer and federated steps
        return [step]
    strategy = step.split("/")[0]
    if strategy == "full":
        return run.steps()
    return [s for s in run.steps() if s.split("/")[0] == strategy]


def repair(bad: CorruptStep) -> list[Path]:
    """Set aside what ``bad`` spoils and say so on stderr (one line)."""
    moved = bad.run.quarantine(damaged(bad))
    print(f"lottery: {bad}; moved {len(moved)} stored item(s) to {bad.run.path / CORRUPT_DIR} "
          f"and training them again", file=sys.stderr)
    return moved


def repairing(call: Callable[[], T]) -> T:
    """``call()``, repairing damaged steps it meets and calling it again."""
    for _ in range(MAX_REPAIRS):
        try:
            return call()
        except CorruptStep as bad:
            if not repair(bad):
                raise
    return call()


def readable(read: Callable[[], list[dict[str, Any]] | None]) -> list[dict[str, Any]] | None:
    """``read()`` of stored rows; None (the job then runs and trains what is missing) if
    a stored step cannot be read back, after setting it aside."""
    try:
        return read()
    except CorruptStep as bad:
        repair(bad)
        return None
