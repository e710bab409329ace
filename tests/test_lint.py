"""The lint configuration (ruff.toml: pyflakes, pycodestyle, isort rules, annotations that Python 3.8 can
evaluate) holds for the package, the tools, the tests and the configs, and nothing needs a Python newer than
3.8, the oldest that setup.py admits (vermin reads every stdlib module, function and argument's version)."""
import subprocess
import sys

from .conftest import ROOT

CHECKED = ['convmlp_mm', 'tools', 'tests', 'configs']


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, '-m', 'ruff', 'check', *CHECKED], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_nothing_needs_a_python_newer_than_3_8():
    vermin = [sys.executable, '-c', 'import sys, vermin; sys.exit(vermin.main())']
    proc = subprocess.run([*vermin, '--target=3.8-', '--violations', '--no-tips', '--backport', 'typing_extensions',
                           *CHECKED], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
