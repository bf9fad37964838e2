"""§7's sparsify-and-transfer, simulated (layer 5: above the engine and the statistics).

- :mod:`~lottery.federated.protocol`  packing survivors, mask encoding, masked local training, FedAvg, byte counts
- :mod:`~lottery.federated.flower`    the same protocol as a Flower simulation (optional ``federated`` extra)
- :mod:`~lottery.federated.jobs`      federated tasks as run-store jobs
- :mod:`~lottery.federated.report`    key points and paired intervals for the chapter
"""
