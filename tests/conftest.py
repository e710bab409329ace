import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def run_tool(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python tools/<args>`` as a user would, from ``cwd``; output is captured."""
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / args[0]), *args[1:]], cwd=cwd,
                          capture_output=True, text=True, timeout=1200)
    if check and proc.returncode != 0:
        raise AssertionError(f'tools/{args[0]} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-4000:]}')
    return proc


@pytest.fixture(scope='session')
def toy_coco(tmp_path_factory) -> Path:
    """A tiny toy COCO set (8 train / 4 val images of 160x128), made by the user-facing generator."""
    out = tmp_path_factory.mktemp('data') / 'toy_coco'
    run_tool('make_toy_data.py', 'det', str(out), '--num-train', '8', '--num-val', '4', '--size', '160', '128')
    return out
