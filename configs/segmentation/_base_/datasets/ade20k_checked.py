# mmseg's ADE20K settings, with labels checked right after loading: a label outside 0..149 stops the run
# with the file's name instead of an index error inside the loss.
_base_ = 'mmseg::_base_/datasets/ade20k.py'

label_check = dict(type='CheckSegLabels', num_classes=150)
train_pipeline = _base_.train_pipeline[:2] + [label_check] + _base_.train_pipeline[2:]
test_pipeline = _base_.test_pipeline[:3] + [label_check] + _base_.test_pipeline[3:]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
