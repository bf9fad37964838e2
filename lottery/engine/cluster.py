"""The grid on Dask: from a LocalCluster on one machine to a Slurm cluster.

``--dask`` takes one of:

- ``local`` or ``local:N`` — a :class:`distributed.LocalCluster` of N single-threaded
  worker processes (default: one per core);
- ``tcp://HOST:PORT`` (or ``HOST:PORT``) — a running scheduler (``dask scheduler``,
  with ``dask worker`` processes started anywhere);
- ``slurm:FILE.yml`` — a :class:`dask_jobqueue.SLURMCluster` made from the keyword
  arguments in the YAML file (see ``cluster/slurm-gpu.yml``), scaled to its ``jobs``.

A task is one ticket chain of one strategy (round 0 runs first, as its own tasks) or
one round of a transfer chain: results that do not depend on each other are separate
tasks, so a cluster's workers stay busy. Its Dask key is the chain's run-store folder
plus its steps, so the same work submitted twice (two chapters, two commands on one
scheduler) is computed once.

Every worker writes to the run store, which must therefore be one folder that all
workers see (a shared file system on a cluster). Before anything is submitted the
client writes a token into the store and every connected worker must find it there and
be able to write next to it; a worker that joins later checks the same token before
each task. Either way a worker that sees another folder fails in one line naming it,
instead of training into a store no one reads.

One worker process trains one network at a time, however many threads it has:
dropout draws from torch's global generator and the thread count is per process, so
two trainings in one process would change each other's numbers. A worker started with
``--nthreads 4`` therefore runs its tasks one after another (and says so): start
workers with ``--nthreads 1`` and as many processes as cores instead.

Rounds are written atomically, so a worker killed mid-task loses at most the round it
was training: the scheduler re-runs the task on another worker (``retries``), which
resumes from the stored rounds, with the same numbers. A task that fails for good does
not stop the others: their results are stored, and the command ends with one line
naming the failures. If no worker is connected for :data:`NO_WORKER_TIMEOUT` seconds
(e.g. Slurm jobs that never start) the command stops instead of waiting forever.

On a GPU cluster each task asks for the worker resource ``GPU=1`` (start workers with
``--resources GPU=1``); on a LocalCluster of a multi-GPU machine every worker is pinned
to its own GPU (``CUDA_VISIBLE_DEVICES``, :mod:`lottery.engine.devices`).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from lottery import config
from lottery.engine import devices
from lottery.engine.jobs import Job, TransferChain, run_job

#: How often a task is re-run after its worker died or it raised (besides Dask's own
#: ``distributed.scheduler.allowed-failures`` for workers lost while running it).
RETRIES = 2
#: Seconds without any connected worker after which a command gives up
#: (``LOTTERY_DASK_NO_WORKER_TIMEOUT`` overrides it).
NO_WORKER_TIMEOUT = 900.0
#: Where the client leaves its token in the run store (see the module docstring).
PROBES = ".workers"

_CLIENTS: dict[str, Any] = {}
#: One training at a time in this process (a worker with several threads runs its
#: tasks one after another; see the module docstring).
_ONE_TRAINING = threading.Lock()


class ClusterError(RuntimeError):
    """The cluster cannot give correct results (a worker that does not see the run
    store, tasks that failed, no workers at all): one line for the user."""


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
        n = int(rest) if rest.isdigit() else None
        if rest and (n is None or n < 1):
            raise ValueError(f"--dask local:N needs N >= 1, got {address!r}")
        gpus = _gpus()   # on a GPU machine: one worker per GPU, one training each
        cluster = LocalCluster(n_workers=n or gpus or config.usable_cores(), threads_per_worker=1,
                               processes=True, dashboard_address=None,
                               resources={"GPU": 1} if gpus else None)
        client = Client(cluster)
        if gpus:
            client.register_plugin(_gpu_plugin(gpus), name="lottery-pin-gpu")
    elif kind == "slurm":
        client = Client(slurm_cluster(Path(rest)))
    elif kind in ("tcp", "tls", "ucx") or ":" in address:
        client = Client(address if "://" in address else f"tcp://{address}", timeout="30s")
    else:
        raise ValueError(f"--dask: expected local, local:N, tcp://HOST:PORT or slurm:FILE.yml, "
                         f"got {address!r}")
    _CLIENTS[address] = client
    return client


def disconnect(address: str) -> None:
    """Close the client :func:`connect` made for ``address`` (and its LocalCluster)."""
    client = _CLIENTS.pop(address, None)
    if client is not None:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _gpu_plugin(n_gpus: int) -> Any:
    """A worker plugin that pins each LocalCluster worker (named 0..n-1) to one GPU
    before CUDA starts in it (also when a nanny restarts the worker)."""
    from distributed import WorkerPlugin

    class PinGPU(WorkerPlugin):
        def setup(self, worker: Any) -> None:
            index = devices.worker_gpu(worker.name, n_gpus)
            if index is not None:
                devices.pin_gpu(index)

    return PinGPU()


def slurm_cluster(config_file: Path, start: bool = True) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` from a YAML file of its keyword arguments plus
    ``jobs`` (the most Slurm jobs to run at once) and ``minimum_jobs`` (default: all of
    them). The cluster *adapts* between the two, so a job that ends (walltime, worker
    ``--lifetime``) is replaced. ``start=False``: make it without submitting anything
    (to inspect ``cluster.job_script()``)."""
    import yaml
    from dask_jobqueue import SLURMCluster

    if not config_file.is_file():
        raise ValueError(f"--dask slurm: no such file {config_file}")
    options = yaml.safe_load(config_file.read_text()) or {}
    if not isinstance(options, dict):
        raise ValueError(f"{config_file}: expected a mapping of SLURMCluster arguments")
    jobs = int(options.pop("jobs", 1))
    minimum = int(options.pop("minimum_jobs", jobs))
    cluster = SLURMCluster(**options)
    if start:
        cluster.adapt(minimum_jobs=min(minimum, jobs), maximum_jobs=jobs)
    return cluster


