"""The engine (layer 3: torch): networks, masks, training, the run store and the jobs.

- :mod:`~lottery.engine.model`    the Kim-style text CNN (§4.2)
- :mod:`~lottery.engine.stacked`  K text CNNs of one shape as one network (opt-in)
- :mod:`~lottery.engine.masks`    masks, layerwise magnitude pruning, random-pruning control (§4.3.2)
- :mod:`~lottery.engine.starts`   how survivors start and how the next mask is chosen (the strategy table's functions)
- :mod:`~lottery.engine.devices`  device names, deterministic CUDA settings, one GPU per Dask worker
- :mod:`~lottery.engine.allocator` freed memory kept in the process (glibc's mallopt): no page faults per step
- :mod:`~lottery.engine.train`    the one masked training loop with early stopping (§5.1)
- :mod:`~lottery.engine.durable`  files written whole (synced) or not at all; a full disk or a torn file named
- :mod:`~lottery.engine.encoded`  a domain's splits as token ids, encoded once and shared through the cache
- :mod:`~lottery.engine.store`    hashed, resumable run directories
- :mod:`~lottery.engine.archive`  a filled run store as one checksummed archive (export, verified import)
- :mod:`~lottery.engine.recovery` a stored step that cannot be read back is set aside and retrained
- :mod:`~lottery.engine.jobs`     ticket and transfer chains as resumable jobs (§4.3, §5.2, §5.3)
- :mod:`~lottery.engine.instability` instability analysis: error barriers on the linear path between two trainings (Frankle et al. 2020)
- :mod:`~lottery.engine.results`  the tidy results table (one row per network and curve)
- :mod:`~lottery.engine.runner`   runs jobs on any process executor
- :mod:`~lottery.engine.cluster`  the same jobs on Dask (local, a scheduler, Slurm)
- :mod:`~lottery.engine.cost`     FLOPs and work per network, a speed probe, the CPU's name
"""
