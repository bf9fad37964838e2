"""The engine keeps freed memory in the process: training steps stop page-faulting."""

import platform
import subprocess
import sys

import pytest

from lottery.engine.allocator import keep_freed_memory

# Course-width trainings (48/24/24 CNN, 640 synthetic reviews of 30-256 subwords, 3
# epochs) in a fresh process: a warm-up training, then the minor page faults per step of
# a second one. "default" stubs the engine's call out: glibc's own thresholds (~100-300
# faults per step on the project's EPYC VM).
TRAININGS = """
import resource, sys, torch
from lottery.config import ModelSettings, TrainSettings
from lottery.engine import train as T
from lottery.engine.masks import full_mask
from lottery.engine.model import init_model
if sys.argv[1] == "default":
    T.keep_freed_memory = lambda: None
g = torch.Generator().manual_seed(0)
def split(n):
    ids = [torch.randint(1, 8000, (int(torch.randint(30, 257, (1,), generator=g)),), generator=g) for _ in range(n)]
    return T.EncodedSplit(ids=ids, labels=torch.randint(0, 2, (n,), generator=g))
train, val = split(640), split(64)
settings = TrainSettings(lr=1e-2, max_epochs=3, patience=None, threads=1)
def run(seed):
    model = init_model(8000, ModelSettings(embed_dim=48, channels=24, hidden=24), seed)
    T.train_models([model], [full_mask(model, False)], train, val, val, settings, 256, seed=seed)
run(0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
run(1)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (3 * 640 / 32))
"""


def _faults_per_step(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", TRAININGS, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's thresholds are glibc's")
def test_training_steps_page_fault_far_less_once_freed_memory_is_kept():
    kept, default = _faults_per_step("keep"), _faults_per_step("default")
    assert default > 3 * kept, f"{kept:.0f} minor page faults per step with freed memory kept, {default:.0f} without"


def test_setting_the_thresholds_is_idempotent_and_says_whether_it_took():
    took = keep_freed_memory()
    assert took is keep_freed_memory()
    assert took == (platform.libc_ver()[0] == "glibc")