def task_key(job: Any, store: Any) -> str:
    """The Dask key of a chain: its run folder (hash of its settings; nothing is
    created on the client) and its steps."""
    steps = hashlib.sha256("\n".join(job.steps).encode()).hexdigest()[:10]
    return f"lottery-{job.path(store).name}-{steps}"


# ------------------------------------------------------------------ the run store on every worker

def leave_token(root: Path | str) -> str:
    """Write a fresh token into the run store (for :func:`store_problem`)."""
    token = uuid.uuid4().hex
    folder = Path(root) / PROBES
    folder.mkdir(parents=True, exist_ok=True)
    (folder / token).write_text(token)
    return token


def store_problem(root: str, token: str) -> str | None:
    """Runs on a worker: why it cannot use the run store ``root`` (None: it can)."""
    probe = Path(root) / PROBES / token
    try:
        if probe.read_text() != token:
            raise FileNotFoundError
    except OSError:
        return (f"does not see the run store {root} (the token the client wrote there is missing: "
                f"this worker sees another folder at that path)")
    mine = probe.with_name(f"{token}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        mine.write_text("ok")
        mine.unlink()
    except OSError as exc:
        return f"cannot write to the run store {root} ({exc.strerror})"
    return None


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except ValueError:     # not in a worker (tests call the task directly)
        return "process " + str(os.getpid())


def dask_task(job: Job, store_root: str, token: str) -> list[dict[str, Any]]:
    """What a worker runs: check the store, then train, one training per process."""
    problem = store_problem(store_root, token)
    if problem:
        raise ClusterError(f"Dask worker {_worker_name()} {problem}")
    with _ONE_TRAINING:
        return run_job(job, store_root)


def check_workers(client: Any, root: str, token: str) -> None:
    """Every connected worker sees the store (else :class:`ClusterError`); a worker with
    several threads is named once (it trains one network at a time)."""
    problems = {w: p for w, p in client.run(store_problem, root, token).items() if p}
    if problems:
        worker, problem = sorted(problems.items())[0]
        others = f" (and {len(problems) - 1} other worker(s))" if len(problems) > 1 else ""
        raise ClusterError(f"Dask worker {worker}{others} {problem}; every worker must see the same "
                           f"run store: start workers where it is mounted, or point LOTTERY_CACHE_DIR "
                           f"(or --runs) at a shared folder")
    threaded = sorted(w for w, info in client.scheduler_info()["workers"].items() if info.get("nthreads", 1) > 1)
    if threaded:
        print(f"lottery: {len(threaded)} Dask worker(s) have more than one thread (e.g. {threaded[0]}); "
              f"each trains one network at a time: start workers with --nthreads 1 and one process "
              f"per core to use every core", file=sys.stderr)


def dask_tasks(jobs: Sequence[Job]) -> list[Job]:
    """Finer jobs where results do not depend on each other: one per round of a
    transfer chain (same steps, same numbers). Ticket chains come already split, one
    per strategy after a wave of round 0 (:func:`lottery.engine.runner.ticket_jobs`)."""
    out: list[Job] = []
    for job in jobs:
        if isinstance(job, TransferChain) and len(job.rounds) > 1:
            out += [TransferChain(job.settings, job.source, job.target, job.seed, job.strategy, (r,))
                    for r in job.rounds]
        else:
            out.append(job)
    return out


def run_on_dask(client: Any, jobs: Sequence[Any], store: Any, bar: tqdm) -> list[dict[str, Any]]:
    """Submit every job to ``client`` and collect their rows as they finish; failures
    are collected (the other tasks go on) and reported together at the end."""
    token = leave_token(store.root)
    check_workers(client, str(store.root), token)
    futures = {}
    for job in dask_tasks(jobs):
        gpu = devices.is_cuda(str(job.settings.train.device))
        fut = client.submit(dask_task, job, str(store.root), token, key=task_key(job, store), pure=False,
                            retries=RETRIES, resources={"GPU": 1} if gpu else None)
        futures[fut] = job
    rows: list[dict[str, Any]] = []
    failed: list[tuple[Any, BaseException]] = []
    pending, alone_since, checked = set(futures), None, 0.0
    while pending:
        for fut in [f for f in pending if f.done()]:
            pending.discard(fut)
            try:
                rows += fut.result()
            except Exception as exc:       # any task error: keep the others going
                failed.append((futures[fut], exc))
            bar.update(len(futures[fut].steps))
        if time.monotonic() - checked > 10:
            alone_since, checked = _watch(client, alone_since, len(pending)), time.monotonic()
        if pending:
            time.sleep(0.2)
    if failed:
        job, exc = failed[0]
        raise ClusterError(f"{len(failed)} of {len(futures)} Dask tasks failed (the others are stored; "
                           f"run the command again to retry), first {task_key(job, store)}: {exc}")
    return rows


def _watch(client: Any, alone_since: float | None, pending: int) -> float | None:
    """Give up when no worker has been connected for the timeout."""
    if not pending or client.scheduler_info().get("workers"):
        return None
    now = time.monotonic()
    limit = float(os.environ.get("LOTTERY_DASK_NO_WORKER_TIMEOUT", NO_WORKER_TIMEOUT))
    if alone_since is not None and now - alone_since > limit:
        raise ClusterError(f"no Dask worker has been connected for {limit:.0f} s with {pending} task(s) "
                           f"waiting (Slurm jobs still queued? workers that cannot reach the scheduler?); "
                           f"finished work is stored, run the command again once workers are up")
    return alone_since if alone_since is not None else now
