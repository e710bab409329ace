# mmpretrain's default runtime plus convmlp_mm's run hooks (atomic checkpoints, random state in checkpoints for exact
# resumption, stop on a NaN/inf loss, freed memory kept in CPU test runs), for every launcher: see
# configs/detection/_base_/default_runtime.py.
_base_ = 'mmpretrain::_base_/default_runtime.py'
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')),
    random_state=dict(type='convmlp_mm.RandomStateHook'),
    stop_on_nonfinite_loss=dict(type='convmlp_mm.StopOnNonFiniteLossHook'),
    retain_freed_memory=dict(type='convmlp_mm.RetainFreedMemoryHook'))
