"""How the C library's allocator treats the large blocks of CPU inference, set once by an inference tool.

glibc maps every block over its mmap threshold (at most 32 MiB, rising from 128 KiB as such blocks are freed) on
its own and unmaps it when freed, and trims its heap when the free memory on top exceeds twice that threshold. A
detector's activations are such blocks (ConvMLP-S's tokenizer writes 34-68 MB ones at 800x1333), so every
forward pass maps them afresh and the kernel zero-fills each page on first touch: 16% of ConvMLP-S's fp32 time
at 1x3x800x1333 on a 2-core Zen 4 EPYC (0.65 s against 0.55 s with the setting below), 12% in bf16. onnxruntime
and OpenVINO keep such memory in their own arenas; PyTorch's CPU allocator asks glibc every time.

:func:`retain_freed_memory` makes glibc keep freed memory for the next pass: no block is mapped on its own and
the heap is not trimmed, so the process keeps its peak resident size (what the benchmark reports as held
memory). It is process-wide, so only what does nothing but inference calls it: ``tools/test.py``,
``tools/demo.py``, ``tools/analysis_tools/benchmark.py`` and ``benchmark_e2e.py``, and the configs' test runs on a
CPU whatever launches them (:class:`~convmlp_mm.engine.hooks.RetainFreedMemoryHook`). A user's own process can
call it, or set the environment variables it stands for (``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<bytes>``),
which it leaves in charge when set.
"""
import ctypes
import ctypes.util
import os
import platform

# mallopt's parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: The environment variables that set the same parameters when a process starts; a user who set one decided.
ENVIRONMENT = ('MALLOC_MMAP_MAX_', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_')


def retain_freed_memory() -> str:
    """Make glibc keep freed memory in its heap for reuse (see the module's docstring). Returns what was done,
    for the tool's log: nothing where the C library is not glibc or the environment already sets its allocator."""
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return f'allocator left as it is ({platform.system()} {platform.libc_ver()[0] or "without glibc"})'
    chosen = [name for name in ENVIRONMENT if name in os.environ]
    if chosen:
        return f'allocator left as the environment sets it ({", ".join(chosen)})'
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    # M_TRIM_THRESHOLD is an int: the largest one turns trimming off.
    if not (libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)):
        return 'allocator left as it is (mallopt refused)'
    return 'glibc keeps freed memory for reuse (no mmap per block, no trimming)'
