"""Runner hooks for runs that can be killed and resumed without a trace, that stop on a broken loss, and whose
test runs on a CPU keep freed memory for the next batch."""
import math
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from ..errors import UserError
from ..registry import register_hook
from ..utils.allocator import retain_freed_memory
from .storage import latest_valid_checkpoint


@register_hook
class RandomStateHook(Hook):
    """Save the Python, NumPy and torch random states in every checkpoint and restore them on resume.

    mmengine seeds once at start-up, so a resumed run would draw other augmentations, drop-path masks and
    dropout than the run it continues. With this hook a resumed run continues the same random streams
    and ends with the same weights as an uninterrupted one (on deterministic CPU kernels; tested).
    Data loader workers draw from their own seeds, derived from the epoch, as in mmengine.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['random_state'] = dict(
            python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get('random_state')
        if state is not None and runner._resume:  # load_from (fine-tuning) starts new random streams
            self._pending = state

    def before_train(self, runner) -> None:
        state, self._pending = self._pending, None
        if state is None:
            return
        loop = runner.train_loop
        if getattr(loop, 'dataloader_iterator', None) is not None and runner.iter > 0:
            # An iteration-based loop now re-reads the batches it trained on before the checkpoint to reach
            # its place in the data stream. Loaded in the main process (num_workers=0), their augmentations
            # draw from the global random state, so it is restored after the last of them.
            loop.dataloader_iterator = _RestoreAfterSkip(loop, runner.iter, state)
        else:
            _set_random_state(state)


def _set_random_state(state: dict) -> None:
    version, internal, gauss = state['python']  # a checkpoint round trip may turn the tuples into lists
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])


class _RestoreAfterSkip:
    """Stands in for an iteration-based loop's data iterator while the loop skips ``skip`` batches after a
    resume; sets the random state after the last one and puts the loop's own iterator back."""

    def __init__(self, loop, skip: int, state: dict) -> None:
        self.loop, self.iterator, self.remaining, self.state = loop, loop.dataloader_iterator, skip, state

    def __iter__(self) -> '_RestoreAfterSkip':
        return self

    def __next__(self):
        batch = next(self.iterator)
        self.remaining -= 1
        if self.remaining == 0:
            _set_random_state(self.state)
            self.loop.dataloader_iterator = self.iterator
        return batch


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN or infinite; the message says where and what was kept."""


@register_hook
class StopOnNonFiniteLossHook(Hook):
    """Stop training at the first iteration whose loss is NaN or infinite, before a checkpoint is saved
    from the broken weights (this hook runs ahead of CheckpointHook), so the last checkpoint on disk is
    the last good one, and say which it is.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        loss = (outputs or {}).get('loss')
        if loss is None:
            return
        loss = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        if math.isfinite(loss):
            return
        kept = latest_valid_checkpoint(runner.work_dir)
        raise NonFiniteLossError(
            f'the training loss is {loss} at iteration {runner.iter + 1} (epoch {runner.epoch + 1}); '
            f'training stopped and no checkpoint was written from these weights. Last good checkpoint: '
            f'{kept or "none yet"}. Lower the learning rate or add gradient clipping '
            f'(optim_wrapper.clip_grad), then continue with --resume.')


@register_hook
class RetainFreedMemoryHook(Hook):
    """At the start of a test run on a CPU (``Runner.test()``: any library's ``tools/test.py``, ``mim test``),
    have glibc keep freed memory for the next batch (:func:`~convmlp_mm.utils.allocator.retain_freed_memory`),
    as our own inference tools do, and log what was done.

    A test run does nothing but inference, the case that function is for: without it every forward pass maps its
    large activations afresh and the kernel zero-fills each page (mmdet's ``tools/test.py``, toy RetinaNet with
    ConvMLP-S at 1333x800 on a 2-core Zen 4 EPYC: 2.90 s against 2.27 s a batch of 4; docs/performance.md).
    The setting is process-wide and stays after the run; training and validation are left as glibc does them.
    Where the environment sets glibc's allocator, or on a GPU, it changes nothing.
    """

    priority = 'VERY_LOW'

    def before_test(self, runner) -> None:
        parameter = next(runner.model.parameters(), None)
        if parameter is None or parameter.device.type == 'cpu':
            runner.logger.info(f'CPU test run: {retain_freed_memory()}')
