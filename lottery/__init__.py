"""lottery: the library behind lottery-book.

A reproduction of *Evaluating Lottery Tickets Under Distributional Shifts*
(Desai, Zhan, Aly, 2019), in sub-packages by layer. Each imports only from the layers
before it in this list (``tests/test_layers.py`` checks it), so reading top-down reads
the project bottom-up:

0. :mod:`lottery.config`      settings (with help text), profiles, sparsity, the strategy table (no torch)
1. :mod:`lottery.data`        review readers, dataset registry, verified download, splits, the shared vocabulary
2. :mod:`lottery.experiment`  the one validator, chapter selections, display labels
3. :mod:`lottery.engine`      model, masks, starts, training, run store, jobs, runner, Dask, costs (torch)
4. :mod:`lottery.stats`       analysis, inference, claims, similarity, rewinding, overlap, ablation, divergence
5. :mod:`lottery.federated`   §7 simulated: protocol, Flower backend, jobs, report
6. :mod:`lottery.book`        what the chapters call (plots, tables, pages, plan) and the build
7. :mod:`lottery.cli`         the ``lottery`` command line

Each sub-package's docstring lists its modules. Data carries strategy *keys*
(``reset``, ``masks_random``); the paper's labels (TICKET-RESET) appear only where text
is shown (:func:`lottery.experiment.labels.strategy_label`).
"""

__version__ = "0.2.0"
