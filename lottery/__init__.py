"""lottery: the library behind lottery-book.

A reproduction of *Evaluating Lottery Tickets Under Distributional Shifts*
(Desai, Zhan, Aly, 2019). Modules, one job each, in three groups; a group imports
only from the groups above it:

Settings and data
- :mod:`lottery.config`      settings dataclasses and the smoke/course/paper profiles
- :mod:`lottery.data`        review readers, dataset registry, verified download, balanced splits
- :mod:`lottery.data.vocab`       the shared SentencePiece BPE vocabulary (§4.1)
- :mod:`lottery.stats.divergence`  subword unigram distributions and Jensen-Shannon divergence (§3)

The engine
- :mod:`lottery.engine.model`       the Kim-style text CNN (§4.2)
- :mod:`lottery.engine.stacked`     K text CNNs of one shape as one network (opt-in)
- :mod:`lottery.engine.masks`       masks, layerwise magnitude pruning, random-pruning control (§4.3.2)
- :mod:`lottery.engine.train`       the one masked training loop with early stopping (§5.1)
- :mod:`lottery.config.strategies`  the strategy table: how survivors start, how masks are chosen
- :mod:`lottery.engine.store`       hashed, resumable run directories
- :mod:`lottery.engine.jobs`  ticket and transfer chains as jobs (§4.3, §5.2, §5.3)
- :mod:`lottery.engine.runner`      runs jobs on any process executor (default: one worker per core)
- :mod:`lottery.experiment.validate`  checks settings and makes domain names canonical, once, at the edge

The book
- :mod:`lottery.experiment.labels`      display names and units (paper names, points, sparsity labels)
- :mod:`lottery.book.chapters`    chapter registry and chapter parameters
- :mod:`lottery.stats.analysis`    summaries over seeds, paired differences, transition tests
- :mod:`lottery.stats.claims`      the paper's claims and their computed verdicts
- :mod:`lottery.book.report`      tables, glue and run facts the chapters display
- :mod:`lottery.book.plots`       Altair charts, rendered offline
- :mod:`lottery.book.build`       the build pipeline: assets, papermill, jupyter-book
- :mod:`lottery.cli.app`         the ``lottery`` command line
"""

__version__ = "0.2.0"
