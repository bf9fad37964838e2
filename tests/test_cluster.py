"""The grid on Dask with real processes: a `dask scheduler` and two `dask worker`
processes on 127.0.0.1 (free ports, torn down after), the smoke grid through them
compared with the process-pool runner, a worker killed mid-run, and the Slurm job
script generated from the shipped example (Slurm itself cannot run here)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest


from lottery.cli import app as cli
from lottery.engine import cluster, runner
from lottery.engine.jobs import TransferChain
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

    def worker(self, name: str, env: dict[str, str] | None = None, preload: list[str] = (),
               nthreads: int = 1, wrap: list[str] = ()) -> None:
        # --no-nanny: a killed worker stays dead (a nanny would restart it)
        self._start(name, [*wrap, DASK, "worker", self.address, "--nthreads", str(nthreads), "--nworkers", "1",
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


def test_a_worker_with_two_threads_gives_the_process_pool_numbers(dask_processes, tmp_path,
                                                                  process_pool_grid, capsys):
    """The issue's case: `dask worker --nthreads 2` ran two trainings in one process and
    52 of 64 rows differed. Tasks now run one at a time per process, and the user is told."""
    dask_processes.worker("threads", nthreads=2)
    client = dask_processes.client(1)
    try:
        got = _grid(client, RunStore(tmp_path / "runs"))
    finally:
        client.close()
    pd.testing.assert_frame_equal(got, process_pool_grid)
    assert "more than one thread" in capsys.readouterr().err


def _can_unshare(folder: Path) -> bool:
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs none {folder}"],
                           capture_output=True)
    return probe.returncode == 0


def test_a_worker_that_does_not_see_the_store_fails_in_one_line(dask_processes, tmp_path, capsys):
    """A worker in its own mount namespace, with an empty file system mounted over the
    run store's path: the same path, another folder (a node without the shared mount)."""
    store = tmp_path / "runs"
    store.mkdir()
    if not _can_unshare(store):
        pytest.skip("this machine does not allow unprivileged mount namespaces (unshare -rm)")
    dask_processes.worker("elsewhere", wrap=["unshare", "-rm", "sh", "-c",
                                             f'mount -t tmpfs none {store} && exec "$0" "$@"'])
    dask_processes.client(1).close()
    try:
        code = cli.main(["tickets", "--profile", "smoke", "--domains", "books", "--seeds", "0", "--quiet",
                         "--runs", str(store), "--dask", dask_processes.address])
    finally:
        cluster.disconnect(dask_processes.address)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert f"does not see the run store {store}" in err and len(err.strip().splitlines()) == 1
    assert not list(store.glob("tickets-*"))                     # nothing trained anywhere


def test_a_task_on_a_worker_that_joined_later_checks_the_store_first(mirror, tmp_path):
    run = selection.chapter_settings("smoke")
    job = runner.ticket_jobs(run.settings, ["books"], [0], (), 1)[0][0]
    token = cluster.leave_token(tmp_path / "client-store")
    with pytest.raises(cluster.ClusterError, match="does not see the run store"):
        cluster.dask_task(job, str(tmp_path / "worker-store"), token)
    assert not (tmp_path / "worker-store").exists()
    cluster.dask_task(job, str(tmp_path / "client-store"), token)          # the right store: trains
    assert job.run_dir(RunStore(tmp_path / "client-store")).done("full/round_00")


def test_dask_tasks_split_transfer_chains_by_round_with_the_same_steps(mirror):
    run = selection.chapter_settings("smoke")
    chain = TransferChain(run.settings, "books", "electronics", 0, "masks_reset")
    tasks = cluster.dask_tasks([chain])
    assert [t.steps for t in tasks] == [[s] for s in chain.steps] and len(tasks) == len(chain.rounds) > 1
    assert {t.path(RunStore("/x")) for t in tasks} == {chain.path(RunStore("/x"))}


def test_connect_rejects_a_bad_address():
    with pytest.raises(ValueError, match="--dask"):
        cluster.connect("nonsense")
    with pytest.raises(ValueError, match="local:N"):
        cluster.connect("local:0")
    with pytest.raises(ValueError, match="no such file"):
        cluster.connect("slurm:/no/such/cluster.yml")


