"""The grid on Dask: from a LocalCluster on one machine to a Slurm cluster.

``--dask`` takes one of:

- ``local`` or ``local:N`` — a :class:`distributed.LocalCluster` of N single-threaded
  worker processes (default: one per core);
- ``tcp://HOST:PORT`` (or ``HOST:PORT``) — a running scheduler (``dask scheduler``,
  with ``dask worker`` processes started anywhere);
- ``slurm:FILE.yml`` — a :class:`dask_jobqueue.SLURMCluster` made from the keyword
  arguments in the YAML file (see ``cluster/slurm-gpu.yml``), scaled to its ``jobs``.

A task is one ticket or transfer chain; its Dask key is the chain's run-store folder
plus its steps, so the same chain submitted twice (two chapters, two commands on one
scheduler) is trained once. Every worker writes to the run store, which must therefore
be one folder that all workers see (a shared file system on a cluster); rounds are
written atomically, so a worker killed mid-chain loses at most the round it was
training: the scheduler re-runs the task on another worker (``retries``), which resumes
from the stored rounds, and the numbers are the same as without the failure. On a GPU
cluster each task asks for the worker resource ``GPU=1`` (start workers with
``--resources GPU=1``), so a GPU trains one network at a time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from lottery import config
from lottery.engine.jobs import run_job

#: How often a task is re-run after its worker died or it raised (besides Dask's own
#: ``distributed.scheduler.allowed-failures`` for workers lost while running it).
RETRIES = 2

_CLIENTS: dict[str, Any] = {}


def is_dask(executor: Any) -> bool:
    """Whether ``executor`` is a ``distributed.Client`` (without importing distributed)."""
    return type(executor).__module__.startswith("distributed") and hasattr(executor, "scheduler")


def connect(address: str) -> Any:
    """A ``distributed.Client`` for ``address`` (see the module docstring); one per
    address and process, so the chapters of a book share it."""
    if address in _CLIENTS:
        return _CLIENTS[address]
    from distributed import Client, LocalCluster

    kind, _, rest = address.partition(":")
    if kind == "local":
        n = int(rest) if rest else None
        if n is not None and n < 1:
            raise ValueError(f"--dask local:N needs N >= 1, got {address!r}")
        gpus = _gpus()   # on a GPU machine: one worker per GPU, one training each
        cluster = LocalCluster(n_workers=n or gpus or config.usable_cores(), threads_per_worker=1,
                               processes=True, dashboard_address=None,
                               resources={"GPU": 1} if gpus else None)
        client = Client(cluster)
    elif kind == "slurm":
        client = Client(slurm_cluster(Path(rest)))
    elif kind in ("tcp", "tls", "ucx") or ":" in address:
        client = Client(address if "://" in address else f"tcp://{address}", timeout="30s")
    else:
        raise ValueError(f"--dask: expected local, local:N, tcp://HOST:PORT or slurm:FILE.yml, "
                         f"got {address!r}")
    _CLIENTS[address] = client
    return client


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def slurm_cluster(config_file: Path, start: bool = True) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` from a YAML file of its keyword arguments plus
    ``jobs`` (how many Slurm jobs to start). ``start=False``: make it without submitting
    anything (to inspect ``cluster.job_script()``)."""
    import yaml
    from dask_jobqueue import SLURMCluster

    if not config_file.is_file():
        raise ValueError(f"--dask slurm: no such file {config_file}")
    options = yaml.safe_load(config_file.read_text()) or {}
    if not isinstance(options, dict):
        raise ValueError(f"{config_file}: expected a mapping of SLURMCluster arguments")
    jobs = int(options.pop("jobs", 1))
    cluster = SLURMCluster(**options)
    if start:
        cluster.scale(jobs=jobs)
    return cluster


def task_key(job: Any, store: Any) -> str:
    """The Dask key of a chain: its run folder (hash of its settings; nothing is
    created on the client) and its steps."""
    steps = hashlib.sha256("\n".join(job.steps).encode()).hexdigest()[:10]
    return f"lottery-{job.path(store).name}-{steps}"


def run_on_dask(client: Any, jobs: Sequence[Any], store: Any, bar: tqdm) -> list[dict[str, Any]]:
    """Submit every chain to ``client`` and collect their rows as they finish."""
    from distributed import as_completed


    futures = {}
    for job in jobs:
        gpu = str(job.settings.train.device).startswith("cuda")
        fut = client.submit(run_job, job, str(store.root), key=task_key(job, store), pure=False,
                            retries=RETRIES, resources={"GPU": 1} if gpu else None)
        futures[fut] = job
    rows: list[dict[str, Any]] = []
    for fut in as_completed(list(futures)):
        rows += fut.result()
        bar.update(len(futures[fut].steps))
    return rows
