"""What training runs need beyond mmengine's defaults: atomic checkpoint files, exact resumption of the
random state, and a stop on a non-finite loss (the configs' ``_base_/default_runtime.py`` switch them on
for every launcher); the official recipes' learning-rate schedule; and bf16/fp16 testing and training."""
from .hooks import NonFiniteLossError, RandomStateHook, StopOnNonFiniteLossHook
from .precision import (
                        AutocastOptimWrapper,
                        AutocastTestLoop,
                        UnsupportedPrecisionError,
                        check_precision,
                        mixed_precision,
)
from .schedulers import TimmCosineLR
from .storage import AtomicLocalBackend, latest_valid_checkpoint, named_checkpoint

__all__ = ['AtomicLocalBackend', 'AutocastOptimWrapper', 'AutocastTestLoop', 'NonFiniteLossError', 'RandomStateHook',
           'StopOnNonFiniteLossHook', 'TimmCosineLR', 'UnsupportedPrecisionError', 'check_precision',
           'latest_valid_checkpoint', 'mixed_precision', 'named_checkpoint']
