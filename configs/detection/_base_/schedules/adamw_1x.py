# COCO 1x (12 epochs, lr steps at 8 and 11) with the paper's AdamW, lr 1e-4, weight decay 1e-4.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))
