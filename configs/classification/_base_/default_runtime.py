# mmpretrain's default runtime plus convmlp_mm's training guards (atomic checkpoints, random state in checkpoints for
# exact resumption, stop on a NaN/inf loss), for every launcher: see configs/detection/_base_/default_runtime.py.
_base_ = 'mmpretrain::_base_/default_runtime.py'
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')),
    random_state=dict(type='convmlp_mm.RandomStateHook'),
    stop_on_nonfinite_loss=dict(type='convmlp_mm.StopOnNonFiniteLossHook'))
