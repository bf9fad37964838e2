"""The GPU path. CUDA tests, skipped without a GPU (`benchmarks/gpu_check.sh` runs them
on one): the model on the GPU computes what it computes on the CPU, masks stay exact
under masked training on the GPU, stacked models train as separate ones, a short ticket
procedure (train, prune, reset, retrain) runs on CUDA, and two CUDA trainings with one
seed give identical weights. Synthetic data: the GPU machine needs no data mirror. Also
runnable without pytest: ``python tests/test_gpu.py`` (the CUDA tests only).

Tests that run everywhere: without CUDA, ``gpu_check.sh`` and ``train.device=cuda`` end
in one line (no traceback), and :mod:`lottery.engine.devices` (device names,
deterministic settings, one GPU per Dask worker) with faked torch answers."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train import SMALL, sparse_mask, splits  # noqa: E402

from lottery.cli import app  # noqa: E402
from lottery.config import TrainSettings  # noqa: E402
from lottery.engine import devices  # noqa: E402
from lottery.engine.masks import full_mask, magnitude_prune, nested  # noqa: E402
from lottery.engine.model import init_model  # noqa: E402
from lottery.engine.train import train_masked, train_models  # noqa: E402

try:
    import pytest
except ImportError:   # run as a script on a machine without pytest
    pytest = None

REPO = Path(__file__).resolve().parents[1]
NO_CUDA = "no CUDA: install a CUDA build, see docs/gpu.md"


def cuda(fn):
    """A CUDA test: skipped without a GPU; the script runner runs only these."""
    fn.needs_cuda = True
    if pytest is None:
        return fn
    return pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")(fn)


CUDA = TrainSettings(max_epochs=2, lr=1e-2, device="cuda")


def _no_tf32():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


@cuda
def test_the_model_computes_the_same_logits_on_the_gpu():
    _no_tf32()
    model = init_model(200, SMALL, seed=0).eval()
    tokens = torch.randint(1, 200, (16, 60), generator=torch.Generator().manual_seed(0))
    cpu = model(tokens)
    gpu = model.to("cuda")(tokens.to("cuda")).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4, rtol=1e-4), (cpu - gpu).abs().max()


@cuda
def test_masks_stay_exact_under_masked_training_on_the_gpu():
    train, val, test = splits()
    model = init_model(200, SMALL, seed=0)
    mask = sparse_mask(model)
    res = train_masked(model, mask, train, val, test, CUDA, 60, seed=0)
    for name, alive in mask.items():
        assert (res.state[name][~alive] == 0).all(), name          # exactly zero, not small
        assert (res.state[name][alive] != 0).any(), name


@cuda
def test_a_pruning_mask_from_gpu_weights_is_the_cpu_one():
    model = init_model(200, SMALL, seed=0)
    weights = {n: p.detach() for n, p in model.named_parameters()}
    on_gpu = {n: w.to("cuda") for n, w in weights.items()}
    mask = full_mask(model)
    a, b = magnitude_prune(mask, weights, 0.35), magnitude_prune(mask, on_gpu, 0.35)
    assert all(torch.equal(a[n], b[n]) for n in a)


@cuda
def test_stacked_models_train_like_separate_ones_on_the_gpu():
    _no_tf32()
    train, val, test = splits()
    models = [init_model(200, SMALL, seed=s) for s in (0, 1)]
    masks = [full_mask(m) for m in models]
    alone = [train_masked(init_model(200, SMALL, seed=s), full_mask(models[0]), train, val, test,
                          CUDA, 60, seed=7).test_acc for s in (0, 1)]
    stacked = [r.test_acc for r in train_models(models, masks, train, val, test, CUDA, 60, seed=7)]
    assert max(abs(a - b) for a, b in zip(alone, stacked)) <= 0.02   # float order differs


@cuda
def test_a_ticket_procedure_runs_on_cuda():
    train, val, test = splits()
    theta0 = init_model(200, SMALL, seed=0).state_dict()
    model = init_model(200, SMALL, seed=0)
    mask = full_mask(model)
    res = train_masked(model, mask, train, val, test, CUDA, 60, seed=0)
    for _ in range(2):                      # prune the trained weights, reset, retrain
        pruned = magnitude_prune(mask, res.state, 0.5)
        assert nested(pruned, mask)
        mask = pruned
        model = init_model(200, SMALL, seed=0)
        model.load_state_dict(theta0)
        res = train_masked(model, mask, train, val, test, replace(CUDA, autocast_dtype="bfloat16"),
                           60, seed=0)
        assert all((res.state[n][~m] == 0).all() for n, m in mask.items())
    assert 0.0 <= res.test_acc <= 1.0


@cuda
def test_cuda_training_is_deterministic_and_names_the_gpu():
    train, val, test = splits()
    runs = []
    for _ in range(2):
        model = init_model(200, SMALL, seed=0)
        runs.append(train_masked(model, sparse_mask(model), train, val, test, CUDA, 60, seed=3))
    a, b = runs
    assert (a.val_acc, a.test_acc, a.history) == (b.val_acc, b.test_acc, b.history)
    assert all(torch.equal(a.state[n], b.state[n]) for n in a.state)      # bitwise, not close
    assert a.device_name == torch.cuda.get_device_name(0)
    assert not torch.are_deterministic_algorithms_enabled()              # restored afterwards


@cuda
def test_a_cuda_index_past_the_visible_gpus_is_one_line():
    train, val, test = splits()
    past = f"cuda:{torch.cuda.device_count()}"
    model = init_model(200, SMALL, seed=0)
    try:
        train_masked(model, full_mask(model), train, val, test, replace(CUDA, device=past), 60, seed=0)
    except ValueError as exc:
        assert f"sees {torch.cuda.device_count()} GPU(s)" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError(f"{past} trained")


# --------------------------------------------------------------- everywhere (no GPU needed)

def _gpu_check(cwd: Path, **env: str) -> subprocess.CompletedProcess:
    script = cwd / "benchmarks" / "gpu_check.sh"
    full = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120,
                          env={**full, **env})


def test_gpu_check_fails_loudly_without_cuda():
    env = {"CUDA_VISIBLE_DEVICES": ""}        # no GPU even on a GPU machine
    if Path(sys.executable).absolute() != REPO / ".venv/bin/python":
        env["PYTHON"] = sys.executable          # tests run by another interpreter: check that one
    r = _gpu_check(REPO, **env)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stdout == ""                      # stopped before nvidia-smi and the tests
    line = r.stderr.strip()
    assert "\n" not in line and line.startswith("gpu_check: torch ") and "docs/gpu.md" in line, line
    assert torch.__version__ in line
    if not torch.backends.cuda.is_built():
        assert line == f"gpu_check: torch {torch.__version__} has {NO_CUDA}"


def test_gpu_check_never_falls_back_to_system_python(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "gpu_check.sh").write_text((REPO / "benchmarks/gpu_check.sh").read_text())
    r = _gpu_check(tmp_path)                   # a checkout without .venv
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.strip() == ("gpu_check: no .venv/bin/python: run 'make venv' and install a "
                                "CUDA build of torch, see docs/gpu.md")


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = app.main(argv)
    except SystemExit as exc:      # settings errors exit from argparse level
        code = exc.code
    return code, capsys.readouterr().err


def test_cuda_setting_without_cuda_torch_is_one_line_exit_2(monkeypatch, capsys):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)   # a CPU-only torch
    code, err = _cli(["tickets", "--profile", "smoke", "--set", "train.device=cuda", "--quiet"], capsys)
    assert code == 2 and "Traceback" not in err
    assert err == (f"lottery: train.device='cuda' but this torch ({torch.__version__}) has no CUDA; "
                   f"install a CUDA build (docs/gpu.md) or use train.device=cpu\n")


def test_a_device_torch_does_not_know_is_one_line_exit_2(capsys):
    code, err = _cli(["profile", "smoke", "--set", "train.device=gpu"], capsys)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert "setting train.device must be a torch device (cpu, cuda, cuda:N), got 'gpu'" in err


def test_check_device_names_what_is_missing(monkeypatch):
    devices.check_device("cpu")                                  # never asks about CUDA
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    with pytest.raises(ValueError, match=r"^train.device='cuda:1' but this torch \(.*\) has no CUDA; "
                                         r"install a CUDA build \(docs/gpu.md\) or use train.device=cpu$"):
        devices.check_device("cuda:1")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ValueError, match="sees no GPU .*CUDA_VISIBLE_DEVICES=''.*nvidia-smi"):
        devices.check_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    devices.check_device("cuda:0")
    with pytest.raises(ValueError, match=r"'cuda:1' but this process sees 1 GPU\(s\).*use cuda:0 to cuda:0"):
        devices.check_device("cuda:1")


def test_device_name_is_the_gpu_model_or_the_cpu_model(monkeypatch):
    assert devices.device_name("cpu") == devices.cpu_model() != ""
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: asked.append(d) or "NVIDIA H200")
    assert devices.device_name("cuda:1") == "NVIDIA H200"
    assert asked == [torch.device("cuda:1")]


def test_deterministic_settings_on_cuda_only_and_restored(monkeypatch):
    cudnn = torch.backends.cudnn
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
    with devices.deterministic("cpu"):                           # CPU: nothing changes
        assert (cudnn.benchmark, cudnn.deterministic,
                torch.are_deterministic_algorithms_enabled()) == before
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    with devices.deterministic("cuda:0"):
        assert (cudnn.benchmark, cudnn.deterministic) == (False, True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled()) == before


def test_cpu_training_records_the_cpu_and_leaves_cuda_settings_alone(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a CPU training asked about CUDA")

    for name in ("is_available", "device_count", "get_device_name"):
        monkeypatch.setattr(torch.cuda, name, refuse)
    monkeypatch.setattr(torch, "use_deterministic_algorithms", refuse)
    train, val, test = splits()
    model = init_model(200, SMALL, seed=0)
    res = train_masked(model, full_mask(model), train, val, test, TrainSettings(max_epochs=1), 60, seed=0)
    assert res.device_name == devices.cpu_model()


WORKER_GPUS = [   # (worker name, GPUs, its GPU)
    (0, 2, 0), (1, 2, 1), (2, 2, 0), (5, 4, 1), ("3", 2, 1), ("0", 1, 0),   # LocalCluster names
    (3, 0, None),                                                          # no GPU
    ("tcp://10.0.0.1:3456", 2, None), ("SLURMCluster-0", 2, None),         # not LocalCluster's
    (-1, 2, None), (True, 2, None), (None, 2, None)]


def test_worker_gpu_gives_local_cluster_workers_one_gpu_each():
    got = [(name, n, devices.worker_gpu(name, n)) for name, n, _ in WORKER_GPUS]
    assert got == WORKER_GPUS


def test_four_workers_on_four_gpus_use_every_gpu_once():
    assert sorted(devices.worker_gpu(w, 4) for w in range(4)) == [0, 1, 2, 3]


def test_pin_gpu_sets_cuda_visible_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert devices.pin_gpu(2) == "2" and os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")           # a launcher's GPUs: index into them
    assert devices.pin_gpu(1) == "6" and os.environ["CUDA_VISIBLE_DEVICES"] == "6"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    with pytest.raises(ValueError, match="makes only 2 GPU"):
        devices.pin_gpu(2)
    with pytest.raises(ValueError, match="integer >= 0"):
        devices.pin_gpu(-1)


def test_pin_gpu_refuses_once_cuda_is_initialised(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(RuntimeError, match="already initialised in this process"):
        devices.pin_gpu(1)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"


if __name__ == "__main__":
    if not torch.cuda.is_available():
        sys.exit("no GPU")
    failed = 0
    for name, fn in list(globals().items()):
        if name.startswith("test_") and getattr(fn, "needs_cuda", False):
            try:
                fn()
                print(f"PASS {name}")
            except Exception as exc:   # report every test, then fail
                failed += 1
                print(f"FAIL {name}: {type(exc).__name__}: {exc}")
    sys.exit(1 if failed else 0)
