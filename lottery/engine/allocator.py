"""Keep freed memory in the process instead of handing it back to the kernel.

A training step allocates and frees tensors of a few MB (the embedded batch, its
transposed copy, the dropout noise, gradients). glibc's ``malloc`` returns such blocks
to the kernel (``munmap``, or trimming the top of the heap) and the next step gets
them back page by page: at course width ~300 minor page faults per step, ~100,000 per
network, which cost ~12% of a network's time on this project's 2-core EPYC VM
(benchmarks/course.py reports the faults per network). Raising glibc's mmap and trim
thresholds (``mallopt``) keeps those blocks in the heap for the next step. Numbers are
bitwise the same; the process holds at most :data:`KEEP_BYTES` more free memory.
Elsewhere (macOS, musl) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

#: Free memory the process may keep (and blocks below this size stay in the heap).
KEEP_BYTES = 64 << 20
#: glibc's ``mallopt`` parameter numbers (malloc.h).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
#: glibc's largest accepted mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD_MAX = 32 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Set the thresholds once per process; whether this C library took them (glibc)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version          # glibc only: musl and macOS have no mallopt knobs
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, KEEP_BYTES), (M_TOP_PAD, KEEP_BYTES)))
