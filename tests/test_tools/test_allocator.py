"""retain_freed_memory (convmlp_mm/utils/allocator.py), which the inference tools call: freed large blocks stay in
the process for the next forward pass, unless the user's environment sets glibc's allocator itself."""
import platform
import subprocess
import sys

import pytest

from ..conftest import env_with_glibc_allocator

pytestmark = [pytest.mark.matrix,
              pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason="sets glibc's allocator; a no-op elsewhere")]

# A process that frees a 64 MiB tensor (over glibc's largest mmap threshold) and prints how much of it it keeps.
CHILD = r'''
import re, sys
from pathlib import Path
import torch
from convmlp_mm.utils.allocator import retain_freed_memory

def resident_mb():
    return int(re.search(r'^VmRSS:\s+(\d+) kB', Path('/proc/self/status').read_text(), re.M).group(1)) / 1024

print(retain_freed_memory() if sys.argv[1] == 'retain' else 'as built')
before = resident_mb()
block = torch.ones(64 * 2 ** 20 // 4)
del block
print(round(resident_mb() - before))
'''


def _child(mode: str, **env: str):
    proc = subprocess.run([sys.executable, '-c', CHILD, mode], env=env_with_glibc_allocator(**env), capture_output=True,
                          text=True, timeout=300, check=True)
    message, kept = proc.stdout.strip().splitlines()[-2:]
    return message, int(kept)


def test_freed_blocks_stay_for_reuse():
    message, kept = _child('retain')
    assert message == 'glibc keeps freed memory for reuse (no mmap per block, no trimming)'
    assert kept >= 60, kept
    _, kept = _child('as built')
    assert kept <= 16, kept  # glibc's default: the block was mapped on its own and unmapped


def test_the_environment_keeps_the_users_choice():
    message, kept = _child('retain', MALLOC_TRIM_THRESHOLD_='131072')
    assert message == 'allocator left as the environment sets it (MALLOC_TRIM_THRESHOLD_)'
    assert kept <= 16, kept
