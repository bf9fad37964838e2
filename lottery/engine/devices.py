"""Where a training runs: the device's name, a check that it exists, deterministic
CUDA settings, and one GPU per Dask worker.

- :func:`device_name`  the GPU model (``torch.cuda.get_device_name``) or the CPU model,
  recorded with every training (``TrainResult.device_name``);
- :func:`check_device` a device this process cannot use, as one-line ``ValueError``
  (raised by the training itself, in the process that trains);
- :func:`deterministic` cuDNN without autotuning and with deterministic kernels,
  ``torch.use_deterministic_algorithms(True, warn_only=True)`` and a fixed cuBLAS
  workspace while a training runs on CUDA; nothing at all on a CPU;
- :func:`worker_gpu` / :func:`pin_gpu`  a Dask LocalCluster worker's GPU, and
  ``CUDA_VISIBLE_DEVICES`` set to it in that worker before CUDA starts there.

No module of the package is imported here (``lottery.engine.train`` imports this one,
and :mod:`lottery.engine.cost` imports ``train``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from typing import Iterator

import torch

#: cuBLAS's documented setting for reproducible results (CUDA >= 10.2): one fixed
#: workspace per stream instead of workspaces whose choice can vary between runs.
CUBLAS_WORKSPACE = ":4096:8"
VISIBLE = "CUDA_VISIBLE_DEVICES"


def is_cuda(device: str) -> bool:
    """Whether ``device`` ("cpu", "cuda", "cuda:1", ...) names a CUDA device."""
    return torch.device(device).type == "cuda"


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    """The model of the device a training ran on: the GPU's name for a CUDA device
    (``"NVIDIA H200"``; for ``"cuda"`` the current device, which in a worker pinned by
    :func:`pin_gpu` is its GPU), else the CPU's model name."""
    if is_cuda(device):
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model()


def _visible() -> str:
    value = os.environ.get(VISIBLE)
    return "unset" if value is None else repr(value)


def check_device(device: str) -> None:
    """Raise a one-line ``ValueError`` when this process cannot train on ``device``: a
    CUDA device with a torch built without CUDA, with no GPU visible, or with an index
    past the visible GPUs. A CPU device is not looked at (nothing asks torch about
    CUDA then)."""
    if not is_cuda(device):
        return
    if not torch.backends.cuda.is_built():
        raise ValueError(f"train.device={device!r} but this torch ({torch.__version__}) has no CUDA; "
                         f"install a CUDA build (docs/gpu.md) or use train.device=cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ValueError(f"train.device={device!r} but this process sees no GPU (torch "
                         f"{torch.__version__}, CUDA {torch.version.cuda}, {VISIBLE}={_visible()}); "
                         f"check nvidia-smi and the driver (docs/gpu.md) or use train.device=cpu")
    index = torch.device(device).index
    if index is not None and index >= count:
        raise ValueError(f"train.device={device!r} but this process sees {count} GPU(s) "
                         f"({VISIBLE}={_visible()}); use cuda:0 to cuda:{count - 1} (a worker pinned "
                         f"to one GPU sees it as cuda:0)")


@contextlib.contextmanager
def deterministic(device: str) -> Iterator[None]:
    """Deterministic CUDA kernels while the block runs on ``device``, then the caller's
    settings back; on a CPU it does nothing (the CPU's numbers stay exactly as they were).

    On CUDA: ``cudnn.benchmark = False`` (no timing-based choice of convolution
    algorithm), ``cudnn.deterministic = True``, ``torch.use_deterministic_algorithms(
    True, warn_only=True)`` (an op without a deterministic kernel warns instead of
    failing) and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless already set (it must be set
    before cuBLAS starts in the process: set it in the environment, or let the first
    CUDA training of a process start it). TF32 settings are left as torch has them.
    """
    if not is_cuda(device):
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn.benchmark, cudnn.deterministic = False, True
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic = before[0], before[1]
        torch.use_deterministic_algorithms(before[2], warn_only=before[3])


def worker_gpu(worker_name: int | str, n_gpus: int) -> int | None:
    """The GPU (0 .. n_gpus-1) of a Dask LocalCluster worker: its name modulo ``n_gpus``.

    LocalCluster names its workers 0, 1, ..., n-1 (ints; a name may arrive as the
    string ``"3"``), so N workers on N GPUs get one GPU each, and 2N workers two per
    GPU. ``None`` (leave the worker unpinned) when there is no GPU or the name is not a
    LocalCluster index (a worker started by ``dask worker`` or dask-jobqueue: its GPU
    is whatever its launcher made visible).
    """
    if n_gpus < 1 or isinstance(worker_name, bool):
        return None
    if isinstance(worker_name, str):
        if not worker_name.strip().isdigit():
            return None
        worker_name = int(worker_name)
    if not isinstance(worker_name, int) or worker_name < 0:
        return None
    return worker_name % n_gpus


def pin_gpu(index: int) -> str:
    """Make GPU ``index`` the only one this process sees (``CUDA_VISIBLE_DEVICES``);
    returns the value set. Index ``index`` of an already visible list is kept
    (``CUDA_VISIBLE_DEVICES=2,3`` and index 1 give ``3``). The pinned GPU is ``cuda``
    (= ``cuda:0``) in this process.

    Call it first thing in a worker process (a Dask ``WorkerPlugin.setup``), before
    anything asks torch about CUDA: the CUDA driver reads the variable once, when it
    starts (``torch.cuda.is_available()`` starts it too, without this function being
    able to tell). Raises ``RuntimeError`` when torch has already initialised CUDA here.
    """
    if torch.cuda.is_initialized():
        raise RuntimeError(f"pin_gpu({index}): CUDA is already initialised in this process "
                           f"(pid {os.getpid()}), so {VISIBLE} would have no effect; pin the "
                           f"GPU before the process first uses CUDA (a WorkerPlugin's setup)")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"pin_gpu: a GPU index is an integer >= 0, got {index!r}")
    visible = [v.strip() for v in os.environ.get(VISIBLE, "").split(",") if v.strip()]
    if visible and index >= len(visible):
        raise ValueError(f"pin_gpu({index}): {VISIBLE}={os.environ[VISIBLE]!r} makes only "
                         f"{len(visible)} GPU(s) visible")
    value = visible[index] if visible else str(index)
    os.environ[VISIBLE] = value
    return value
