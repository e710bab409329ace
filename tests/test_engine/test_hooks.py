"""RetainFreedMemoryHook's choice of runs (what it does to the process is tests/test_tools/test_upstream.py's
``test_runner_from_cfg_in_a_plain_script``): test runs on a CPU only."""
from types import SimpleNamespace
from unittest import mock

import torch.nn as nn

from convmlp_mm.engine import RetainFreedMemoryHook, hooks


def test_retains_freed_memory_in_cpu_test_runs_only(monkeypatch):
    calls = []
    monkeypatch.setattr(hooks, 'retain_freed_memory', lambda: calls.append('called') or 'what was done')
    hook = RetainFreedMemoryHook()
    # a model on another device (a GPU run): glibc's heap holds no activations there, so it is left alone
    runner = SimpleNamespace(model=nn.Linear(2, 2, device='meta'), logger=mock.Mock())
    hook.before_test(runner)
    assert calls == [] and not runner.logger.info.called
    runner.model = nn.Linear(2, 2)
    hook.before_test(runner)
    assert calls == ['called']
    runner.logger.info.assert_called_once_with('CPU test run: what was done')
    # training and validation runs are left as glibc does them
    assert all(getattr(RetainFreedMemoryHook, name) is getattr(hooks.Hook, name)
               for name in ('before_train', 'before_val', 'before_run'))
