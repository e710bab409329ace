# mmdet's default runtime plus convmlp_mm's run hooks (convmlp_mm/engine), so that every launcher that builds a
# Runner from a config inheriting this file gets them: our tools/train.py and test.py, mmdet's own (what `mim train`
# and `mim test` run) and Runner.from_cfg in a user's script.
# - checkpoints are written to a temporary name and renamed: a crash while saving never leaves a truncated file;
# - every checkpoint carries the Python/NumPy/torch random state, restored on --resume, so a killed and
#   resumed run ends with the same weights as an uninterrupted one;
# - the first NaN/inf loss stops the run before a checkpoint is written from the broken weights;
# - a test run on a CPU (tools/test.py, mim test) keeps freed memory for the next batch, as our inference tools do
#   (convmlp_mm.RetainFreedMemoryHook; 1.28x faster at 1333x800 with mmdet's tools/test.py, docs/performance.md).
# They live in default_hooks, which configs merge key by key, so a config's own custom_hooks list does not
# drop them; switch one off with e.g. default_hooks=dict(random_state=None).
_base_ = 'mmdet::_base_/default_runtime.py'
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')),
    random_state=dict(type='convmlp_mm.RandomStateHook'),
    stop_on_nonfinite_loss=dict(type='convmlp_mm.StopOnNonFiniteLossHook'),
    retain_freed_memory=dict(type='convmlp_mm.RetainFreedMemoryHook'))
