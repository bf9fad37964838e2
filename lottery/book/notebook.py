"""What a chapter's cells call around the analyses: the set-up every chapter does first,
the stored results a summary chapter reads, the same-machine retrain check, and the glue
that pastes computed values into the prose."""

from __future__ import annotations

import os
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from lottery.book import plots
from lottery.data import DataWarning
from lottery.engine import runner
from lottery.engine.jobs import TicketChain
from lottery.engine.results import results_frame
from lottery.engine.runner import run_tickets
from lottery.experiment.labels import display_name
from lottery.experiment.selection import ChapterSettings

# ---------------------------------------------------------------------------- notebook set-up
#: Data-quality facts (``DataWarning`` messages) met while reading reviews in this kernel,
#: in order, without repeats: the data chapter shows them once as a table
#: (:func:`data_notes`); no chapter prints them as warnings.
DATA_NOTES: dict[str, None] = {}
_show_warning = warnings.showwarning


def _collect_data_notes(message, category, filename, lineno, file=None, line=None) -> None:
    if isinstance(category, type) and issubclass(category, DataWarning):
        DATA_NOTES[str(message)] = None
        return
    _show_warning(message, category, filename, lineno, file, line)


def data_notes() -> pd.DataFrame:
    """The data-quality notes collected so far (column ``note``), or one row saying none."""
    notes = list(DATA_NOTES) or ["none: every review read cleanly"]
    return pd.DataFrame({"note": notes}, index=pd.RangeIndex(1, len(notes) + 1, name="#"))


def setup_notebook(dask: str | None = None) -> None:
    """What every chapter does first: offline charts, full-width table cells, no
    progress-bar warnings (the chapters train with ``progress=False``), and, with
    ``dask`` (the chapter parameter, as for ``--dask``), training on that Dask cluster."""

    if dask:

        runner.use_dask(dask)

    plots.use_offline_renderer()
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.width", 200)
    warnings.filterwarnings("ignore", message="IProgress not found")
    warnings.simplefilter("always", DataWarning)      # collected, not printed
    warnings.showwarning = _collect_data_notes
    os.environ[runner.QUIET_DATA_ENV] = "1"           # worker processes: not printed either


def stored_results(run: ChapterSettings, transfer: bool = True
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ticket and transfer results for ``run``, for chapters that summarise them.

    Tickets come for the ticket grid's seeds, transfers for the profile's ``seeds``.
    In a book build the ticket and transfer chapters have trained everything already, so
    this reads the run store in this process (``workers=1``: no worker start-up). Run on
    its own it trains what is missing, one network at a time. Without transfer pairs
    the second frame is empty.
    """

    found = runner.run_tickets(run.settings, domains=run.domains, seeds=run.ticket_seeds,
                               progress=False, workers=1)
    moved = (runner.run_transfer(run.settings, pairs=run.pairs, seeds=run.seeds,
                                 progress=False, workers=1)
             if transfer and run.pairs else results_frame([]))
    return found, moved


def retrain_check(run: ChapterSettings) -> pd.DataFrame:
    """Retrain the first domain's first-seed FULL-MODEL and compare it with the store."""

    domain, seed = run.domains[0], run.seeds[0]
    run_tickets(run.settings, domains=[domain], seeds=[seed], progress=False, workers=1)
    out = TicketChain(run.settings, domain, seed).retrain_full()
    return pd.DataFrame([{**out, "domain": display_name(out["domain"])}]).set_index("domain")


#: Every value :func:`glue_values` was given in this kernel, by name (plain Python values).
GLUED: dict[str, Any] = {}


def glue_values(values: Mapping[str, Any]) -> None:
    """``myst_nb.glue`` each value without displaying it (for ``{glue:text}`` roles).

    Without myst-nb (the ``book`` extra; e.g. a chapter opened on Colab or Binder next to
    a plain ``pip install`` of the package) nothing is glued or displayed and the chapter
    runs on: only a Jupyter Book build reads the glue. The values are kept in
    :data:`GLUED` either way."""
    try:
        from myst_nb import glue  # the book extra; only a notebook kernel glues
    except ImportError:
        glue = None
    for key, value in values.items():
        if isinstance(value, (np.floating, np.integer)):
            value = value.item()
        GLUED[key] = value
        if glue is not None:
            glue(key, value, display=False)
