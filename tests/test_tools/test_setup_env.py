"""tools/setup_env.sh as a user meets it before anything is installed: a python3 that no stack runs on gets one
line naming the stack that fits it, and --cache-status says per stack whether its compiled mmcv is there."""
import os
import platform
import subprocess
from pathlib import Path

import pytest

from ..conftest import ROOT

SCRIPT = str(ROOT / 'tools' / 'setup_env.sh')


def fake_python(folder: Path, version: str) -> str:
    """An interpreter that answers the script's version question only: nothing is created with it."""
    path = folder / f'python{version}'
    path.write_text(f'#!/bin/sh\necho {version}\n')
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize('stack, version, fits', [('pinned', '3.8', 'legacy'), ('pinned', '3.9', 'legacy'),
                                                  ('legacy', '3.12', 'pinned'), ('newest', '3.10', 'pinned onedl')])
def test_a_python_the_stack_does_not_run_on_is_refused_naming_the_stack_that_fits(stack, version, fits, tmp_path):
    venv = tmp_path / 'venv'
    proc = subprocess.run(['bash', SCRIPT, stack], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHON=fake_python(tmp_path, version), CONVMLP_VENV=str(venv)))
    assert proc.returncode == 1 and not venv.exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f'is Python {version}; the {stack} stack runs on Python' in lines[0], proc.stderr
    assert lines[0].endswith(f'the stack that runs on Python {version}: ' +
                             ' '.join(f'tools/setup_env.sh {s}' for s in fits.split())), lines[0]


def test_an_unknown_stack_names_the_valid_ones():
    proc = subprocess.run(['bash', SCRIPT, 'lgacy'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown stack lgacy; choose one of: pinned legacy onedl newest" in proc.stderr


def test_cache_status_says_per_stack_whether_mmcv_is_compiled(tmp_path):
    cache = tmp_path / 'cache'
    folder = cache / 'wheels' / f'mmcv-2.1.0-torch-2.1.2-cp38-{platform.machine()}'
    wheel = folder / f'mmcv-2.1.0-cp38-cp38-linux_{platform.machine()}.whl'
    wheel.parent.mkdir(parents=True)
    wheel.touch()
    proc = subprocess.run(['bash', SCRIPT, '--cache-status'], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, CONVMLP_CACHE=str(cache)))
    assert proc.returncode == 0
    status = {line.split()[1]: line for line in proc.stdout.splitlines()}
    assert sorted(status) == ['legacy', 'newest', 'onedl', 'pinned']
    assert status['legacy'].endswith('Python 3.8  torch 2.1.2  mmcv 2.1.0: cached')
    assert 'onedl-mmcv 2.3.6: NOT cached: compiling it costs' in status['onedl']
