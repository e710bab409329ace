# 40k iterations, AdamW lr 2e-4, weight decay 1e-4, poly decay (power 0.9) to 0: the paper's ADE20K recipe.
_base_ = 'mmseg::_base_/schedules/schedule_40k.py'
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=40000, by_epoch=False)]
# convmlp_mm's run hooks for every launcher (see configs/detection/_base_/default_runtime.py). mmseg keeps
# default_hooks in its schedule files, not in default_runtime.py, so they are added here.
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')),
    random_state=dict(type='convmlp_mm.RandomStateHook'),
    stop_on_nonfinite_loss=dict(type='convmlp_mm.StopOnNonFiniteLossHook'),
    retain_freed_memory=dict(type='convmlp_mm.RetainFreedMemoryHook'))
