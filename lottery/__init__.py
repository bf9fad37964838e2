"""lottery: the library behind lottery-book.

A reproduction of *Evaluating Lottery Tickets Under Distributional Shifts*
(Desai, Zhan, Aly, 2019). Modules, one job each, in three groups; a group imports
only from the groups above it:

Settings and data
- :mod:`lottery.config`      settings dataclasses and the smoke/course/paper profiles
- :mod:`lottery.data`        review readers, dataset registry, verified download, balanced splits
- :mod:`lottery.vocab`       the shared SentencePiece BPE vocabulary (§4.1)
- :mod:`lottery.divergence`  subword unigram distributions and Jensen-Shannon divergence (§3)

The engine
- :mod:`lottery.model`       the Kim-style text CNN (§4.2)
- :mod:`lottery.stacked`     K text CNNs of one shape as one network (opt-in)
- :mod:`lottery.masks`       masks, layerwise magnitude pruning, random-pruning control (§4.3.2)
- :mod:`lottery.train`       the one masked training loop with early stopping (§5.1)
- :mod:`lottery.strategies`  the strategy table: how survivors start, how masks are chosen
- :mod:`lottery.store`       hashed, resumable run directories
- :mod:`lottery.procedures`  ticket and transfer chains as jobs (§4.3, §5.2, §5.3)
- :mod:`lottery.runner`      runs jobs on any process executor (default: one worker per core)
- :mod:`lottery.experiment`  checks settings and makes domain names canonical, once, at the edge

The book
- :mod:`lottery.labels`      display names and units (paper names, points, sparsity labels)
- :mod:`lottery.chapters`    chapter registry and chapter parameters
- :mod:`lottery.analysis`    summaries over seeds, paired differences, transition tests
- :mod:`lottery.claims`      the paper's claims and their computed verdicts
- :mod:`lottery.report`      tables, glue and run facts the chapters display
- :mod:`lottery.plots`       Altair charts, rendered offline
- :mod:`lottery.build`       the build pipeline: assets, papermill, jupyter-book
- :mod:`lottery.cli`         the ``lottery`` command line
"""

__version__ = "0.2.0"
