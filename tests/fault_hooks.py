"""Faults injected into real training runs by the fault-injection suite (tests/test_engine/test_faults.py).

Loaded by generated configs through ``custom_imports`` (with the repository root on PYTHONPATH).
"""
import os
import signal

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILL this process after training iteration ``at`` (1-based): no clean-up runs at all."""

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class PoisonWeightsHook(Hook):
    """Set one weight to NaN before training iteration ``at``, as a diverging run would."""

    def __init__(self, at: int) -> None:
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter + 1 == self.at:
            with torch.no_grad():
                param = next(runner.model.parameters())  # a conv weight, channels-last: index, not view
                param[(0,) * param.dim()] = float('nan')


@HOOKS.register_module()
class DumpWeightsHook(Hook):
    """After the run, each rank writes its model's parameters to ``<work_dir>/rank<r>.pth``. (Buffers such
    as BatchNorm running statistics are per rank by design: mmengine's DDP does not broadcast them.)"""

    def after_run(self, runner) -> None:
        model = getattr(runner.model, 'module', runner.model)
        params = {name: p.detach().clone() for name, p in model.named_parameters()}
        torch.save(params, os.path.join(runner.work_dir, f'rank{get_rank()}.pth'))


@HOOKS.register_module()
class RecordCheckpointBackendHook(Hook):
    """After training, write the class name of the file backend that the run's CheckpointHook saved
    through to ``<work_dir>/checkpoint_backend.txt``, so a test sees which backend was really in use."""

    priority = 'LOWEST'

    def after_train(self, runner) -> None:
        from mmengine.hooks import CheckpointHook
        backends = {type(hook.file_backend).__name__ for hook in runner.hooks if isinstance(hook, CheckpointHook)}
        with open(os.path.join(runner.work_dir, 'checkpoint_backend.txt'), 'w') as f:
            f.write(','.join(sorted(backends)))
