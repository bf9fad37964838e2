"""The run store under faults: two writers of one step, a torn or empty stored file, a
full disk, a command that fails before training, two commands on one store."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lottery import config
from lottery.engine import durable
from lottery.engine.jobs import TicketChain, TransferChain
from lottery.engine.store import CORRUPT_DIR, CorruptStep, RunStore
from lottery.experiment import validate as experiment

REPO = Path(__file__).resolve().parents[1]
SETTINGS = experiment.resolve(config.override(config.get_profile("smoke"), **{
    "prune.rounds": 2, "train.max_epochs": 1}))


def _without_time(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


# ------------------------------------------------------------------ one step, two writers

def test_the_first_finished_step_wins_and_is_never_replaced(tmp_path):
    run = RunStore(tmp_path).run("tickets", {"x": 1})
    assert run.write_step("reset/round_01", {"acc": 0.5}, {"mask": {"w": torch.ones(2, dtype=torch.bool)}})
    before = (run.path / "reset/round_01/metrics.json").stat().st_ino
    assert not run.write_step("reset/round_01", {"acc": 0.9}, {"mask": {"w": torch.zeros(2, dtype=torch.bool)}})
    assert run.metrics("reset/round_01") == {"acc": 0.5}
    assert (run.path / "reset/round_01/metrics.json").stat().st_ino == before   # not rewritten
    assert sorted(p.name for p in (run.path / "reset").iterdir()) == ["round_01"]


def _write(root: str, value: float, barrier) -> bool:
    run = RunStore(root).run("tickets", {"x": 1})
    barrier.wait()
    return run.write_step("reset/round_01", {"acc": value}, {"w": {"w": torch.full((20_000,), value)}})


def test_concurrent_writers_of_one_step_leave_exactly_one_consistent_step(tmp_path):
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(4)
        with ctx.Pool(4) as pool:
            won = pool.starmap(_write, [(str(tmp_path), float(v), barrier) for v in range(4)])
    assert sum(won) == 1
    run = RunStore(tmp_path).run("tickets", {"x": 1})
    value = run.metrics("reset/round_01")["acc"]
    assert won[int(value)] and torch.equal(run.tensors("reset/round_01", "w")["w"], torch.full((20_000,), value))
    assert sorted(p.name for p in (run.path / "reset").iterdir()) == ["round_01"]


def test_a_writer_that_checked_before_another_published_does_not_win_too(tmp_path, monkeypatch):
    """The interleaving forced: both writers find the step missing, the first publishes,
    then the second goes on. Under the publish lock the second checks after the first has
    published (the barrier times out) and keeps the first's step."""
    import threading
    import time

    from lottery.engine.store import RunDir

    real_done, barrier, local = RunDir.done, threading.Barrier(2, timeout=1.5), threading.local()

    def done(self, step):
        found = real_done(self, step)
        if not getattr(local, "checked", False):
            local.checked = True
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
            deadline = time.monotonic() + 1.5
            while local.value == 1.0 and not real_done(self, step) and time.monotonic() < deadline:
                time.sleep(0.01)
        return found

    monkeypatch.setattr(RunDir, "done", done)
    run = RunStore(tmp_path).run("tickets", {"x": 1})
    won = {}

    def write(value):
        local.value = value
        won[value] = run.write_step("reset/round_01", {"acc": value}, {"w": {"w": torch.full((4,), value)}})

    threads = [threading.Thread(target=write, args=(v,)) for v in (0.0, 1.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(won.values()) == 1, won
    value = run.metrics("reset/round_01")["acc"]
    assert won[value] and torch.equal(run.tensors("reset/round_01", "w")["w"], torch.full((4,), value))


def _chain_counting_trainings(root: str, log: str, barrier) -> None:
    from lottery.engine import jobs

    real = jobs.train_models

    def counted(models, *args, **kwargs):
        with open(log, "a") as fh:
            fh.write(f"{len(models)}\n")
        return real(models, *args, **kwargs)

    jobs.train_models = counted
    barrier.wait()
    TicketChain(SETTINGS, "books", 0, ("reset", "random")).run(RunStore(root))


def test_two_processes_on_one_chain_train_each_network_once(mirror, tmp_path):
    """The per-step locks: the second process waits for a step the first is training
    and then finds it stored, instead of training it again and discarding it."""
    log = tmp_path / "trainings.log"
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        procs = [ctx.Process(target=_chain_counting_trainings, args=(str(tmp_path / "runs"), str(log), barrier))
                 for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(600)
    assert [p.exitcode for p in procs] == [0, 0]
    assert sum(int(n) for n in log.read_text().split()) == 1 + 2 * 2     # round 0 + 2 strategies x 2 rounds


def test_nothing_is_created_before_the_first_file_is_written(tmp_path):
    store = RunStore(tmp_path)
    run = store.run("tickets", {"x": 1})
    assert not run.path.exists() and not run.done("full/round_00")
    run.save_file("theta0.pt", {"w": torch.ones(1)})
    assert (run.path / "settings.json").is_file()
    run.save_file("theta0.pt", {"w": torch.zeros(1)})           # kept: written once
    assert torch.equal(run.load_file("theta0.pt")["w"], torch.ones(1))


# ------------------------------------------------------------------ damaged steps

@pytest.mark.parametrize("damage", ["empty", "torn"])
@pytest.mark.parametrize("target", ["reset/round_02/metrics.json", "full/round_00/mask.pt",
                                    "full/round_00/weights.pt", "theta0.pt"])
def test_a_damaged_stored_file_is_named_set_aside_and_retrained_to_the_same_numbers(
        mirror, tmp_path, capfd, target, damage):
    store = RunStore(tmp_path)
    clean = TicketChain(SETTINGS, "books", 0, ("reset",)).run(store)
    run = TicketChain(SETTINGS, "books", 0, ("reset",)).run_dir(store)
    f = run.path / target
    data = f.read_bytes()
    f.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    capfd.readouterr()
    # a new strategy reads round 0's mask and weights; round 2's metrics are read by the rows
    rows = TicketChain(SETTINGS, "books", 0, ("reset", "random")).run(store)
    err = capfd.readouterr().err
    assert str(f) in err and "cannot be read" in err and "training them again" in err
    assert _without_time(rows[:3]) == _without_time(clean)
    assert any((run.path / CORRUPT_DIR).iterdir())                # kept for inspection, not deleted
    assert TicketChain(SETTINGS, "books", 0, ("reset", "random")).stored_rows(store) is not None


def test_a_damaged_source_mask_is_repaired_before_transfer_reads_it(mirror, tmp_path, capfd):
    store = RunStore(tmp_path)
    clean = TransferChain(SETTINGS, "books", "electronics", 0, "masks_reset").run(store)
    src = TicketChain(SETTINGS, "books", 0, ("reset",)).run_dir(store)
    run = TransferChain(SETTINGS, "books", "electronics", 0, "masks_reset").run_dir(store)
    run.quarantine(["round_02"])
    (src.path / "reset/round_02/mask.pt").write_bytes(b"")
    rows = TransferChain(SETTINGS, "books", "electronics", 0, "masks_reset").run(store)
    assert "reset/round_02/mask.pt" in capfd.readouterr().err
    assert _without_time(rows) == _without_time(clean)


def test_store_files_that_cannot_be_read_raise_a_named_error(tmp_path):
    (tmp_path / "m.json").write_text('{"acc": 0.')
    with pytest.raises(durable.CorruptFile, match=re.escape(str(tmp_path / "m.json"))):
        durable.load_json(tmp_path / "m.json")
    run = RunStore(tmp_path).run("tickets", {"x": 1})
    run.write_step("full/round_00", {"a": 1}, {"mask": {"w": torch.ones(2)}})
    (run.path / "full/round_00/mask.pt").write_bytes(b"")
    with pytest.raises(CorruptStep, match="mask.pt: cannot be read \\(the file is empty\\)"):
        run.tensors("full/round_00", "mask")


# ------------------------------------------------------------------ a full disk

FULL_DISK = r"""
import resource, signal, sys, torch
from lottery.engine.store import RunStore
from lottery.engine import durable
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # writes past the limit fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
run = RunStore(sys.argv[1]).run("tickets", {"x": 1})
try:
    {call}
except durable.StoreWriteError as exc:
    print("STORE-FULL", exc)
"""


@pytest.mark.parametrize("call", [
    'run.write_step("reset/round_01", {"a": 1}, {"weights": {"w": torch.ones(1_000_000)}})',
    'run.save_file("theta0.pt", {"w": torch.ones(1_000_000)})',
    'durable.save_json(run.path / "big.json", list(range(100_000)))',
])
def test_a_full_disk_is_named_and_leaves_nothing_half_written(tmp_path, call):
    proc = subprocess.run([sys.executable, "-c", FULL_DISK.replace("{call}", call), str(tmp_path)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "STORE-FULL" in proc.stdout and "no space left to write it" in proc.stdout, proc.stdout
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "settings.json"]
    assert leftovers == []


# ------------------------------------------------------------------ commands

def _tickets(store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lottery.cli.app", "tickets", "--profile", "smoke", "--set", "prune.rounds=2",
            "--set", "train.max_epochs=1", "--domains", "books", "--seeds", "0", "--strategies", "reset",
            "random", "--workers", "1", "--quiet", "--runs", str(store), *extra]


def test_two_commands_on_one_store_train_each_network_once(mirror, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen(_tickets(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outs]
    run = next(tmp_path.glob("tickets-*"))
    assert len(list(run.glob("*/round_*/metrics.json"))) == 5     # 1 + 2 strategies x 2 rounds
    assert not list(run.rglob("*.tmp*")) and not (run / CORRUPT_DIR).exists()
    subprocess.run(_tickets(tmp_path / "alone"), env=env, check=True, capture_output=True)
    rows = [TicketChain(SETTINGS, "books", 0, ("reset", "random")).stored_rows(RunStore(p))
            for p in (tmp_path, tmp_path / "alone")]
    assert _without_time(rows[0]) == _without_time(rows[1])


def test_a_command_that_fails_before_training_leaves_no_run_folder(mirror, tmp_path):
    proc = subprocess.run(_tickets(tmp_path, "--set", "data.n_train=200000"),
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ your own data: edits and moves

def _own_data(folder: Path, mirror: Path, spec_name: str = "spec.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "books.json").write_bytes((mirror / "format-samples/mcauley2014/Books_small.json").read_bytes())
    (folder / spec_name).write_text('{"format": "mcauley2014", "domains": {"books": ["books.json"]}}')
    return folder / spec_name


def _trained(spec: Path, store: Path, cwd: Path | None = None) -> int:
    proc = subprocess.run(
        [sys.executable, "-m", "lottery.cli.app", "tickets", "--profile", "smoke", "--set", f"data.dataset={spec}",
         "--set", "data.n_train=60", "--set", "data.n_val=20", "--set", "data.n_test=20", "--set", "prune.rounds=1",
         "--set", "train.max_epochs=1", "--domains", "books", "--seeds", "0", "--strategies", "reset",
         "--workers", "1", "--quiet", "--runs", str(store)],
        capture_output=True, text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-1500:]
    return int(re.search(r"this command trained (\d+) networks", proc.stdout).group(1))


def test_own_data_runs_follow_the_content_not_the_path(mirror, tmp_path):
    """Renaming the spec, moving the data folder, or typing ``./spec.json`` reuses the
    runs; a same-size edit with the old modification time (``cp -p``, ``rsync -a``)
    retrains."""
    store = tmp_path / "runs"
    spec = _own_data(tmp_path / "a", mirror)
    assert _trained(spec, store) == 2
    moved = _own_data(tmp_path / "elsewhere", mirror, "renamed.json")
    assert _trained(moved, store) == 0
    assert _trained(Path("./renamed.json"), store, cwd=tmp_path / "elsewhere") == 0
    data = moved.parent / "books.json"
    st = data.stat()
    text = data.read_bytes()
    i = text.index(b"divine")
    data.write_bytes(text[:i] + b"DIVINE" + text[i + 6:])             # same size
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))                # same modification time
    assert data.stat().st_size == st.st_size and data.stat().st_mtime_ns == st.st_mtime_ns
    assert _trained(moved, store) == 2
