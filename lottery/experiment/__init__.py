"""Settings checked and shown (layer 2: imports ``config`` and ``data``).

- :mod:`~lottery.experiment.fields`     checks of single setting values (one-line errors naming the setting)
- :mod:`~lottery.experiment.validate`   the one validator: ``resolve``, ``apply_overrides``, ``from_profile``
- :mod:`~lottery.experiment.selection`  a chapter's parameters -> settings plus the domains, seeds and pairs it shows
- :mod:`~lottery.experiment.labels`     display names and units (paper names, points, sparsity labels)
"""
