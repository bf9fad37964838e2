"""The statistics (layer 4: pandas/scipy over the engine's result frames).

- :mod:`~lottery.stats.analysis`         summaries over seeds, paired differences, sparsity ranges, collapses
- :mod:`~lottery.stats.inference`        paired per-seed contrasts, t-intervals, exact sign-flip tests, stability, rank correlation
- :mod:`~lottery.stats.power`            minimum detectable effect and the seeds a decision needs
- :mod:`~lottery.stats.verdicts`         the verdict rules: tests over seeds, intersection-union, TOST, band tests
- :mod:`~lottery.stats.record`           one tested claim as a record
- :mod:`~lottery.stats.transition`       the phase transition as a claim (claims 5 and 8)
- :mod:`~lottery.stats.transfer_claims`  the transfer claims of §5.3 (6–10)
- :mod:`~lottery.stats.robustness`       does a verdict survive a perturbation of the seeds ("another machine")?
- :mod:`~lottery.stats.claims`           the paper's statements of §5, each a test with a verdict rule
- :mod:`~lottery.stats.similarity`       does domain similarity (JSD) predict the transfer gap?
- :mod:`~lottery.stats.rewinding`        TICKET-REWIND statistics and the choice of k
- :mod:`~lottery.stats.overlap`          Jaccard overlap of stored masks against chance
- :mod:`~lottery.stats.ablation`         the course profile's departures from §5.1, undone one at a time
- :mod:`~lottery.stats.instability`      error barriers over seeds and the share of stable seeds (linear mode connectivity)
- :mod:`~lottery.stats.divergence`       subword unigram distributions and Jensen-Shannon divergence (§3)
"""
