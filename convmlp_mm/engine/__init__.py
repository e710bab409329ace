"""What training runs need beyond mmengine's defaults: atomic checkpoint files, exact resumption of the
random state, and a stop on a non-finite loss. The configs' ``_base_/default_runtime.py`` switch them on
for every launcher."""
from .hooks import NonFiniteLossError, RandomStateHook, StopOnNonFiniteLossHook
from .storage import AtomicLocalBackend, latest_valid_checkpoint, named_checkpoint

__all__ = ['AtomicLocalBackend', 'NonFiniteLossError', 'RandomStateHook', 'StopOnNonFiniteLossHook',
           'latest_valid_checkpoint', 'named_checkpoint']
