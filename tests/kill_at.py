"""Test-only entry point: the ``lottery`` CLI, or a Dask worker, that SIGKILLs itself at a
chosen step, for the resume tests (tests/test_tickets.py, tests/test_cluster.py).

It sets the run store's test seam (``on_step_written``, see
:data:`lottery.engine.store.StepWritten`) on every run store of its process.
``LOTTERY_TEST_KILL_AT=N`` kills the process right after its N-th stored step;
``N:mid`` kills it while writing the N-th step (tensors written, metrics not, folder not
renamed)::

    LOTTERY_TEST_KILL_AT=3:mid python tests/kill_at.py tickets --profile smoke ...
    LOTTERY_TEST_KILL_AT=2 dask worker ADDRESS --preload tests/kill_at.py

Nothing in the library reads that variable: only this script does.
"""

from __future__ import annotations

import functools
import os
import signal
import sys

from lottery.engine import store

ENV = "LOTTERY_TEST_KILL_AT"


def killer(spec: str) -> store.StepWritten:
    """The seam that kills this process at ``spec`` (``N`` or ``N:mid``)."""
    n, _, when = spec.partition(":")
    target = int(n)
    phase = "tensors" if when == "mid" else "stored"
    stored = 0

    def on_step_written(now: str, step: str) -> None:
        nonlocal stored
        stored += now == "stored"
        if now == phase and stored + (now == "tensors") == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return on_step_written


def install(spec: str) -> None:
    """Every run store this process makes from now on calls ``killer(spec)`` (one counter
    for the whole process, as the steps a worker writes are counted)."""
    store.RunStore.__init__ = functools.partialmethod(store.RunStore.__init__,
                                                      on_step_written=killer(spec))


def dask_setup(worker: object) -> None:
    """Dask's preload hook (``dask worker --preload tests/kill_at.py``)."""
    install(os.environ[ENV])


if __name__ == "__main__":
    install(os.environ[ENV])
    from lottery.cli import app

    sys.exit(app.main(sys.argv[1:]))
