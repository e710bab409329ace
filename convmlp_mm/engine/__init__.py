"""What runs need beyond mmengine's defaults: atomic checkpoint files, exact resumption of the random state, a
stop on a non-finite loss, and CPU test runs that keep freed memory for the next batch (the configs'
``_base_/default_runtime.py`` switch them on for every launcher); the official recipes' learning-rate schedule;
and bf16/fp16 testing and training."""
from .hooks import NonFiniteLossError, RandomStateHook, RetainFreedMemoryHook, StopOnNonFiniteLossHook
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
           'RetainFreedMemoryHook', 'StopOnNonFiniteLossHook', 'TimmCosineLR', 'UnsupportedPrecisionError',
           'check_precision', 'latest_valid_checkpoint', 'mixed_precision', 'named_checkpoint']
