"""Runner hooks for runs that can be killed and resumed without a trace, and that stop on a broken loss."""
import math
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from ..registry import register_hook
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

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['random_state'] = dict(
            python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get('random_state')
        if state is None or not runner._resume:  # load_from (fine-tuning) starts new random streams
            return
        random.setstate(_as_python_state(state['python']))
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])


def _as_python_state(state) -> tuple:
    # random.setstate needs tuples; a checkpoint round trip may give lists.
    version, internal, gauss = state
    return version, tuple(internal), gauss


class NonFiniteLossError(RuntimeError):
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
