"""What training runs need beyond mmengine's defaults: atomic checkpoint files, exact resumption of the
random state, and a stop on a non-finite loss (the configs' ``_base_/default_runtime.py`` switch them on
for every launcher); and the official recipes' learning-rate schedule."""
from .hooks import NonFiniteLossError, RandomStateHook, StopOnNonFiniteLossHook
from .schedulers import TimmCosineLR
from .storage import AtomicLocalBackend, latest_valid_checkpoint, named_checkpoint

__all__ = ['AtomicLocalBackend', 'NonFiniteLossError', 'RandomStateHook', 'StopOnNonFiniteLossHook', 'TimmCosineLR',
           'latest_valid_checkpoint', 'named_checkpoint']