def _job_script(name: str) -> str:
    c = cluster.slurm_cluster(REPO / "cluster" / name, start=False)
    try:
        return c.job_script()
    finally:
        c.close()


def test_the_slurm_example_makes_a_gpu_job_script():
    script = _job_script("slurm-gpu.yml")
    assert "#SBATCH -p gpu" in script and "#SBATCH --gres=gpu:1" in script
    assert "--resources GPU=1" in script and "--nthreads 1 " in script
    assert "export LOTTERY_CACHE_DIR=/shared/$USER/lottery-cache" in script
    assert "/shared/lottery-book/.venv/bin/python -m distributed.cli.dask_worker" in script
    # workers leave before the walltime (adapt() replaces them) and use node-local scratch
    assert "--lifetime 11h30m --lifetime-stagger 10m" in script and "--local-directory" in script


def test_the_cpu_example_starts_single_threaded_worker_processes():
    """Every worker the shipped examples start has one thread (a threaded worker would
    idle its extra cores: one training per process)."""
    script = _job_script("slurm-cpu.yml")
    assert "--nthreads 1 " in script and "--nworkers 8" in script and "--cpus-per-task=8" in script
    for name in ("slurm-gpu.yml", "slurm-cpu.yml"):
        threads = re.findall(r"--nthreads (\d+)", _job_script(name))
        assert threads == ["1"], (name, threads)


def test_the_driver_script_runs_the_book_on_the_slurm_cluster():
    text = (REPO / "cluster" / "driver.sbatch").read_text()
    assert "#SBATCH" in text and '--dask "slurm:$YML"' in text and "LOTTERY_CACHE_DIR" in text
    assert subprocess.run(["bash", "-n", str(REPO / "cluster" / "driver.sbatch")]).returncode == 0


def test_a_failed_task_does_not_abandon_the_others(mirror, tmp_path, monkeypatch):
    from distributed import Client, LocalCluster
    from tqdm import tqdm

    calls = []

    def fake_run_job(job, root):
        calls.append(job.seed)
        if job.seed == 1:
            raise ValueError("boom")
        time.sleep(0.5)
        return [{"seed": job.seed}]

    monkeypatch.setattr(cluster, "run_job", fake_run_job)   # in-process workers see the patch
    run = selection.chapter_settings("smoke")
    jobs = [runner.ticket_jobs(run.settings, ["books"], [s], (), 1)[0][0] for s in (0, 1, 2)]
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as lc, \
            Client(lc) as client:
        with pytest.raises(cluster.ClusterError, match=r"1 of 3 Dask tasks failed .*: boom"):
            cluster.run_on_dask(client, jobs, RunStore(tmp_path), tqdm(disable=True))
    assert sorted(set(calls)) == [0, 1, 2] and calls.count(1) == 1 + cluster.RETRIES


def test_no_worker_for_the_timeout_stops_the_command(monkeypatch):
    class NoWorkers:
        def scheduler_info(self):
            return {"workers": {}}

    monkeypatch.setenv("LOTTERY_DASK_NO_WORKER_TIMEOUT", "0")
    since = cluster._watch(NoWorkers(), None, pending=3)
    assert since is not None
    time.sleep(0.01)
    with pytest.raises(cluster.ClusterError, match="no Dask worker has been connected"):
        cluster._watch(NoWorkers(), since, pending=3)
    assert cluster._watch(NoWorkers(), since, pending=0) is None


def test_the_gpu_plugin_pins_each_local_worker_to_its_own_gpu(monkeypatch):
    """On a LocalCluster of a 4-GPU machine, worker k trains on GPU k (the issue: all
    landed on cuda:0). The plugin runs in each worker before CUDA starts there."""
    import types

    seen = []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")       # restored (or removed) after the test
    for name in range(4):
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
        cluster._gpu_plugin(4).setup(types.SimpleNamespace(name=name))
        seen.append(os.environ["CUDA_VISIBLE_DEVICES"])
    assert seen == ["0", "1", "2", "3"]
