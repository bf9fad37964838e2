"""Settings, the lowest layer (imports nothing else of the package, and no torch).

- :mod:`~lottery.config.hparams`     the settings dataclasses (each field with its help text),
  ``override`` / ``parse_set`` (the ``--set`` syntax)
- :mod:`~lottery.config.profiles`    the smoke / course / paper profiles
- :mod:`~lottery.config.sparsity`    1-(1-p)^r and its inverse
- :mod:`~lottery.config.paths`       the project folder, the cache, the usable cores
- :mod:`~lottery.config.strategies`  the strategy table (keys, paper labels, colours, how each starts and prunes)

The names below are re-exported so that ``config.ExperimentSettings``,
``config.get_profile`` and ``config.cache_dir`` read as one vocabulary.
"""

from lottery.config.hparams import (DEFAULT_DOMAINS, NOT_HASHED, PAPER_DOMAINS, REWIND_DEFAULT,
                                    DataSettings, ExperimentSettings, FederatedSettings,
                                    ModelSettings, PruneSettings, TrainSettings, VocabSettings,
                                    neutral, override, parse_set, to_dict)
from lottery.config.paths import cache_dir, is_project, PROJECT_MARKERS, project_root, usable_cores
from lottery.config.profiles import get_profile, PAPER_TRANSFER_PAIRS, PROFILES
from lottery.config.sparsity import check_prune_fraction, rounds_to_reach, sparsity_after

__all__ = [
    "DEFAULT_DOMAINS", "NOT_HASHED", "PAPER_DOMAINS", "PAPER_TRANSFER_PAIRS", "PROFILES",
    "PROJECT_MARKERS", "REWIND_DEFAULT", "DataSettings", "ExperimentSettings",
    "FederatedSettings", "ModelSettings", "PruneSettings", "TrainSettings", "VocabSettings",
    "cache_dir", "check_prune_fraction", "get_profile", "is_project", "neutral", "override",
    "parse_set", "project_root", "rounds_to_reach", "sparsity_after", "to_dict", "usable_cores",
]
