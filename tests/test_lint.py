"""The lint configuration (ruff.toml: pyflakes, pycodestyle, isort rules) holds for the package, the tools,
the tests and the configs."""
import subprocess
import sys

from .conftest import ROOT


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, '-m', 'ruff', 'check', 'convmlp_mm', 'tools', 'tests', 'configs'], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
