"""lottery: the library behind lottery-book.

A reproduction of *Evaluating Lottery Tickets Under Distributional Shifts*
(Desai, Zhan, Aly, 2019). Modules, one job each:

- :mod:`lottery.config`     settings dataclasses and the smoke/course/paper profiles
- :mod:`lottery.data`       review readers, dataset registry, download, balanced splits
- :mod:`lottery.vocab`      the shared SentencePiece BPE vocabulary
- :mod:`lottery.divergence` subword unigram distributions and Jensen-Shannon divergence
- :mod:`lottery.model`      the Kim-style text CNN
- :mod:`lottery.masks`      masks, layerwise magnitude pruning, random-pruning control
- :mod:`lottery.train`      masked training with early stopping
- :mod:`lottery.tickets`    ticket finding and transfer procedures
- :mod:`lottery.store`      hashed, resumable run directories
"""

__version__ = "0.1.0"
