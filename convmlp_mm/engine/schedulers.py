"""The learning-rate schedule of the paper's classification recipes (timm's), for mmengine's Runner."""
import math
from typing import List

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler

from ..registry import register_param_scheduler


@register_param_scheduler
class TimmCosineLR(LRSchedulerMixin, _ParamScheduler):
    """timm's ``CosineLRScheduler`` (one cycle, ``warmup_prefix=False``), which the official ConvMLP recipes
    train with, step by step.

    Step ``t`` (an epoch with ``by_epoch=True``, as in timm's default) gets
    ``warmup_lr + t * (base_lr - warmup_lr) / warmup_steps`` during the warm-up, then
    ``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / t_max)) / 2`` (the cosine keeps its phase: it is not
    shifted by the warm-up), and ``eta_min`` from ``t_max`` on (timm's cool-down epochs). mmengine's
    LinearLR and CosineAnnealingLR run together multiply the warm-up by the cosine instead, which puts a
    10-of-50-epoch warm-up (the official fine-tuning) 7% off for the rest of the run.

    Args:
        optimizer (Optimizer): Wrapped optimizer; its lr is ``base_lr``.
        t_max (int): Steps of the cosine, counted from step 0 (timm's ``epochs``).
        eta_min (float): The lr at the end of the cosine and after it (timm's ``min_lr``). Defaults to 0.
        warmup_steps (int): Steps of the linear warm-up (timm's ``warmup_epochs``). Defaults to 0.
        warmup_lr (float): The lr at step 0 of the warm-up (timm's ``warmup_lr``). Defaults to 0.
        begin (int): Step at which the schedule starts. Defaults to 0.
        end (int): Step at which it stops updating the lr. Defaults to INF.
        last_step (int): The index of the last step, for resuming without a state dict. Defaults to -1.
        by_epoch (bool): Whether the steps are epochs. Defaults to True.
        verbose (bool): Whether to print the lr at each update. Defaults to False.
    """

    def __init__(self, optimizer, t_max: int, eta_min: float = 0., warmup_steps: int = 0, warmup_lr: float = 0.,
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        if not 0 <= warmup_steps < t_max:
            raise ValueError(f'TimmCosineLR: warmup_steps must be in [0, t_max={t_max}), got {warmup_steps}')
        self.t_max, self.eta_min = t_max, eta_min
        self.warmup_steps, self.warmup_lr = warmup_steps, warmup_lr
        super().__init__(optimizer, begin=begin, end=end, last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    def _get_value(self) -> List[float]:
        t = self.last_step
        return [self._lr(base, t) for base in self.base_values]

    def _lr(self, base: float, t: int) -> float:
        if t < self.warmup_steps:
            return self.warmup_lr + t * (base - self.warmup_lr) / self.warmup_steps
        if t < self.t_max:
            return self.eta_min + 0.5 * (base - self.eta_min) * (1 + math.cos(math.pi * t / self.t_max))
        return self.eta_min
