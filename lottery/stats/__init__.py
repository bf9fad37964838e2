"""The statistics (layer 4: pandas/scipy over the engine's result frames).

- :mod:`~lottery.stats.analysis`    summaries over seeds, paired differences, transition tests, sparsity ranges
- :mod:`~lottery.stats.inference`   paired per-seed contrasts, Bonferroni t-intervals, collapses, stability, rank correlation
- :mod:`~lottery.stats.claims`      the eight claims of §5, each a test with a verdict rule
- :mod:`~lottery.stats.similarity`  does domain similarity (JSD) predict the transfer gap?
- :mod:`~lottery.stats.rewinding`   TICKET-REWIND statistics and the choice of k
- :mod:`~lottery.stats.overlap`     Jaccard overlap of stored masks against chance
- :mod:`~lottery.stats.ablation`    the course profile's departures from §5.1, undone one at a time
- :mod:`~lottery.stats.divergence`  subword unigram distributions and Jensen-Shannon divergence (§3)
"""
