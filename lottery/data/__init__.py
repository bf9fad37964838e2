"""Review data (layer 1): readers, dataset registry, verified download, balanced splits,
the shared vocabulary.

Modules: ``errors``, ``readers`` (every review format), ``registry`` (datasets and
domain aliases), ``download`` (verified, with a local mirror), ``fingerprint`` (own
data keyed by content), ``splits`` (balanced splits), ``check`` (``lottery data check``),
``vocab`` (the shared SentencePiece BPE vocabulary, §4.1).

The public API the rest of the project uses:

- :func:`load_splits` (``DataSettings``, domain) -> :class:`DomainSplits`
- :func:`resolve_domain`, :func:`paper_name`, :data:`DATASETS`, :func:`register_dataset`
- :func:`split_summary`, :func:`review_lengths` for the book's data chapter
- the errors (:class:`DataError` and its subclasses) that the CLI turns into one line
"""

from lottery.data.download import data_root, ensure_files, MIRROR_ENV
from lottery.data.errors import (DataError, DataFormatError, DataSettingsError,
                                 DataUnavailableError, DataWarning, NotEnoughReviewsError,
                                 UnknownDomainError)
from lottery.data.readers import READERS, ReadReport, Review, read_reviews, star_to_label
from lottery.data.registry import (DATASETS, FDU_MTL_DOMAINS, DatasetSpec, get_dataset,
                                   paper_name, register_dataset, resolve_domain,
                                   use_display_names)
from lottery.data.splits import (SPLITS, DomainSplits, iter_domain_reviews, load_splits,
                                 review_lengths, split_summary)

__all__ = [
    "DATASETS", "FDU_MTL_DOMAINS", "MIRROR_ENV", "READERS", "SPLITS",
    "DataError", "DataFormatError", "DataSettingsError", "DataUnavailableError", "DataWarning",
    "DatasetSpec",
    "DomainSplits", "NotEnoughReviewsError", "ReadReport", "Review", "UnknownDomainError",
    "data_root", "ensure_files", "get_dataset", "iter_domain_reviews", "load_splits",
    "paper_name", "read_reviews", "register_dataset", "resolve_domain", "review_lengths",
    "use_display_names",
    "split_summary", "star_to_label",
]
