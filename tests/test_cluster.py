"""The grid on Dask with real processes: a `dask scheduler` and two `dask worker`
processes on 127.0.0.1 (free ports, torn down after), the smoke grid through them
compared with the process-pool runner, a worker killed mid-run, and the Slurm job
script generated from the shipped example (Slurm itself cannot run here)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest


from lottery.engine import cluster, runner
from lottery.engine.store import RunStore
from lottery.experiment import selection

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).parent / "dask")
KEYS = ["procedure", "strategy", "domain", "source", "target", "seed", "round"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and named workers as separate process groups."""

    def __init__(self, tmp: Path):
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self._start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port",
                                  self.address.rsplit(":", 1)[1], "--no-dashboard"])

    def _start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.tmp / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **(env or {})},
                                            start_new_session=True)

    def worker(self, name: str, env: dict[str, str] | None = None, preload: list[str] = ()) -> None:
        # --no-nanny: a killed worker stays dead (a nanny would restart it)
        self._start(name, [DASK, "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                           "--no-nanny", "--no-dashboard", "--name", name,
                           *[a for p in preload for a in ("--preload", p)]], env)

    def client(self, n_workers: int):
        from distributed import Client

        client = Client(self.address, timeout="60s")
        client.wait_for_workers(n_workers, timeout=180)
        return client

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def dask_processes(tmp_path, mirror):
    c = Cluster(tmp_path)
    yield c
    c.stop()


def _grid(executor, store: RunStore, workers: int | None = None) -> pd.DataFrame:
    run = selection.chapter_settings("smoke")
    found = runner.run_tickets(run.settings, progress=False, store=store, executor=executor,
                               workers=workers)
    moved = runner.run_transfer(run.settings, progress=False, store=store, executor=executor,
                                workers=workers)
    df = pd.concat([found, moved], ignore_index=True).drop(columns=["seconds"])
    return df.sort_values(KEYS, kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def process_pool_grid(tmp_path_factory, mirror):
    return _grid(None, RunStore(tmp_path_factory.mktemp("pool")), workers=2)


def test_the_smoke_grid_on_dask_workers_equals_the_process_pool(dask_processes, tmp_path,
                                                                process_pool_grid):
    dask_processes.worker("a")
    dask_processes.worker("b")
    client = dask_processes.client(2)
    try:
        store = RunStore(tmp_path / "runs")
        got = _grid(client, store)
        pd.testing.assert_frame_equal(got, process_pool_grid)
        # both workers trained, and the tasks are keyed by run folder + steps: the same
        # chain submitted again has the same key (Dask computes a key once)
        run = selection.chapter_settings("smoke")
        jobs = runner.ticket_jobs(run.settings, run.domains, run.seeds, run.settings.strategies, 1)[0]
        keys = [cluster.task_key(j, store) for j in jobs]
        assert len(set(keys)) == len(keys) and keys == [cluster.task_key(j, store) for j in jobs]
        assert all(k.startswith("lottery-tickets-") for k in keys)
    finally:
        client.close()


def test_a_worker_killed_mid_run_leaves_identical_numbers(dask_processes, tmp_path,
                                                          process_pool_grid):
    # SIGKILLs itself after 2 rounds (the run store's test seam, set by tests/kill_at.py)
    dask_processes.worker("doomed", {"LOTTERY_TEST_KILL_AT": "2"}, [str(REPO / "tests" / "kill_at.py")])
    dask_processes.worker("survivor")
    client = dask_processes.client(2)
    try:
        got = _grid(client, RunStore(tmp_path / "runs"))
    finally:
        client.close()
    doomed = dask_processes.procs["doomed"]
    deadline = time.time() + 30
    while doomed.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert doomed.returncode == -signal.SIGKILL, "the doomed worker was never given a task"
    pd.testing.assert_frame_equal(got, process_pool_grid)


def test_connect_rejects_a_bad_address():
    with pytest.raises(ValueError, match="--dask"):
        cluster.connect("nonsense")
    with pytest.raises(ValueError, match="local:N"):
        cluster.connect("local:0")
    with pytest.raises(ValueError, match="no such file"):
        cluster.connect("slurm:/no/such/cluster.yml")


def test_the_slurm_example_makes_a_gpu_job_script():
    c = cluster.slurm_cluster(REPO / "cluster" / "slurm-gpu.yml", start=False)
    try:
        script = c.job_script()
    finally:
        c.close()
    assert "#SBATCH -p gpu" in script and "#SBATCH --gres=gpu:1" in script
    assert "--resources GPU=1" in script and "--nthreads" in script
    assert "export LOTTERY_CACHE_DIR=/shared/$USER/lottery-cache" in script
    assert "/shared/lottery-book/.venv/bin/python -m distributed.cli.dask_worker" in script
